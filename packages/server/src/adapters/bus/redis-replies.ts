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

/** An entry of a topic's hot log: its id, and its record unless that could not be decoded. */
export interface LogEntry {
  id: number;
  record: EventRecord | undefined;
}

/** One topic of the read script's reply, decoded once for every reader of the batch. */
export interface TopicLog {
  /** Readers standing below it have a gap on the topic. */
  coverage: number;
  /** The oldest id still held, or undefined when the log holds nothing above the watermark. */
  oldest: number | undefined;
  /** Newest first. */
  entries: LogEntry[];
}

/**
 * One topic of the read script's reply: coverage floor, oldest id kept ('' if none), then entry
 * ids (`<id>-0`) and record JSONs, newest first. An entry whose record cannot be decoded keeps
 * its id and no record (readers count it as unreadable); a malformed topic entry throws.
 */
export function topicLog(value: unknown): TopicLog {
  if (!Array.isArray(value) || value.length !== 3 || !Array.isArray(value[2]) || value[2].length % 2 !== 0) {
    throw new Error('unexpected topic entry in the read reply');
  }
  const flat: unknown[] = value[2];
  const entries: LogEntry[] = [];
  for (let index = 0; index < flat.length; index += 2) {
    const entryId = String(flat[index]);
    const id = toId(entryId.slice(0, entryId.indexOf('-')));
    let record: EventRecord | undefined;
    try {
      record = parseRecord(String(flat[index + 1]));
    } catch {
      record = undefined;
    }
    entries.push({ id, record });
  }
  const oldest = String(value[1]);
  return { coverage: toId(String(value[0])), oldest: oldest === '' ? undefined : toId(oldest), entries };
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
