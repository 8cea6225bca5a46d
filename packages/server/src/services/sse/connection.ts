import { ServerResponse } from 'node:http';
import type { EventRecord } from '../../core/event-record.js';
import { formatEventId } from '../../core/event-id.js';
import { controlFrame, shareFrame, type SharedFrame } from './frame.js';
import type { BatchedWriter, FrameBatcher } from './frame-batcher.js';

/**
 * Why a connection ended; each is a label of the disconnect metric. `resync`: the bus could not
 * keep the stream's topics exact (a live gap), so the stream ends and its client resumes;
 * `replay_failed`: setting the stream up (replay, catch-up) failed.
 */
export type CloseReason =
  'client_closed' | 'slow_consumer' | 'auth_expired' | 'shutdown' | 'error' | 'replay_failed' | 'resync';

/** Who is on a connection and what it may receive. */
export interface ConnectionIdentity {
  id: string;
  userId: string;
  ip: string;
  topics: readonly string[];
}

/** Options of {@link SSEConnection}. */
export interface ConnectionOptions {
  /**
   * Past this many bytes waiting for the client (refused by the kernel, or live events queued
   * behind a replay), the client is too slow and is disconnected. A replay never piles up
   * against it: it is written at the client's pace.
   */
  maxBufferedBytes: number;
  /** Called exactly once when the connection ends, whichever way it ends. */
  onClose: (connection: SSEConnection, reason: CloseReason) => void;
  /** Called when the stream is told of a bus outage (a `stream.reset`), for the metrics. */
  onIslandNotice?: () => void;
  /**
   * Live events of one event-loop turn go out as one write (frame-batcher.ts); without it each is
   * written at once.
   */
  batcher?: FrameBatcher;
}

/**
 * One open stream. It starts in `replaying` state: live events are queued while the replay is
 * written ({@link SSEConnection.replayBatch}, at the client's pace), then
 * {@link SSEConnection.goLive} flushes the queue. Every event passes one filter —
 * id greater than the last one sent — which is what makes the replay/live seam free of gaps and
 * duplicates, because ids are assigned, logged and fanned out in one atomic step.
 */
export class SSEConnection implements BatchedWriter {
  readonly id: string;
  readonly userId: string;
  readonly ip: string;
  readonly topics: readonly string[];
  /** Token expiry (ms since epoch); {@link SSEConnection.setExpiry} moves it. */
  expiresAt = Infinity;
  /** When `auth.expiring` is due (ms since epoch); Infinity once sent. */
  private warnAt = Infinity;
  /**
   * When the next heartbeat is due (ms since epoch), kept by the connection manager's sweep: one
   * timer for all streams, and each stream's heartbeats fall at its own phase (its open time),
   * so they are spread over the interval instead of all written in one burst.
   */
  nextHeartbeatAt = Infinity;
  private state: 'replaying' | 'live' | 'closed' = 'replaying';
  /** The bus outage (its `since` id) this stream was last told of. */
  private islandNoticed: number | undefined;
  /** An outage was told during the replay: the resume cannot say it is complete. */
  private lossToldInReplay = false;
  private lastSentId = -1;
  private pending: { record: EventRecord; frame: SharedFrame }[] = [];
  /** Bytes of the live events in {@link SSEConnection.pending}. */
  private pendingBytes = 0;
  /** Live frames of this event-loop turn, written together by the batcher (in id order). */
  private batch: SharedFrame[] = [];
  private batchBytes = 0;
  /** Ends a replay's wait for the client (see {@link SSEConnection.replayBatch}) when the stream ends. */
  private wake: (() => void) | undefined;
  /** A resync came while replaying (see {@link SSEConnection.resync}). */
  private resyncWanted = false;
  /** Something went through the response (so its headers did): shared frames may skip it. */
  private headersWritten = false;
  /** An HTTP/1 response, whose socket carries this body alone (not an HTTP/2 session's). */
  private readonly ownsSocket: boolean;
  /** Writes are held in the corked socket (see {@link SSEConnection.holdWrites}). */
  private holding = false;
  /** The manager's sweep has seen the current hold once (see {@link SSEConnection.endLongHold}). */
  private holdSeen = false;

