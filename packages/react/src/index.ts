/**
 * @module @infinitescribe/react: React bindings for the InfiniteScribe Realtime client. Thin hooks
 * over framework-free stores (`useSyncExternalStore`): the client owns the connection, the
 * generation and task stores fold events, and React only reads them.
 * @example
 * import { SSEProvider, useGeneration, useSSEConnection } from '@infinitescribe/react';
 *
 * <SSEProvider key={userId} options={{ url: '', getToken }}>
 *   <Editor />
 * </SSEProvider>;
 *
 * function Editor() {
 *   const { state, retryInSeconds } = useSSEConnection();
 *   const { text, isStreaming } = useGeneration(generationId);
 * }
 */

/** Provider and client access. */
export { SSEProvider, useSSEClient } from './sse-provider.js';
export type { SSEProviderProps } from './sse-provider.js';

/** Connection status with a retry countdown. */
export { useSSEConnection } from './use-sse-connection.js';
export type { SSEConnection, UseSSEConnectionOptions } from './use-sse-connection.js';

/** Typed event handlers. */
export { useEventSubscription } from './use-event-subscription.js';

/** AI generations: the hook and its framework-free store. */
export { useGeneration } from './use-generation.js';
export type { GenerationState, UseGenerationOptions } from './use-generation.js';
export { GenerationStore } from './generation-store.js';
export type { GenerationEventType, GenerationSnapshot, GenerationStatus } from './generation-store.js';

/** Long-running tasks: the hook and its framework-free store. */
export { useTaskProgress } from './use-task-progress.js';
export type { TaskProgress, UseTaskProgressOptions } from './use-task-progress.js';
export { TaskStore } from './task-store.js';
export type { TaskEventType, TaskSnapshot, TaskStatus } from './task-store.js';

/** Reloading server state after lost events. */
export { createHttpStateLoaders } from './state-loaders.js';
export type {
  GenerationServerStatus,
  GenerationView,
  HttpStateLoadersOptions,
  StateLoaders,
  TaskServerStatus,
  TaskView,
} from './state-loaders.js';

/** Render batching. */
export { defaultFrameScheduler } from './frame-scheduler.js';
export type { FrameScheduler } from './frame-scheduler.js';

/** Protocol types, re-exported for convenience. */
export type { EventPayload, EventType, SSEClientEventKey, SSEClientEventMap } from '@infinitescribe/client';
