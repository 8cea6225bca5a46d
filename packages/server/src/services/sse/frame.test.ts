import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../../core/event-record.js';
import { controlFrame, eventFrame, sharedEventFrame, retryFrame, toEnvelope } from './frame.js';

/** Feeds `text` to a third-party parser in chunks cut at `cuts`, as a network might split it. */
function parse(text: string, cuts: number[] = []): { events: EventSourceMessage[]; retries: number[] } {
  const events: EventSourceMessage[] = [];
  const retries: number[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event), onRetry: (ms) => retries.push(ms) });
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    parser.feed(text.slice(start, cut));
    start = cut;
  }
  parser.feed(text.slice(start));
  return { events, retries };
}

function record(id: number, payload: unknown): EventRecord {
  return { id, topic: 'doc:42', type: 'notification', ts: '2026-11-24T10:00:00.000Z', payload, critical: false };
}

const TRICKY_STRINGS = [
  'line one\nline two\nline three',
  'carriage\rreturn',
  'windows\r\nline\r\nbreaks',
  '\n\n\n',
  'data: not a field\nid: 999\nevent: evil\n\n',
  '',
  ' leading and trailing ',
  'unicode: é ü ñ 中文 العربية 🎉👩‍💻',
  'separators: \u2028 \u2029 \u0085',
  'nul \u0000 and bell \u0007',
  ':comment-looking',
  'x'.repeat(70_000),
];

describe('SSE framing', () => {
  it.each(TRICKY_STRINGS.map((text, index) => [index, text] as const))(
    'round-trips tricky payload #%i through eventsource-parser',
    (_index, text) => {
      const event = record(1795549536251000 + text.length, { title: text, body: text, level: 'info' });
      const frame = eventFrame(event).toString('utf8');
      const { events } = parse(frame, [1, Math.floor(frame.length / 2), frame.length - 1]);
      expect(events).toHaveLength(1);
      expect(events[0]?.id).toBe(String(event.id));
      expect(events[0]?.event).toBe('notification');
      expect(JSON.parse(events[0]?.data ?? 'null')).toEqual(toEnvelope(event));
    },
  );

  it('keeps every data: on one line whatever the payload holds', () => {
    const frame = eventFrame(record(7, { title: 'a\nb\rc\r\nd', level: 'info' })).toString('utf8');
    expect(frame.split('\n').filter((line) => line.length > 0)).toHaveLength(3);
    expect(frame.endsWith('\n\n')).toBe(true);
    expect(frame).not.toContain('\r');
  });

  it('round-trips empty payload objects and nested empties', () => {
    const event = record(8, { nested: {}, list: [], empty: '' });
    const { events } = parse(eventFrame(event).toString('utf8'));
    expect(JSON.parse(events[0]?.data ?? 'null')).toEqual(toEnvelope(event));
  });

  it('parses a stream of many frames split at every possible byte', () => {
    const records = [
      record(1, { title: 'α\nβ', level: 'info' }),
      record(2, {}),
      record(3, { title: '🎉', level: 'error' }),
    ];
    const text =
      retryFrame(1500) +
      controlFrame('connection.established', { connectionId: 'c', instanceId: 'i', topics: ['doc:42'] }) +
      records.map((event) => eventFrame(event).toString('utf8')).join('') +
      controlFrame('heartbeat', { ts: '2026-11-24T10:00:00.000Z' });
    for (let cut = 0; cut < text.length; cut += 7) {
      const { events, retries } = parse(text, [cut]);
      expect(retries).toEqual([1500]);
      expect(events.map((event) => event.event)).toEqual([
        'connection.established',
        'notification',
        'notification',
        'notification',
        'heartbeat',
      ]);
      expect(events.filter((event) => event.id !== undefined).map((event) => event.id)).toEqual(['1', '2', '3']);
    }
  });

  it('sends control events without an id line, with bare JSON data', () => {
    const frame = controlFrame('stream.reset', { reason: 'gap', since: '42' });
    expect(frame).toBe('event: stream.reset\ndata: {"reason":"gap","since":"42"}\n\n');
    const { events } = parse(frame);
    expect(events[0]?.id).toBeUndefined();
  });
});

describe('event frame bytes', () => {
  it('wraps the frame as one HTTP/1.1 chunk: hex size line, the frame, CRLF', () => {
    const event = record(9, { title: 'unicode 🎉 and\nnewline', level: 'info' });
    const { plain, chunked } = sharedEventFrame(event);
    expect(plain.equals(eventFrame(event))).toBe(true);
    const sizeLineEnd = chunked.indexOf('\r\n');
    expect(Number.parseInt(chunked.subarray(0, sizeLineEnd).toString('latin1'), 16)).toBe(plain.length);
    expect(chunked.subarray(sizeLineEnd + 2, sizeLineEnd + 2 + plain.length).equals(plain)).toBe(true);
    expect(chunked.subarray(sizeLineEnd + 2 + plain.length).toString('latin1')).toBe('\r\n');
  });
});
