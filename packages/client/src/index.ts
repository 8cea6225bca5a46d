/**
 * @module @infinitescribe/client: the framework-free SSE client of InfiniteScribe Realtime, and the
 * framework-free generation and task stores over it (React, Vue, Svelte or plain JS read the same
 * folded state).
 * Streams over fetch (Bearer token, refreshed on every reconnect) or a native EventSource with a
 * ticket, resumes by last event id (per tab), dedupes by id, reconnects with full-jitter backoff,
 * watches heartbeats, falls back to long-poll behind buffering proxies, and shares one connection
 * between the tabs of a browser (Web Locks leader + BroadcastChannel; `shareAcrossTabs: false` opts out).
 * @example
 * import { createSSEClient } from '@infinitescribe/client';
 * const client = createSSEClient({ url: '', getToken: ({ forceRefresh }) => tokens.get({ forceRefresh }) });
 * client.on('task.progress', ({ payload }) => setProgress(payload.taskId, payload.percent));
 * @example
 * // The app's own event types (registered on the server), typed end to end:
 * type AppEvents = { 'comment.added': { docId: string; text: string } };
 * const typed = createSSEClient<AppEvents>({ url: '', getToken });
 * typed.on('comment.added', (event) => showComment(event.payload.text));
 * @example
 * // Generations folded from their events (any framework): text, status, seq gaps.
 * const generations = new GenerationStore();
 * generations.attach(client);
 * generations.subscribe(generationId, () => render(generations.get(generationId).text));
 */

export { createSSEClient } from './sse-client.js';
export type { SSEClient, SSEClientOptions } from './sse-client.js';
export type { GetToken } from './auth.js';
export { canTransition, CONNECTION_TRANSITIONS } from './connection-state.js';
export type {
  ConnectionDetails,
  ConnectionReason,
  ConnectionReasons,
  ConnectionSnapshot,
  ConnectionState,
  ConnectionStatus,
  TransportKind,
} from './connection-state.js';
export type {
  ClientLifecycleEvents,
  EstablishedEvent,
  PublishedEventType,
  ResetEvent,
  ResumedEvent,
  SSEClientEventKey,
  SSEClientEventMap,
} from './client-events.js';
export { SSEClientError } from './errors.js';
export type { SSEClientErrorCode, SSEClientErrorDetails } from './errors.js';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffInput, BackoffOptions } from './backoff.js';
export { browserSignals } from './browser-signals.js';
export type { BrowserSignal, BrowserSignals } from './browser-signals.js';
export type { ResumeStorage } from './resume.js';
export type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike } from './tab-coordinator.js';
export type { FetchLike } from './transport.js';
export type {
  EventSourceConstructor,
  EventSourceLike,
  EventSourceMessageLike,
} from './transports/event-source-transport.js';

/** The framework-free generation and task stores: events folded into one snapshot per id. */
export { GenerationStore } from './generation-store.js';
export type { GenerationEventType, GenerationSnapshot, GenerationStatus } from './generation-store.js';
export { TaskStore } from './task-store.js';
export type { TaskEventType, TaskSnapshot, TaskStatus } from './task-store.js';
export { createHttpStateLoaders } from './state-loaders.js';
export type { HttpStateLoadersOptions, LoadedGenerationView, StateLoaders } from './state-loaders.js';

export type {
  BuiltInEvents,
  ControlEvents,
  Envelope,
  EnvelopeWithId,
  EventMap,
  EventPayload,
  EventType,
  GenerationView,
  PublishedEvent,
  TaskView,
  WithBuiltIns,
} from '@infinitescribe/protocol';
