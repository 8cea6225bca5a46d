import { LAST_EVENT_ID_HEADER, STREAM_PATH, type ControlEvents } from '@infinitescribe/protocol';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import http from 'node:http';
import type { ClientHistory, ConnectionRecord, ReceivedFrame } from './chaos-judge.js';

/** Options of {@link startChaosClient}. */
export interface ChaosClientOptions {
  name: string;
  /** Bearer token; its `sub` and `topics` decide what the stream carries. */
  token: string;
  /** The topics the token gives the stream (what the judge expects it to receive). */
  topics: readonly string[];
  /** The instances' base URLs, read at every (re)connect: one is picked at random each time. */
  instances: () => readonly string[];
  random: () => number;
  /** A stream being read that brings no byte (not even a heartbeat) for this long is dead. */
  idleTimeoutMs: number;
}

/**
 * An auto-reconnecting SSE client as a browser tab behind a load balancer is one: each reconnect
 * goes to a random instance with `Last-Event-ID` (the last id read, or the `lastEventId` of a
 * fresh stream's `connection.established`), streams are parsed by eventsource-parser, and every
 * attempt and frame is recorded, unfiltered, for the judge. It can stop reading (a stalled tab).
 */
export interface ChaosClient {
  readonly history: ClientHistory;
  /** The instance of the stream being read, once it has caught up; undefined between streams. */
  streamingFrom(): string | undefined;
  /**
   * Resolves once a stream has caught up (fresh: established; resume: `stream.resumed`) at or
   * after `since` (ms since epoch; default: any time).
   */
  waitReady(timeoutMs: number, since?: number): Promise<void>;
  /** Stops reading the socket (the server sees a client that does not keep up). */
  stall(): void;
  /** Reads again: what the kernel kept, then the server's close if it dropped the stream. */
  unstall(): void;
  /**
   * Ends the current stream and resumes once more on a random instance, waits until it is caught
   * up, then stops for good: the last word of the run.
   */
  finalResume(timeoutMs: number): Promise<void>;
  /** Stops for good. */
  close(): void;
}

/** Longest pause between failed attempts (full jitter below it). */
const BACKOFF_CAP_MS = 1_000;

