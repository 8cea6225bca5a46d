import { isIP } from 'node:net';
import { z } from 'zod';
import { PROVIDER_KINDS, type ProviderKind } from './provider-kinds.js';

/** Providers that need AI_API_KEY (local OpenAI-compatible servers usually need none). */
const KEYED_PROVIDERS: ReadonlySet<ProviderKind | undefined> = new Set([
  'openai',
  'azure-openai',
  'anthropic',
  'google',
]);
/** Default AI_AZURE_API_VERSION: a dated version that current models (o-series, GPT-5) accept. */
const AZURE_API_VERSION = '2025-04-01-preview';

const DEV_JWT_SECRET = 'infinitescribe-dev-secret-change-me-0123456789';

const bool = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

/** proxy-addr's names for address ranges, accepted in TRUST_PROXY next to addresses and CIDRs. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY: off, a hop count (how many proxies stand in front), or the proxies' addresses and
 * CIDRs. `true` is refused: it would take the client address from the left end of
 * X-Forwarded-For, which any client writes itself.
 */
const trustProxy = z
  .string()
  .optional()
  .transform((raw, context): false | number | string[] => {
    const value = raw?.trim() ?? '';
    if (value === '' || value === 'false' || value === '0') return false;
    if (value === 'true') {
      context.addIssue({
        code: 'custom',
        message:
          'true would trust any X-Forwarded-For a client sends; give the number of proxies in front (e.g. 1) or their addresses/CIDRs (e.g. 10.0.0.0/8,loopback)',
      });
      return false;
    }
    if (/^\d+$/.test(value)) return Number(value);
    const entries = value.split(',').map((entry) => entry.trim());
    const bad = entries.filter((entry) => !isProxyAddress(entry));
    if (bad.length > 0) {
      context.addIssue({ code: 'custom', message: `not an address, CIDR or range name: ${bad.join(', ')}` });
    }
    return entries;
  });

