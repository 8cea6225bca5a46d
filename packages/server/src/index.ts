/**
 * `@infinitescribe/server`: the realtime server as a library (docs/library.md). The standalone
 * host (apps/backend) and teams' own backends use only what this file exports.
 */
export { realtimePlugin } from './plugin.js';
export {
  envNameOf,
  inEnvTerms,
  REALTIME_ENV_NAMES,
  realtimeOptionsFromEnv,
  RealtimeOptionsError,
  resolveRealtimeOptions,
  type JwtOptions,
  type OptionProblem,
  type RealtimePluginOptions,
  type ResolvedRealtimeOptions,
} from './plugin/options.js';
export {
  type Realtime,
  type RealtimeEventMap,
  type RealtimeInternals,
  type RealtimePublishInput,
} from './plugin/realtime-api.js';
export { realtimeServerOptions, type RealtimeServerOptions } from './plugin/server-options.js';
export { DEFAULT_LISTEN_SOCKETS, listenOnSockets, type ListenSocketsOptions } from './plugin/listen-sockets.js';
export { registerNotFound, type ErrorCounter } from './routes/error-handler.js';
export type { RealtimeSettings, JwtSettings } from './core/settings.js';
export { AppError } from './core/errors.js';
export { BusLayoutError, type EventBus } from './adapters/bus/event-bus.js';
export type { EventStore } from './adapters/store/event-store.js';
export type { TicketStore } from './adapters/auth/ticket-store.js';
export { createLogger } from './adapters/observability/logger.js';
export {
  defineEventType,
  EventCatalog,
  type EventMapOf,
  type EventTypeDefinition,
} from './services/events/event-types.js';
export {
  lastUserText,
  ProviderError,
  toProviderError,
  type AIProvider,
  type ChatMessage,
  type CompletionChunk,
  type CompletionRequest,
  type CompletionUsage,
  type HostAIProvider,
  type ProviderInfo,
} from './adapters/ai/ai-provider.js';
export {
  defineTaskKind,
  TaskError,
  type RunnableTaskKind,
  type TaskContext,
  type TaskKind,
  type TaskKindInfo,
  type TaskRunContext,
} from './services/tasks/task-kind.js';
export { MAX_PROMPT_CHARS, MAX_TOKENS_LIMIT } from './routes/api-schemas.js';
export {
  createPublisher,
  type BuiltInPublishable,
  type Publisher,
  type PublisherOptions,
  type PublishInput,
} from './publisher/create-publisher.js';
export { PublishError } from './publisher/publish-error.js';
