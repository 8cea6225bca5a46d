/**
 * `app.realtime`: what the host's own code calls in-process. Publishing takes the same event path
 * as `POST /api/events` (validation, ids, durability of critical events); jobs run exactly as
 * those started over HTTP (events, resume, cancel, restart hand-over, cluster limits).
 */
import { isServerEmittedType, type EventPayload } from '@infinitescribe/protocol';
import type { EventBus } from '../adapters/bus/event-bus.js';
import type { Metrics } from '../adapters/observability/metrics.js';
import type { EventStore } from '../adapters/store/event-store.js';
import { formatEventId } from '../core/event-id.js';
import { AppError } from '../core/errors.js';
import { isJournalEventType } from '../core/journal-events.js';
import type { RealtimeSettings } from '../core/settings.js';
import type { EventPublisher } from '../services/events/event-publisher.js';
import type { GenerationRequest, GenerationView } from '../services/generations/generation-service.js';
import type { ConnectionManager } from '../services/sse/connection-manager.js';
import { isReservedTopic } from '../services/sse/topic-access.js';
import type { TaskKindInfo } from '../services/tasks/task-kind.js';
import type { TaskView } from '../services/tasks/task-log.js';
import type { RealtimeContext } from './start-realtime.js';

/**
 * The host's own event types, for typed in-process publishing: augment it once with the map of the
 * types given to the plugin.
 * @example
 * const eventTypes = [defineEventType('comment.added', z.object({ docId: z.string(), text: z.string() }))] as const;
 * declare module '@infinitescribe/server' { interface RealtimeEventMap extends EventMapOf<typeof eventTypes> {} }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by the host's declaration merging
export interface RealtimeEventMap {}

type Publishable = { notification: EventPayload<'notification'> } & RealtimeEventMap;

/** One in-process publish: typed by `notification` and the host's RealtimeEventMap. */
export type RealtimePublishInput = {
  [TType in keyof Publishable & string]: {
    topic: string;
    type: TType;
    payload: Publishable[TType];
    /** Default: what the type was defined with (`defineEventType(…, { critical })`), else false. */
    critical?: boolean;
  };
}[keyof Publishable & string];

/** The running parts, for tests, benchmarks and monitoring; not a stable API. */
export interface RealtimeInternals {
  settings: Readonly<RealtimeSettings>;
  bus: EventBus;
  store: EventStore;
  metrics: Metrics;
  connections: ConnectionManager;
  publisher: EventPublisher;
}

/** `app.realtime`. */
export interface Realtime {
  /** Named in every stream's `connection.established`. */
  readonly instanceId: string;
  /**
   * Publishes like `POST /api/events`: validated against the catalogue (built-in and registered
   * types), refused for the server's own types and topics; resolves once fanned out, or once
   * stored for a critical event.
   * @throws AppError with the API's code: `invalid_event`, `forbidden_type`, `forbidden`,
   *   `store_unavailable`, `bus_unavailable`.
   */
  publish(input: RealtimePublishInput): Promise<{ id: string }>;
  readonly generations: {
    /** Starts a generation for `userId`, as `POST /api/ai/generations` does. */
    start(input: { userId: string } & GenerationRequest): Promise<{ generationId: string }>;
    get(userId: string, generationId: string): Promise<GenerationView>;
    cancel(userId: string, generationId: string): Promise<void>;
  };
  readonly tasks: {
    /** The kinds this server runs (`GET /api/tasks/kinds`). */
    kinds(): TaskKindInfo[];
    /** Starts a task of a registered kind for `userId`, as `POST /api/tasks` does. */
    start(input: { userId: string; kind: string; input?: unknown }): Promise<{ taskId: string }>;
    get(userId: string, taskId: string): Promise<TaskView>;
    cancel(userId: string, taskId: string): Promise<void>;
  };
  readonly internals: RealtimeInternals;
}

/** The API object over one plugin instance's running parts. */
export function createRealtimeApi(context: RealtimeContext): Realtime {
  const { publisher, generations, tasks } = context;
  return {
    instanceId: context.instanceId,
    async publish(input) {
      const { topic, type } = input as { topic: unknown; type: unknown };
      if (typeof type === 'string' && (isServerEmittedType(type) || isJournalEventType(type))) {
        throw new AppError('forbidden_type', `events of type "${type}" are published by the server only`);
      }
      if (typeof topic === 'string' && isReservedTopic(topic)) {
        throw new AppError('forbidden', `topic "${topic}" is server-internal`);
      }
      const record = await publisher.publish(input);
      return { id: formatEventId(record.id) };
    },
    generations: {
      async start({ userId, ...request }) {
        return { generationId: await generations.create(userId, request) };
      },
      get: (userId, generationId) => generations.get(userId, generationId),
      cancel: (userId, generationId) => generations.cancel(userId, generationId),
    },
    tasks: {
      kinds: () => tasks.kinds(),
      async start({ userId, kind, input }) {
        return { taskId: await tasks.create(userId, kind, input) };
      },
      get: (userId, taskId) => tasks.get(userId, taskId),
      cancel: (userId, taskId) => tasks.cancel(userId, taskId),
    },
    internals: {
      settings: context.settings,
      bus: context.bus,
      store: context.store,
      metrics: context.metrics,
      connections: context.connections,
      publisher,
    },
  };
}