function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGE_NAMES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: int(0, 65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    INSTANCE_ID: optionalString,
    // A field check, not an object refinement: zod skips object refinements once any field has
    // failed, and every bad variable must be reported at once.
    JWT_SECRET: optionalString.refine((secret) => secret === undefined || secret.length >= 32, {
      message: 'JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit key)',
    }),
    JWT_JWKS_URL: z.url().optional(),
    JWT_ISSUER: optionalString,
    JWT_AUDIENCE: optionalString,
    JWT_TYP: optionalString,
    JWT_MAX_LIFETIME_MS: int(60_000, 365 * 86_400_000).default(86_400_000),
    AUTH_DEV_LOGIN: bool.optional(),
    AUTH_EXPIRY_WARNING_MS: int(0, 3_600_000).default(60_000),
    TICKET_TTL_MS: int(1_000, 600_000).default(30_000),
    TICKET_RATE_MAX: int(1, 1_000_000).default(30),
    TICKET_RATE_WINDOW_MS: int(1_000, 3_600_000).default(60_000),
    REDIS_URL: optionalString,
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,32}$/, 'letters, digits, _ . - only (it becomes a Redis hash tag)')
      .default('is'),
    DATABASE_URL: optionalString,
    DATA_DIR: z.string().min(1).default('./data'),
    HEARTBEAT_MS: int(1_000, 600_000).default(15_000),
    RETRY_MS: int(100, 600_000).default(2_000),
    MAX_CONNECTIONS_PER_USER: int(1, 1_000_000).default(16),
    MAX_CONNECTIONS_PER_IP: int(1, 10_000_000).default(2_000),
    MAX_BUFFERED_BYTES: int(1_024, 1_073_741_824).default(1_048_576),
    HOT_LOG_MAX_EVENTS: int(1, 10_000_000).default(1_000),
    HOT_LOG_MAX_AGE_MS: int(1_000, 30 * 86_400_000).default(3_600_000),
    HOT_LOG_MAX_BYTES: int(1_048_576, 68_719_476_736).default(67_108_864),
    REPLAY_MAX_EVENTS: int(1, 1_000_000).default(10_000),
    STORE_RETENTION_MS: int(60_000, 3650 * 86_400_000).default(7 * 86_400_000),
    STORE_CLEANUP_INTERVAL_MS: int(1_000, 86_400_000).default(3_600_000),
    JOURNAL_RETENTION_MS: int(60_000, 3650 * 86_400_000).default(86_400_000),
    PUBLISH_RATE_MAX: int(1, 10_000_000).default(200),
    PUBLISH_RATE_MAX_SERVICE: int(1, 10_000_000).default(10_000),
    PUBLISH_TOPIC_RATE_MAX: int(1, 10_000_000).default(100),
    PUBLISH_RATE_WINDOW_MS: int(100, 3_600_000).default(1_000),
    PUBLISH_NEW_TOPICS_MAX: int(1, 10_000_000).default(1_000),
    PUBLISH_NEW_TOPICS_WINDOW_MS: int(1_000, 86_400_000).default(60_000),
    TRUST_PROXY: trustProxy,
    REQUEST_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
    CORS_ORIGINS: optionalString,
    METRICS_TOKEN: optionalString,
    SHUTDOWN_TIMEOUT_MS: int(100, 60_000).default(10_000),
    SHUTDOWN_DRAIN_MS: int(0, 60_000).default(2_000),
    STATIC_DIR: optionalString,
    AI_PROVIDER: z.enum(PROVIDER_KINDS).optional(),
    AI_CLIENT: z.enum(['direct', 'ai-sdk']).optional(),
    AI_BASE_URL: optionalString.refine((url) => url === undefined || /^https?:\/\/[^/]/.test(url), {
      message: 'AI_BASE_URL must be an http(s) URL, e.g. http://localhost:11434/v1',
    }),
    AI_API_KEY: optionalString,
    AI_MODEL: optionalString,
    AI_MODELS: optionalString,
    AI_MAX_TOKENS_PARAM: z.enum(['max_tokens', 'max_completion_tokens']).optional(),
    AI_AZURE_API_VERSION: z
      .string()
      .regex(/^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$/, 'a dated API version (2025-04-01-preview, 2024-10-21) or v1')
      .default(AZURE_API_VERSION),
    AI_CONNECT_TIMEOUT_MS: int(100, 600_000).default(10_000),
    AI_IDLE_TIMEOUT_MS: int(100, 600_000).default(30_000),
    AI_TOTAL_TIMEOUT_MS: int(1_000, 3_600_000).default(300_000),
    AI_FLUSH_MS: int(1, 10_000).default(40),
    AI_MAX_CONCURRENT_PER_USER: int(1, 100_000).default(3),
    AI_CREATE_RATE_MAX: int(1, 10_000_000).default(30),
    AI_CREATE_RATE_WINDOW_MS: int(1_000, 86_400_000).default(60_000),
    AI_DEFAULT_MAX_TOKENS: int(1, 32_768).default(200),
    AI_OFFLINE_TOKENS_PER_SECOND: int(1, 1_000_000).default(40),
    AI_OFFLINE_SEED: int(0, 4_294_967_295).default(1),
    TASK_MAX_CONCURRENT_PER_USER: int(1, 100_000).default(2),
    TASK_MAX_QUEUED_PER_USER: int(0, 100_000).default(10),
    TASK_CREATE_RATE_MAX: int(1, 10_000_000).default(30),
    TASK_CREATE_RATE_WINDOW_MS: int(1_000, 86_400_000).default(60_000),
    TASK_PROGRESS_INTERVAL_MS: int(10, 60_000).default(100),
    TASK_MAX_DURATION_MS: int(1_000, 86_400_000).default(1_800_000),
    BREAKER_FAILURE_THRESHOLD: int(1, 1_000).default(3),
    BREAKER_COOL_DOWN_MS: int(100, 600_000).default(5_000),
    REDIS_COMMAND_TIMEOUT_MS: int(100, 60_000).default(3_000),
    BUS_PROBE_INTERVAL_MS: int(0, 600_000).default(5_000),
    BUS_PROBE_TIMEOUT_MS: int(100, 600_000).default(10_000),
    CONNECTION_LEASE_TTL_MS: int(1_000, 3_600_000).default(90_000),
  })
  .refine((env) => !(env.JWT_SECRET && env.JWT_JWKS_URL), {
    message: 'set JWT_SECRET or JWT_JWKS_URL, not both',
    path: ['JWT_JWKS_URL'],
    // Also when other variables are bad (zod skips refinements then by default); it reads only
    // the two strings, which are present whatever else failed.
    when: () => true,
  })
  .refine((env) => !(env.NODE_ENV === 'production' && !env.JWT_SECRET && !env.JWT_JWKS_URL), {
    message: 'required when NODE_ENV=production (the built-in dev secret is public)',
    path: ['JWT_SECRET'],
    when: () => true,
  })
  // An identity provider signs tokens for every application it serves: without an audience (and
  // issuer) check, a token minted for another application would be accepted here.
  .refine((env) => !(env.NODE_ENV === 'production' && env.JWT_JWKS_URL && !env.JWT_AUDIENCE), {
    message: 'required with JWT_JWKS_URL when NODE_ENV=production (the aud your identity provider sets for this API)',
    path: ['JWT_AUDIENCE'],
    when: () => true,
  })
  .refine((env) => !(env.NODE_ENV === 'production' && env.JWT_JWKS_URL && !env.JWT_ISSUER), {
    message: 'required with JWT_JWKS_URL when NODE_ENV=production (the iss of your identity provider)',
    path: ['JWT_ISSUER'],
    when: () => true,
  })
  // A running job's journal entry must outlive the job, or no instance could answer for it.
  .refine(
    (env) => {
      // Other variables may have failed their own checks: compare only what parsed.
      const limits = [env.AI_TOTAL_TIMEOUT_MS, env.TASK_MAX_DURATION_MS].filter((ms) => typeof ms === 'number');
      return typeof env.JOURNAL_RETENTION_MS !== 'number' || env.JOURNAL_RETENTION_MS >= Math.max(...limits);
    },
    {
      message: 'must be at least AI_TOTAL_TIMEOUT_MS and TASK_MAX_DURATION_MS (a running job needs its journal entry)',
      path: ['JOURNAL_RETENTION_MS'],
      when: () => true,
    },
  )
  // AI: every combination that cannot work is named at start, not at the first generation.
  .refine((env) => (aiProviderOf(env) ?? 'offline') === 'offline' || env.AI_MODEL !== undefined, {
    message: 'required with AI_PROVIDER, AI_BASE_URL or AI_API_KEY (e.g. gpt-5-mini, claude-sonnet-4-5, llama3.1)',
    path: ['AI_MODEL'],
    when: () => true,
  })
  .refine((env) => !KEYED_PROVIDERS.has(aiProviderOf(env)) || env.AI_API_KEY !== undefined, {
    message: 'required with AI_PROVIDER=openai, azure-openai, anthropic or google',
    path: ['AI_API_KEY'],
    when: () => true,
  })
  .refine((env) => aiProviderOf(env) !== 'azure-openai' || env.AI_BASE_URL !== undefined, {
    message: 'required with AI_PROVIDER=azure-openai: the resource endpoint, https://<resource>.openai.azure.com',
    path: ['AI_BASE_URL'],
    when: () => true,
  })
  .refine((env) => aiClientOf(env) !== undefined, {
    message:
      'anthropic and google go through the AI SDK only (AI_CLIENT=ai-sdk), azure-openai through the direct client only',
    path: ['AI_CLIENT'],
    when: () => true,
  });