  constructor(
    identity: ConnectionIdentity,
    private readonly response: ServerResponse,
    private readonly options: ConnectionOptions,
  ) {
    this.id = identity.id;
    this.userId = identity.userId;
    this.ip = identity.ip;
    this.topics = identity.topics;
    this.ownsSocket = response instanceof ServerResponse;
    // 'close' fires on every ending: client abort, socket error, proxy kill, our own end(). `on`,
    // not `once`, here and below: each event comes once anyway and the handlers are idempotent,
    // while `once` keeps a wrapper and a bound function alive for the stream's whole life (about
    // 150 bytes each, per stream, all copied by the young-generation GC during a connect burst).
    response.on('close', () => {
      this.finish('client_closed');
      // The client's FIN leaves the socket half-open; our side must end too, or the socket (and
      // server.close()) lingers until the OS gives up.
      response.socket?.destroy();
    });
    response.on('error', () => this.finish('error'));
    // A client (or proxy) that half-closes its side has left: Node's HTTP server allows half-open
    // sockets and would keep streaming into it until a keep-alive timeout.
    response.socket?.on('end', () => this.close('client_closed'));
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Bytes waiting for the client: handed to the socket and not taken yet, queued behind a replay,
   * or waiting for the end of the turn.
   */
  get bufferedBytes(): number {
    return this.response.writableLength + this.pendingBytes + this.batchBytes;
  }

  /** Offers a published event; sent at most once, in id order. */
  deliver(record: EventRecord, frame: SharedFrame): boolean {
    if (this.state === 'replaying') {
      this.pending.push({ record, frame });
      this.pendingBytes += frame.plain.length;
      // A client that stops reading during a replay is not waited for forever: the live events
      // piling up behind the replay count against the bound.
      this.checkBuffered();
      return false;
    }
    return this.sendEvent(record, frame, undefined, this.options.batcher);
  }

  /**
   * Writes a run of replayed events as one chunk: one socket write for the run, where one write per
   * event made each resume cost a system call per replayed event (a reconnect storm replays the
   * same seconds of events to thousands of streams at once). At the client's pace: once more than
   * a socket buffer (at most half of `maxBufferedBytes`) waits for the client, it resolves only
   * when the run has been handed to the kernel (or the stream ended), so a backlog of any size
   * streams out in runs instead of piling up in memory (a client is not a slow consumer for being
   * sent a big resume; with the in-memory bus a whole replay would otherwise be written in one
   * tick, into a corked socket). Events at or below the last one sent are skipped; an island
   * notice is written before the event that carries it, as a live event's is. Resolves with how
   * many events were sent.
   */
  async replayBatch(batch: readonly { record: EventRecord; frame: SharedFrame }[]): Promise<number> {
    let sent = 0;
    let run: SharedFrame[] = [];
    let taken: Promise<void> | undefined;
    const flush = () => {
      if (run.length === 0) return;
      const frames = run;
      run = [];
      taken = new Promise<void>((resolve) => {
        this.wake = resolve;
        this.writeFrames(frames, resolve);
      });
    };
    for (const { record, frame } of batch) {
      if (this.state === 'closed') break;
      if (record.id <= this.lastSentId) continue;
      if (record.island !== undefined && record.island !== this.islandNoticed) {
        flush();
        this.noticeIsland(record.island);
      }
      this.lastSentId = record.id;
      run.push(frame);
      sent++;
    }
    flush();
    const window = Math.min(this.response.writableHighWaterMark, this.options.maxBufferedBytes / 2);
    if (taken !== undefined && this.state !== 'closed' && this.response.writableLength > window) {
      this.releaseWrites();
      await taken;
    }
    this.wake = undefined;
    return sent;
  }

  /** {@link SSEConnection.writeShared} for several frames at once: one chunk, one write. */
  private writeFrames(frames: readonly SharedFrame[], onFlushed: () => void): void {
    if (this.state === 'closed') return onFlushed();
    if (frames.length === 1 && frames[0]) return this.writeShared(frames[0], onFlushed);
    // Framed as a whole: the run goes out as one HTTP chunk.
    this.writeShared(shareFrame(Buffer.concat(frames.map((frame) => frame.plain))), onFlushed);
  }

  /**
   * Writes an event, or queues it for the end of the turn with a `batcher`; returns whether it was
   * sent (not already past it).
   */
  private sendEvent(record: EventRecord, frame: SharedFrame, onFlushed?: () => void, batcher?: FrameBatcher): boolean {
    if (this.state === 'closed') return false;
    // Its id may pass over events of other instances this stream will not get: said first. So is
    // one below where the stream stands (it resumed here from an event issued elsewhere): lost to it.
    if (record.island !== undefined) this.noticeIsland(record.island);
    if (record.id <= this.lastSentId) return false;
    this.lastSentId = record.id;
    if (batcher === undefined) {
      this.writeShared(frame, onFlushed);
      return true;
    }
    if (this.batch.length === 0) batcher.schedule(this);
    this.batch.push(frame);
    this.batchBytes += frame.plain.length;
    // A stream that stopped reading is cut at the same bound, batched or not.
    this.checkBuffered();
    return true;
  }

  /** Writes the frames queued this turn, as one write (run by the batcher, or before any other write). */
  flushBatch(): void {
    const frames = this.batch;
    if (frames.length === 0) return;
    this.batch = [];
    this.batchBytes = 0;
    if (this.state === 'closed') return;
    const batcher = this.options.batcher;
    if (frames.length > 1 && batcher !== undefined) this.writeNow(batcher.join(frames));
    else for (const frame of frames) this.writeNow(frame);
  }

  /**
   * Tells the stream, once per bus outage, that events may be missing from `since` on (the highest
   * id its instance knew when it lost Redis): `stream.reset {gap, since}`, which a native
   * EventSource reads like any other event. Returns whether it was written now.
   */
  noticeIsland(since: number): boolean {
    if (this.state === 'closed' || this.islandNoticed === since) return false;
    this.islandNoticed = since;
    if (this.state === 'replaying') this.lossToldInReplay = true;
    this.write(controlFrame('stream.reset', { reason: 'gap', since: formatEventId(since) }));
    this.options.onIslandNotice?.();
    return true;
  }

  /**
   * Holds what the stream writes in its socket (corked) until {@link SSEConnection.releaseWrites}:
   * a resume's headers, `connection.established`, replay and `stream.resumed` then leave in one
   * system call instead of three (in a reconnect storm, thousands of resumes at once), in the
   * same order. A replay that has to wait for the client releases them first (it would wait
   * forever on a corked socket), and so does the end of the stream; a hold that lasts
   * ({@link SSEConnection.endLongHold}) is let go. HTTP/1 only: an HTTP/2 session's socket
   * carries other streams.
   */
  holdWrites(): void {
    const socket = this.response.socket;
    if (!this.ownsSocket || this.holding || this.state === 'closed' || socket === null) return;
    socket.cork();
    this.holding = true;
    this.holdSeen = false;
  }

  /**
   * Run by the manager's sweep: a hold the previous sweep saw already is let go, so a replay that
   * is slow to plan (a store read while PostgreSQL is cut) keeps its client from its headers and
   * `connection.established` for two sweep intervals at most, far below a client's first-byte
   * timeout. What follows is written as it comes.
   */
  endLongHold(): void {
    if (!this.holding) return;
    if (this.holdSeen) this.releaseWrites();
    else this.holdSeen = true;
  }

  /** Sends what {@link SSEConnection.holdWrites} held, as one write. */
  releaseWrites(): void {
    if (!this.holding) return;
    this.holding = false;
    this.response.socket?.uncork();
  }

  /** Sets the resume point: nothing at or below `id` is sent any more. */
  skipThrough(id: number): void {
    this.lastSentId = Math.max(this.lastSentId, id);
  }

  /** Where the client stands: the last event sent, or the resume point; undefined with neither. */
  get resumePoint(): number | undefined {
    return this.lastSentId >= 0 ? this.lastSentId : undefined;
  }

  /**
   * The bus could not keep the stream's topics exact (a live gap). A live stream ends and its
   * client resumes; a stream still replaying is not ended: its setup plans the replay again from
   * where it got to (sse-routes.ts), which tells the same gap in-band, without a reconnect.
   * Returns whether the stream was ended.
   */
  resync(): boolean {
    if (this.state === 'replaying') {
      this.resyncWanted = true;
      return false;
    }
    if (this.state === 'closed') return false;
    this.close('resync');
    return true;
  }

  /**
   * Whether an outage was told (`stream.reset {gap}`) while replaying: events of other instances
   * may be missing from the replay, so its `stream.resumed` says `complete: false`.
   */
  get toldLossInReplay(): boolean {
    return this.lossToldInReplay;
  }

  /** Whether a resync came while replaying, since the last call. */
  takeResync(): boolean {
    const wanted = this.resyncWanted;
    this.resyncWanted = false;
    return wanted && this.state === 'replaying';
  }

  /** Ends the replay: flushes live events queued meanwhile that the replay did not cover. */
  goLive(): number {
    if (this.state !== 'replaying') return 0;
    this.state = 'live';
    // A fresh stream's usual case: nothing queued, and no new array per stream opened.
    if (this.pending.length === 0) return 0;
    const queued = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let sent = 0;
    for (const { record, frame } of queued) if (this.sendEvent(record, frame)) sent++;
    return sent;
  }

  /** Writes raw bytes (control frames, heartbeats); closes the connection past the buffer bound. */
  write(chunk: Buffer | string): void {
    if (this.state === 'closed') return;
    // After the events already queued this turn: the order on the wire is the order of the calls.
    this.flushBatch();
    if (this.isClosed) return; // that write found the client too slow
    this.response.write(chunk);
    this.headersWritten = true;
    this.checkBuffered();
  }

  /**
   * The fan-out's hot path: a frame written as the same bytes to every connection (events,
   * heartbeats). Once the headers are out and nothing waits in the response's own buffer, it goes
   * straight to the socket as a pre-built chunk: one socket write, where going through the
   * response costs a size line built per write, a cork and a deferred uncork per connection and a
   * 4-buffer writev. Same bytes on the wire, same order (the response writes to that socket
   * directly too, in call order). `onFlushed` is called once the frame is handed to the kernel.
   */
  writeShared(frame: SharedFrame, onFlushed?: () => void): void {
    if (this.state === 'closed') return;
    this.flushBatch();
    if (this.isClosed) return;
    this.writeNow(frame, onFlushed);
  }

  private writeNow(frame: SharedFrame, onFlushed?: () => void): void {
    const socket = this.response.socket;
    if (
      this.ownsSocket &&
      this.headersWritten &&
      socket !== null &&
      socket.writable &&
      this.response.writableLength === socket.writableLength
    ) {
      socket.write(this.response.chunkedEncoding ? frame.chunked : frame.plain, onFlushed);
    } else {
      this.response.write(frame.plain, onFlushed);
    }
    this.checkBuffered();
  }

  private checkBuffered(): void {
    if (this.bufferedBytes > this.options.maxBufferedBytes) this.close('slow_consumer');
  }

  /**
   * Sets the token expiry: `auth.expiring` is sent `warningMs` before it (at once if that is past)
   * and the stream ends with `auth.expired` at it. A refresh calls it again with the new expiry.
   */
  setExpiry(expiresAt: number, warningMs: number, now = Date.now()): void {
    this.expiresAt = expiresAt;
    this.warnAt = expiresAt - warningMs;
    this.checkExpiry(now);
  }

  /** Sends what the token's expiry calls for by `now`; run by the manager's sweep. */
  checkExpiry(now: number): void {
    if (now >= this.warnAt) {
      this.warnAt = Infinity;
      this.write(
        controlFrame('auth.expiring', { connectionId: this.id, expiresAt: new Date(this.expiresAt).toISOString() }),
      );
    }
    if (now >= this.expiresAt) this.close('auth_expired', controlFrame('auth.expired', { connectionId: this.id }));
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
    // A clean end still sends what this turn queued: the client's resume point is then exact.
    this.flushBatch();
    if (this.isClosed) return; // that write found the client too slow
    this.finish(reason);
    this.response.end(finalChunk);
  }

  private finish(reason: CloseReason): void {
    if (this.state === 'closed') return;
    this.releaseWrites();
    this.state = 'closed';
    this.pending = [];
    this.pendingBytes = 0;
    this.batch = [];
    this.batchBytes = 0;
    this.wake?.();
    this.options.onClose(this, reason);
  }
}