/** Starts the client's connect loop at once. */
export function startChaosClient(options: ChaosClientOptions): ChaosClient {
  const history: ClientHistory = { name: options.name, topics: options.topics, connections: [] };
  let resumePoint: string | undefined;
  let closed = false;
  let stalled = false;
  let final: { resolve: () => void } | undefined;
  let current:
    | { record: ConnectionRecord; request: http.ClientRequest; response?: http.IncomingMessage; ready: boolean }
    | undefined;
  let lastReadyAt = -Infinity;
  const readyWaiters = new Set<() => void>();

  const endCurrent = (byHarness: boolean) => {
    if (!current) return;
    current.record.closedByHarness ||= byHarness;
    current.request.destroy();
  };

  /** One attempt: resolves with whether the stream caught up, once it has ended. */
  const connectOnce = (url: string): Promise<boolean> => {
    const record: ConnectionRecord = {
      instance: url,
      ...(resumePoint === undefined ? {} : { lastEventId: resumePoint }),
      openedAt: Date.now(),
      frames: [],
      closedByHarness: false,
    };
    history.connections.push(record);
    let ready = false;
    const markReady = () => {
      ready = true;
      if (current?.record === record) current.ready = true;
      lastReadyAt = Date.now();
      for (const wake of [...readyWaiters]) wake();
      if (final) {
        final.resolve();
        final = undefined;
        closed = true;
        endCurrent(true);
      }
    };
    const onMessage = (message: EventSourceMessage) => {
      const frame = toFrame(message);
      record.frames.push(frame);
      if (frame.kind === 'event') {
        resumePoint = frame.id;
        return;
      }
      if (frame.type === 'connection.established') {
        const established = frame.data as ControlEvents['connection.established'];
        if (resumePoint === undefined && established.lastEventId !== undefined) resumePoint = established.lastEventId;
        if (record.lastEventId === undefined) markReady();
      } else if (frame.type === 'stream.resumed') {
        markReady();
      }
    };
    return new Promise<boolean>((resolve) => {
      let lastByteAt = Date.now();
      const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'text/event-stream' };
      if (record.lastEventId !== undefined) headers[LAST_EVENT_ID_HEADER] = record.lastEventId;
      const request = http.get(new URL(STREAM_PATH, url), { headers, agent: false });
      current = { record, request, ready: false };
      const watchdog = setInterval(() => {
        if (!stalled && Date.now() - lastByteAt > options.idleTimeoutMs) {
          request.destroy(new Error(`watchdog: no byte for ${options.idleTimeoutMs} ms`));
        }
      }, 250);
      let settled = false;
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        record.endedAt = Date.now();
        record.error ??= record.closedByHarness ? 'closed by the harness' : error;
        if (current?.record === record) current = undefined;
        resolve(ready);
      };
      request.on('error', (error) => finish(error.message));
      request.on('close', () => finish());
      request.on('response', (response) => {
        record.status = response.statusCode;
        if (current?.record === record) current.response = response;
        lastByteAt = Date.now();
        if (stalled) response.pause();
        response.setEncoding('utf8');
        if (response.statusCode !== 200) {
          let body = '';
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => finish(`HTTP ${response.statusCode}: ${body.slice(0, 200)}`));
          response.on('error', (error) => finish(error.message));
          return;
        }
        const parser = createParser({ onEvent: onMessage });
        response.on('data', (chunk: string) => {
          lastByteAt = Date.now();
          parser.feed(chunk);
        });
        response.on('end', () => finish('ended by the server'));
        response.on('error', (error) => finish(error.message));
        response.on('aborted', () => finish('aborted'));
      });
    });
  };

  const loop = async () => {
    let failures = 0;
    while (!closed) {
      const urls = options.instances();
      const url = urls[Math.floor(options.random() * urls.length)] ?? urls[0];
      if (url === undefined) throw new Error('no instance to connect to');
      const wasReady = await connectOnce(url);
      if (closed) return;
      failures = wasReady ? 0 : failures + 1;
      // Full jitter: a stream that ran comes back at once; failed attempts back off, capped.
      const ceiling = wasReady ? 100 : Math.min(BACKOFF_CAP_MS, 50 * 2 ** failures);
      await new Promise((resolve) => setTimeout(resolve, options.random() * ceiling));
    }
  };
  loop().catch((error: unknown) => {
    closed = true;
    history.connections.push({
      instance: '(none)',
      openedAt: Date.now(),
      error: String(error),
      frames: [],
      closedByHarness: false,
    });
  });

  return {
    history,
    streamingFrom: () => (current?.ready ? current.record.instance : undefined),
    waitReady(timeoutMs, since = -Infinity) {
      if (lastReadyAt >= since) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          readyWaiters.delete(wake);
          reject(new Error(`${options.name}: no stream caught up within ${timeoutMs} ms; ${describeLast(history)}`));
        }, timeoutMs);
        const wake = () => {
          if (lastReadyAt < since) return;
          readyWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        readyWaiters.add(wake);
      });
    },
    stall() {
      stalled = true;
      current?.response?.pause();
    },
    unstall() {
      stalled = false;
      current?.response?.resume();
    },
    finalResume(timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          final = undefined;
          closed = true;
          endCurrent(true);
          reject(
            new Error(
              `${options.name}: the final resume did not catch up within ${timeoutMs} ms; ${describeLast(history)}`,
            ),
          );
        }, timeoutMs);
        final = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        endCurrent(true);
      });
    },
    close() {
      closed = true;
      endCurrent(true);
    },
  };
}

/**
 * A parsed SSE message as the judge's frame: a published event (envelope) or a control event. Data
 * that is not JSON is kept as a control frame of its own, for the record.
 */
function toFrame(message: EventSourceMessage): ReceivedFrame {
  const at = Date.now();
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(message.data) as Record<string, unknown>;
  } catch {
    return { kind: 'control', at, type: `unparseable ${message.event ?? 'message'}`, data: { raw: message.data } };
  }
  if (message.id === undefined) return { kind: 'control', at, type: message.event ?? 'message', data };
  const payload = data['payload'] as { title?: unknown } | undefined;
  return {
    kind: 'event',
    at,
    id: message.id,
    type: String(data['type'] ?? message.event),
    topic: String(data['topic']),
    ...(typeof payload?.title === 'string' ? { marker: payload.title } : {}),
  };
}

function describeLast(history: ClientHistory): string {
  const last = history.connections.at(-1);
  if (!last) return 'no attempt yet';
  return (
    `${history.connections.length} attempts, last on ${last.instance}: status ${last.status ?? 'none'}, ` +
    `${last.frames.length} frames, ${last.error ?? 'open'}`
  );
}