interface AIEnv {
  AI_PROVIDER?: unknown;
  AI_CLIENT?: unknown;
  AI_BASE_URL?: unknown;
  AI_API_KEY?: unknown;
}

/** AI_PROVIDER as it applies: unset, OpenAI-compatible when AI_BASE_URL or AI_API_KEY is set, else offline. */
function aiProviderOf(env: AIEnv): ProviderKind | undefined {
  if (env.AI_PROVIDER === undefined)
    return (env.AI_BASE_URL ?? env.AI_API_KEY) !== undefined ? 'openai-compatible' : 'offline';
  return PROVIDER_KINDS.find((kind) => kind === env.AI_PROVIDER);
}

/**
 * AI_CLIENT as it applies, undefined for a combination that does not exist: the direct client by
 * default for Chat Completions (OpenAI-compatible, Azure), the AI SDK for the others.
 */
function aiClientOf(env: AIEnv): 'direct' | 'ai-sdk' | undefined {
  const provider = aiProviderOf(env);
  const client =
    env.AI_CLIENT ?? (provider === 'openai' || provider === 'anthropic' || provider === 'google' ? 'ai-sdk' : 'direct');
  if (client === 'direct' && (provider === 'anthropic' || provider === 'google')) return undefined;
  if (client === 'ai-sdk' && provider === 'azure-openai') return undefined;
  return client === 'direct' || client === 'ai-sdk' ? client : undefined;
}

/**
 * AI_MAX_TOKENS_PARAM as it applies: OpenAI (AI_BASE_URL unset or api.openai.com) and Azure serve
 * current models, which want `max_completion_tokens`; other servers know `max_tokens`.
 */
function maxTokensParamOf(provider: ProviderKind, baseUrl: string | undefined): 'max_tokens' | 'max_completion_tokens' {
  const openAI = baseUrl === undefined || (URL.canParse(baseUrl) && new URL(baseUrl).hostname === 'api.openai.com');
  return provider === 'azure-openai' || openAI ? 'max_completion_tokens' : 'max_tokens';
}

