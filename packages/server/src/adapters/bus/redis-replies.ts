import type { EventDraft, EventRecord } from '../../core/event-record.js';

/**
 * Encoding what the bus sends, and decoding what the bus's scripts and channels return. Redis hands back untyped values; each
 * helper checks the shape it expects and throws on anything else, so a malformed reply fails the
 * one call that got it instead of spreading through the bus as a wrong id or record.
 */

export function toId(value: unknown, missingIsZero = false): number {
  if (value === null && missingIsZero) return 0;
  const id = typeof value === 'string' ? Number(value) : value;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new Error(`unexpected id from Redis: ${String(value)}`);
  }
  return id;
}

export function stringArray(value: unknown, script: string): string[] {
  if (!Array.isArray(value)) throw new Error(`unexpected reply to the ${script} script`);
  return value.map((item) => String(item));
}

/** One topic of the read script's reply: coverage floor, oldest id kept ('' if none), records newest first. */
export function topicReply(value: unknown): [string, string, string[]] {
  if (!Array.isArray(value) || value.length !== 3 || !Array.isArray(value[2])) {
    throw new Error('unexpected topic entry in the read reply');
  }
  return [String(value[0]), String(value[1]), value[2].map((record: unknown) => String(record))];
}

/** A record as the log and the channels carry it (JSON). */
export function parseRecord(json: string): EventRecord {
  const value: unknown = JSON.parse(json);
  if (
    typeof value !== 'object' ||
    value === null ||
    !('id' in value) ||
    typeof value.id !== 'number' ||
    !('topic' in value) ||
    typeof value.topic !== 'string' ||
    !('type' in value) ||
    typeof value.type !== 'string'
  ) {
    throw new Error('not an event record');
  }
  return value as EventRecord;
}

/**
 * A draft as the publish script takes it: a JSON object without id (the script puts the id first),
 * the payload's JSON reused as the publisher serialised it, and none of the record's local fields.
 */
export function draftJson(draft: EventDraft): string {
  const payload = draft.payloadJson ?? JSON.stringify(draft.payload) ?? 'null';
  const key = draft.key === undefined ? '' : `,"key":${JSON.stringify(draft.key)}`;
  const head = `{"topic":${JSON.stringify(draft.topic)},"type":${JSON.stringify(draft.type)},"ts":${JSON.stringify(draft.ts)}`;
  return `${head},"critical":${draft.critical}${key},"payload":${payload}}`;
}

/** The records of a read reply (JSON, newest first) decoded, oldest first; those that cannot be, counted. */
export function parseRecords(json: readonly string[]): { records: EventRecord[]; unreadable: number } {
  const records: EventRecord[] = [];
  let unreadable = 0;
  for (let position = json.length - 1; position >= 0; position--) {
    try {
      records.push(parseRecord(json[position] ?? ''));
    } catch {
      unreadable++;
    }
  }
  return { records, unreadable };
}
