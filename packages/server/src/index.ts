/**
 * `@infinitescribe/server`: the realtime server as a library. The standalone host (apps/backend)
 * and teams' own backends use only what this file exports.
 */
export { buildApp, type AppDependencies, type RealtimeServices } from './plugin.js';
export { parseConfig, ConfigError, type Config, type JwtConfig } from './core/config.js';
export { AppError } from './core/errors.js';
export { createLogger } from './adapters/observability/logger.js';
export {
  ProviderError,
  lastUserText,
  toProviderError,
  type AIProvider,
  type CompletionChunk,
  type CompletionRequest,
  type CompletionUsage,
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