/** How access tokens are verified: a shared HS256 secret or a remote JWKS. */
export type JwtConfig = { kind: 'secret'; secret: string; isDevSecret: boolean } | { kind: 'jwks'; url: string };

/** The validated, frozen configuration. Nothing else in the process reads `process.env`. */
export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  instanceId: string | undefined;
  jwt: JwtConfig;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  /** Required `typ` header of access tokens; unset: not checked. */
  jwtTyp: string | undefined;
  /** Tokens whose `exp` is further ahead than this are refused. */
  jwtMaxLifetimeMs: number;
  devLogin: boolean;
  authExpiryWarningMs: number;
  ticketTtlMs: number;
  /** Tickets one user may be issued per window (each stays valid for ticketTtlMs). */
  ticketRateMax: number;
  ticketRateWindowMs: number;
  redisUrl: string | undefined;
  /** Prefix and hash tag of every Redis key; deployments sharing one Redis need distinct ones. */
  redisKeyPrefix: string;
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
  /**
   * Which X-Forwarded-For hops to believe (Fastify's trustProxy): off, how many proxies stand in
   * front, or their addresses and CIDRs.
   */
  trustProxy: false | number | string[];
  /** A request whose headers and body have not all arrived after this is answered 408 (streams are not affected). */
  requestTimeoutMs: number;
  corsOrigins: string[];
  metricsToken: string | undefined;
  shutdownTimeoutMs: number;
  /** After streams are closed, in-flight requests get this long before sockets are cut. */
  shutdownDrainMs: number;
  staticDir: string | undefined;
  /** Which service generations come from (AI_PROVIDER, or what AI_BASE_URL / AI_API_KEY imply). */
  aiProvider: ProviderKind;
  /** Our direct Chat Completions client, or the AI SDK's `streamText`. */
  aiClient: 'direct' | 'ai-sdk';
  /** The service's endpoint (…/v1; Azure: the resource endpoint); unset: the service's own. */
  aiBaseUrl: string | undefined;
  aiApiKey: string | undefined;
  aiModel: string | undefined;
  /** Further models a request may name (AI_MODELS), besides `aiModel`. */
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

/** Whether the listen address `host` is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(?:\.\d{1,3}){3}$/.test(bare);
}

/** Thrown at start-up with every configuration problem listed at once. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Parses and validates the environment once. Unknown variables are ignored; every bad one is
 * reported together so an operator fixes them in one go.
 * @example parseConfig({ PORT: '0', JWT_SECRET: 'x'.repeat(32) }).port === 0
 */
