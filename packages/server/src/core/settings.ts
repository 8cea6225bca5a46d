import type { ProviderKind } from './provider-kinds.js';

/** How access tokens are verified: a shared HS256 secret or a remote JWKS. */
export type JwtSettings = { kind: 'secret'; secret: string } | { kind: 'jwks'; url: string };

/**
 * What the realtime layer runs with: the plugin's options, validated once, with every default
 * applied (plugin/options.ts). Plain data, read by every layer; nothing reads `process.env`.
 */
export interface RealtimeSettings {
  /** Refuses what is unsafe on a public server (a JWKS without audience and issuer, …). */
  production: boolean;
  /** Shown in `connection.established`; also names this instance's jobs and leases in a cluster. */
  instanceId: string | undefined;
  jwt: JwtSettings;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  /** Required `typ` header of access tokens; unset: not checked. */
  jwtTyp: string | undefined;
  /** Tokens whose `exp` is further ahead than this are refused. */
  jwtMaxLifetimeMs: number;
  /** `POST /api/auth/dev-token`: signs any token for anyone, so only where asked for. */
  devLogin: boolean;
  authExpiryWarningMs: number;
  ticketTtlMs: number;
  /** Tickets one user may be issued per window (each stays valid for ticketTtlMs). */
  ticketRateMax: number;
  ticketRateWindowMs: number;
  redisUrl: string | undefined;
  /** Nodes (`host:port`) of a Redis Cluster, instead of redisUrl: sharded pub/sub (docs/scaling.md). */
  redisClusterNodes: string[];
  /** Prefix and hash tag of every Redis key; deployments sharing one Redis need distinct ones. */
  redisKeyPrefix: string;
  /** 1: the bus is one slot; more: partitions with their own slots (docs/sharding-the-bus.md). */
  redisBusPartitions: number;
  databaseUrl: string | undefined;
  dataDir: string;
  heartbeatMs: number;
  retryMs: number;
  maxConnectionsPerUser: number;
  maxConnectionsPerIp: number;
  maxBufferedBytes: number;
  hotLogMaxEvents: number;
  hotLogMaxAgeMs: number;
  /** In-process hot log: estimated bytes across all topics; the oldest events go first past it. */
  hotLogMaxBytes: number;
  replayMaxEvents: number;
  storeRetentionMs: number;
  storeCleanupIntervalMs: number;
  /** The job journals (their requests: prompts, task inputs) are kept this long, less than critical events. */
  journalRetentionMs: number;
  /** Chat conversations with no new turn for this long are deleted (CONVERSATION_RETENTION_MS). */
  conversationRetentionMs: number;
  /** Publishes allowed per user token per window (per instance). */
  publishRateMax: number;
  /** Publishes allowed per service token (scope `events:service`) per window (per instance). */
  publishRateMaxService: number;
  /** Publishes allowed per topic per window, whoever publishes (per instance). */
  publishTopicRateMax: number;
  publishRateWindowMs: number;
  /** Topics a publisher may bring into existence per window (those not published to recently). */
  publishNewTopicsMax: number;
  publishNewTopicsWindowMs: number;
  corsOrigins: string[];
  metricsToken: string | undefined;
  /** After streams are closed, in-flight requests get this long before sockets are cut. */
  shutdownDrainMs: number;
  /** Which service generations come from (AI_PROVIDER), unless the host passes its own provider. */
  aiService: ProviderKind;
  /** Our direct Chat Completions client, or the AI SDK's `streamText`. */
  aiClient: 'direct' | 'ai-sdk';
  /** The service's endpoint (…/v1; Azure: the resource endpoint); unset: the service's own. */
  aiBaseUrl: string | undefined;
  aiApiKey: string | undefined;
  aiModel: string | undefined;
  /** Further models a request may name, besides `aiModel`. */
  aiModels: string[];
  /** The direct client's name for the reply's token bound. */
  aiMaxTokensParam: 'max_tokens' | 'max_completion_tokens';
  /** Azure OpenAI: a dated `api-version` (deployment URLs) or `v1`. */
  aiAzureApiVersion: string;
  /** Provider request: until response headers, between chunks, and in all (also caps any generation). */
  aiConnectTimeoutMs: number;
  aiIdleTimeoutMs: number;
  aiTotalTimeoutMs: number;
  /** Deltas are coalesced into at most one event per this interval. */
  aiFlushMs: number;
  aiMaxConcurrentPerUser: number;
  /** Generations one user may start per window, on one instance. */
  aiCreateRateMax: number;
  aiCreateRateWindowMs: number;
  /** maxTokens of a generation that names none. */
  aiDefaultMaxTokens: number;
  /** Pace and seed of the offline demo provider. */
  aiOfflineTokensPerSecond: number;
  aiOfflineSeed: number;
  /** Tasks running at once per user; more wait queued, up to the queue bound (then 429). */
  taskMaxConcurrentPerUser: number;
  taskMaxQueuedPerUser: number;
  /** Tasks one user may start per window, on one instance. */
  taskCreateRateMax: number;
  taskCreateRateWindowMs: number;
  /** At most one `task.progress` per task per this interval (stage boundaries and 100 % go at once). */
  taskProgressIntervalMs: number;
  /** A task not finished this long after it was created fails (queue time included). */
  taskMaxDurationMs: number;
  /** Circuit breakers (Redis, PostgreSQL): consecutive failures that open one, and its cool-down. */
  breakerFailureThreshold: number;
  breakerCoolDownMs: number;
  /** A Redis command unanswered this long counts as failed (its outcome is unknown). */
  redisCommandTimeoutMs: number;
  /** Self-addressed bus probe (Redis only): interval (0 = off) and how late one may come back. */
  busProbeIntervalMs: number;
  busProbeTimeoutMs: number;
  /** Cluster-wide stream count (Redis only): a lease not refreshed for this long stops counting. */
  connectionLeaseTtlMs: number;
}
