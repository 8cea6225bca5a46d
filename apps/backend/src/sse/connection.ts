import type { ServerResponse } from 'node:http';
import type { EventRecord } from '../events/event-record.js';

/** Why a connection ended; each is a label of the disconnect metric. */
export type CloseReason = 'client_closed' | 'slow_consumer' | 'auth_expired' | 'shutdown' | 'error' | 'replay_failed';

/** Who is on a connection and what it may receive. */
export interface ConnectionIdentity {
  id: string;
  userId: string;
  ip: string;
  topics: readonly string[];
}

/** Options of {@link SSEConnection}. */
export interface ConnectionOptions {
  /** Past this many bytes waiting to be written, the client is too slow and is disconnected. */
  maxBufferedBytes: number;
  /** Called exactly once when the connection ends, whichever way it ends. */
  onClose: (connection: SSEConnection, reason: CloseReason) => void;
}

/**
 * One open stream. It starts in `replaying` state: live events are queued while the replay is
 * written, then {@link SSEConnection.goLive} flushes the queue. Every event passes one filter —
 * id greater than the last one sent — which is what makes the replay/live seam free of gaps and
 * duplicates, because ids are assigned, logged and fanned out in one atomic step.
 */
export class SSEConnection {
  readonly id: string;
  readonly userId: string;
  readonly ip: string;
  readonly topics: readonly string[];
  /** Token expiry (ms since epoch); refresh moves it. */
  expiresAt = Infinity;
  private state: 'replaying' | 'live' | 'closed' = 'replaying';
  private lastSentId = -1;
  private pending: { record: EventRecord; frame: Buffer }[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    identity: ConnectionIdentity,
    private readonly response: ServerResponse,
    private readonly options: ConnectionOptions,
  ) {
    this.id = identity.id;
    this.userId = identity.userId;
    this.ip = identity.ip;
    this.topics = identity.topics;
    // 'close' fires on every ending: client abort, socket error, proxy kill, our own end().
    response.once('close', () => {
      this.finish('client_closed');
      // The client's FIN leaves the socket half-open; our side must end too, or the socket (and
      // server.close()) lingers until the OS gives up.
      response.socket?.destroy();
    });
    response.on('error', () => this.finish('error'));
    // A client (or proxy) that half-closes its side has left: Node's HTTP server allows half-open
    // sockets and would keep streaming into it until a keep-alive timeout.
    response.socket?.once('end', () => this.close('client_closed'));
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Bytes handed to the socket that the client has not taken yet. */
  get bufferedBytes(): number {
    return this.response.writableLength;
  }

  /** Offers a published event; sent at most once, in id order. */
  deliver(record: EventRecord, frame: Buffer): boolean {
    if (this.state === 'replaying') {
      this.pending.push({ record, frame });
      return false;
    }
    return this.sendEvent(record, frame);
  }

  /** Writes an event of the replay; returns whether it was sent (not already past it). */
  sendEvent(record: EventRecord, frame: Buffer | string): boolean {
    if (this.state === 'closed' || record.id <= this.lastSentId) return false;
    this.lastSentId = record.id;
    this.write(frame);
    return true;
  }

  /** Sets the resume point: nothing at or below `id` is sent any more. */
  skipThrough(id: number): void {
    this.lastSentId = Math.max(this.lastSentId, id);
  }

  /** Ends the replay: flushes live events queued meanwhile that the replay did not cover. */
  goLive(): number {
    if (this.state !== 'replaying') return 0;
    this.state = 'live';
    const queued = this.pending;
    this.pending = [];
    let sent = 0;
    for (const { record, frame } of queued) if (this.sendEvent(record, frame)) sent++;
    return sent;
  }

  /** Writes raw bytes (control frames, heartbeats); closes the connection past the buffer bound. */
  write(chunk: Buffer | string): void {
    if (this.state === 'closed') return;
    this.response.write(chunk);
    if (this.response.writableLength > this.options.maxBufferedBytes) this.close('slow_consumer');
  }

  /** Runs `callback` after `ms` unless the connection has ended by then. */
  schedule(ms: number, callback: () => void): void {
    if (this.state === 'closed') return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      callback();
    }, ms);
    this.timers.add(timer);
  }

  /** Cancels every timer made by {@link SSEConnection.schedule}. */
  clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /**
   * Ends the stream. A clean end lets the client reconnect and resume; a slow consumer's socket is
   * destroyed, since its buffered bytes would otherwise keep the memory we are trying to free.
   */
  close(reason: CloseReason, finalChunk?: string): void {
    if (this.state === 'closed') return;
    if (reason === 'slow_consumer' || reason === 'error') {
      this.finish(reason);
      this.response.destroy();
      return;
    }
    this.finish(reason);
    this.response.end(finalChunk);
  }

  private finish(reason: CloseReason): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.pending = [];
    this.clearTimers();
    this.options.onClose(this, reason);
  }
}
