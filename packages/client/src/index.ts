/**
 * Framework-free SSE client for InfiniteScribe Realtime. The reconnecting, resuming client lands
 * with the browser-side issue; for now this package re-exports the protocol it will speak.
 */
export type { ControlEvents, Envelope, EnvelopeWithId, EventType } from '@infinitescribe/protocol';