export function parseConfig(env: Record<string, string | undefined>): Readonly<Config> {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.') || 'env'}: ${issue.message}`));
  }
  const value = result.data;
  const jwt: JwtConfig = value.JWT_JWKS_URL
    ? { kind: 'jwks', url: value.JWT_JWKS_URL }
    : { kind: 'secret', secret: value.JWT_SECRET ?? DEV_JWT_SECRET, isDevSecret: value.JWT_SECRET === undefined };
  const config: Config = {
    nodeEnv: value.NODE_ENV,
    port: value.PORT,
    host: value.HOST,
    logLevel: value.LOG_LEVEL,
    instanceId: value.INSTANCE_ID,
    jwt,
    jwtIssuer: value.JWT_ISSUER,
    jwtAudience: value.JWT_AUDIENCE,
    jwtTyp: value.JWT_TYP,
    jwtMaxLifetimeMs: value.JWT_MAX_LIFETIME_MS,
    // Dev login signs tokens with the HS256 secret, so it cannot exist in JWKS mode. It signs any
    // token for anyone: unless asked for, only on a server nobody else can reach.
    devLogin:
      jwt.kind === 'secret' &&
      (value.AUTH_DEV_LOGIN ?? (value.NODE_ENV !== 'production' && isLoopbackHost(value.HOST))),
    authExpiryWarningMs: value.AUTH_EXPIRY_WARNING_MS,
    ticketTtlMs: value.TICKET_TTL_MS,
    ticketRateMax: value.TICKET_RATE_MAX,
    ticketRateWindowMs: value.TICKET_RATE_WINDOW_MS,
    redisUrl: value.REDIS_URL,
    redisKeyPrefix: value.REDIS_KEY_PREFIX,
    databaseUrl: value.DATABASE_URL,
    dataDir: value.DATA_DIR,
    heartbeatMs: value.HEARTBEAT_MS,
    retryMs: value.RETRY_MS,
    maxConnectionsPerUser: value.MAX_CONNECTIONS_PER_USER,
    maxConnectionsPerIp: value.MAX_CONNECTIONS_PER_IP,
    maxBufferedBytes: value.MAX_BUFFERED_BYTES,
    hotLogMaxEvents: value.HOT_LOG_MAX_EVENTS,
    hotLogMaxAgeMs: value.HOT_LOG_MAX_AGE_MS,
    hotLogMaxBytes: value.HOT_LOG_MAX_BYTES,
    replayMaxEvents: value.REPLAY_MAX_EVENTS,
    storeRetentionMs: value.STORE_RETENTION_MS,
    storeCleanupIntervalMs: value.STORE_CLEANUP_INTERVAL_MS,
    journalRetentionMs: value.JOURNAL_RETENTION_MS,
    publishRateMax: value.PUBLISH_RATE_MAX,
    publishRateMaxService: value.PUBLISH_RATE_MAX_SERVICE,
    publishTopicRateMax: value.PUBLISH_TOPIC_RATE_MAX,
    publishRateWindowMs: value.PUBLISH_RATE_WINDOW_MS,
    publishNewTopicsMax: value.PUBLISH_NEW_TOPICS_MAX,
    publishNewTopicsWindowMs: value.PUBLISH_NEW_TOPICS_WINDOW_MS,
    trustProxy: value.TRUST_PROXY,
    requestTimeoutMs: value.REQUEST_TIMEOUT_MS,
    corsOrigins: (value.CORS_ORIGINS ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin.length > 0),
    metricsToken: value.METRICS_TOKEN,
    shutdownTimeoutMs: value.SHUTDOWN_TIMEOUT_MS,
    shutdownDrainMs: value.SHUTDOWN_DRAIN_MS,
    staticDir: value.STATIC_DIR,
    aiProvider: aiProviderOf(value) ?? 'offline',
    aiClient: aiClientOf(value) ?? 'direct',
    aiBaseUrl: value.AI_BASE_URL,
    aiApiKey: value.AI_API_KEY,
    aiModel: value.AI_MODEL,
    aiModels: (value.AI_MODELS ?? '')
      .split(',')
      .map((model) => model.trim())
      .filter((model) => model.length > 0),
    aiMaxTokensParam:
      value.AI_MAX_TOKENS_PARAM ?? maxTokensParamOf(aiProviderOf(value) ?? 'offline', value.AI_BASE_URL),
    aiAzureApiVersion: value.AI_AZURE_API_VERSION,
    aiConnectTimeoutMs: value.AI_CONNECT_TIMEOUT_MS,
    aiIdleTimeoutMs: value.AI_IDLE_TIMEOUT_MS,
    aiTotalTimeoutMs: value.AI_TOTAL_TIMEOUT_MS,
    aiFlushMs: value.AI_FLUSH_MS,
    aiMaxConcurrentPerUser: value.AI_MAX_CONCURRENT_PER_USER,
    aiCreateRateMax: value.AI_CREATE_RATE_MAX,
    aiCreateRateWindowMs: value.AI_CREATE_RATE_WINDOW_MS,
    aiDefaultMaxTokens: value.AI_DEFAULT_MAX_TOKENS,
    aiOfflineTokensPerSecond: value.AI_OFFLINE_TOKENS_PER_SECOND,
    aiOfflineSeed: value.AI_OFFLINE_SEED,
    taskMaxConcurrentPerUser: value.TASK_MAX_CONCURRENT_PER_USER,
    taskMaxQueuedPerUser: value.TASK_MAX_QUEUED_PER_USER,
    taskCreateRateMax: value.TASK_CREATE_RATE_MAX,
    taskCreateRateWindowMs: value.TASK_CREATE_RATE_WINDOW_MS,
    taskProgressIntervalMs: value.TASK_PROGRESS_INTERVAL_MS,
    taskMaxDurationMs: value.TASK_MAX_DURATION_MS,
    breakerFailureThreshold: value.BREAKER_FAILURE_THRESHOLD,
    breakerCoolDownMs: value.BREAKER_COOL_DOWN_MS,
    redisCommandTimeoutMs: value.REDIS_COMMAND_TIMEOUT_MS,
    busProbeIntervalMs: value.BUS_PROBE_INTERVAL_MS,
    busProbeTimeoutMs: value.BUS_PROBE_TIMEOUT_MS,
    connectionLeaseTtlMs: value.CONNECTION_LEASE_TTL_MS,
  };
  return Object.freeze(config);
}
