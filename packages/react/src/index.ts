/**
 * @module @infinitescribe/react: React bindings for the InfiniteScribe Realtime client. Thin hooks
 * over the framework-free stores of `@infinitescribe/client` (`useSyncExternalStore`): the client
 * owns the connection, its generation and task stores fold events, and React only reads them.
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

/** AI generations (the store is `GenerationStore` of `@infinitescribe/client`). */
export { useGeneration } from './use-generation.js';
export type { GenerationState, UseGenerationOptions } from './use-generation.js';

/** Long-running tasks (the store is `TaskStore` of `@infinitescribe/client`). */
export { useTaskProgress } from './use-task-progress.js';
export type { TaskProgress, UseTaskProgressOptions } from './use-task-progress.js';

/** How the provider reloads server state after lost events (from the client package). */
export { createHttpStateLoaders } from '@infinitescribe/client';
export type {
  GenerationStatus,
  HttpStateLoadersOptions,
  LoadedGenerationView,
  StateLoaders,
  TaskStatus,
} from '@infinitescribe/client';

/** Render batching. */
export { defaultFrameScheduler } from './frame-scheduler.js';
export type { FrameScheduler } from './frame-scheduler.js';

/** Protocol types, re-exported for convenience. */
export type {
  EventMap,
  EventPayload,
  EventType,
  PublishedEvent,
  SSEClientEventKey,
  SSEClientEventMap,
} from '@infinitescribe/client';
