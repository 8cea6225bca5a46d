import type { ControlEvents, ControlEventType, Envelope } from '@infinitescribe/protocol';
import type { EventRecord } from '../../core/event-record.js';
import { formatEventId } from '../../core/event-id.js';

/**
 * SSE wire frames. JSON.stringify never emits a raw line break (it escapes \n and \r inside
 * strings), so every `data:` is a single line whatever the payload holds; event names come from
 * the catalogue and ids from event-id.ts, neither of which can contain a line break either.
 * JSON.stringify does leave U+2028 and U+2029 raw, which some SSE parsers and JavaScript line
 * handling treat as line ends: they go out escaped (`\u2028`), which parses back to the same string.
 */

const LINE_SEPARATORS = /[\u2028\u2029]/g;

/** JSON text made safe for a `data:` line: U+2028 and U+2029 as their JSON escapes. */
function escapeLineSeparators(json: string): string {
  return json.replace(LINE_SEPARATORS, (separator) => (separator === '\u2028' ? '\\u2028' : '\\u2029'));
}

/** The envelope a published event carries in its `data:` line. */
export function toEnvelope(record: EventRecord): Envelope {
  return { topic: record.topic, type: record.type, ts: record.ts, payload: record.payload } as Envelope;
}

/**
 * The envelope as JSON, reusing the payload's JSON when the publisher serialised it (the same
 * bytes JSON.stringify(toEnvelope(record)) gives). Throws for a payload that cannot be serialised,
 * which only a record written before payloads were checked can hold: callers skip such an event
 * (and say something was lost) rather than fail a stream, a resume or a poll.
 */
export function envelopeJson(record: EventRecord): string {
  if (record.payloadJson === undefined) return JSON.stringify(toEnvelope(record));
  const { topic, type, ts } = record;
  return `{"topic":${JSON.stringify(topic)},"type":${JSON.stringify(type)},"ts":${JSON.stringify(ts)},"payload":${record.payloadJson}}`;
}

/**
 * The frame of a published event, built once per event and written as the same bytes to every
 * connection (a Buffer, so sockets do not re-encode the string each time).
 */
export function eventFrame(record: EventRecord): Buffer {
  return frameWith(record, envelopeJson(record));
}

function frameWith(record: EventRecord, json: string): Buffer {
  return Buffer.from(`id: ${formatEventId(record.id)}\nevent: ${record.type}\ndata: ${escapeLineSeparators(json)}\n\n`);
}

/** {@link envelopeJson}, or `undefined` for an event that cannot be serialised. */
export function tryEnvelopeJson(record: EventRecord): string | undefined {
  try {
    return envelopeJson(record);
  } catch {
    return undefined;
  }
}

/**
 * A frame written as the same bytes to many connections (an event's, a heartbeat), encoded once
 * in both forms a response body may need: `plain` for bodies written through Node's response (or
 * ended by closing the connection), `chunked` for HTTP/1.1 bodies written straight to the socket
 * (one chunk: size line, frame, CRLF — the bytes Node's response would produce for that write).
 */
export interface SharedFrame {
  plain: Buffer;
  chunked: Buffer;
}

/** Wraps `plain` for {@link SharedFrame}. */
export function shareFrame(plain: Buffer): SharedFrame {
  const sizeLine = `${plain.length.toString(16)}\r\n`;
  const chunked = Buffer.allocUnsafe(sizeLine.length + plain.length + 2);
  const at = chunked.write(sizeLine, 0, 'latin1');
  plain.copy(chunked, at);
  chunked.write('\r\n', at + plain.length, 'latin1');
  return { plain, chunked };
}

/** {@link eventFrame} as a {@link SharedFrame}. */
export function sharedEventFrame(record: EventRecord): SharedFrame {
  return shareFrame(eventFrame(record));
}

/** {@link sharedEventFrame}, or `undefined` for an event that cannot be serialised (see {@link envelopeJson}). */
export function trySharedEventFrame(record: EventRecord): SharedFrame | undefined {
  const json = tryEnvelopeJson(record);
  return json === undefined ? undefined : shareFrame(frameWith(record, json));
}

/** A control event: no `id:` line, so it never moves the client's resume point. */
export function controlFrame<TType extends ControlEventType>(type: TType, data: ControlEvents[TType]): string {
  return `event: ${type}\ndata: ${escapeLineSeparators(JSON.stringify(data))}\n\n`;
}

/** The reconnection delay the browser should use; sent first on every stream. */
export function retryFrame(ms: number): string {
  return `retry: ${ms}\n\n`;
}
