/**
 * React bindings for InfiniteScribe Realtime (SSEProvider and hooks) land with the browser-side
 * issue; the package exists now so the workspace layout matches DESIGN.md.
 */
export type { EventType } from '@infinitescribe/protocol';
