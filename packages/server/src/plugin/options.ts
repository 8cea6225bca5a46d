/**
 * The plugin's options: one table of every setting (its check, its default, the environment
 * variable a host may read it from), validated once with every problem reported together.
 * `resolveRealtimeOptions` turns options into {@link RealtimeSettings}; `realtimeOptionsFromEnv`
 * reads them from an environment for hosts that are configured that way (the standalone host is).
 * The plugin itself never reads `process.env`.
 */
import { z } from 'zod';
import type { HostAIProvider } from '../adapters/ai/ai-provider.js';
import type { EventBus } from '../adapters/bus/event-bus.js';
import type { TicketStore } from '../adapters/auth/ticket-store.js';
import type { EventStore } from '../adapters/store/event-store.js';
import { MAX_BUS_PARTITIONS } from '../core/event-id.js';
import { PROVIDER_KINDS, type ProviderKind } from '../core/provider-kinds.js';
import type { JwtSettings, RealtimeSettings } from '../core/settings.js';
import type { EventTypeDefinition } from '../services/events/event-types.js';
import type { RunnableTaskKind } from '../services/tasks/task-kind.js';

const SECOND = 1_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Default aiAzureApiVersion: a dated version that current models (o-series, GPT-5) accept. */
const AZURE_API_VERSION = '2025-04-01-preview';
/** Services that need an API key (local OpenAI-compatible servers usually need none). */
const KEYED_SERVICES: ReadonlySet<ProviderKind> = new Set(['openai', 'azure-openai', 'anthropic', 'google']);

/** How an environment variable's text becomes an option value. */
type EnvForm = 'int' | 'bool' | 'list' | 'text';
const envForms = new WeakMap<z.ZodType, EnvForm>();
function readFrom<TSchema extends z.ZodType>(form: EnvForm, schema: TSchema): TSchema {
  envForms.set(schema, form);
  return schema;
}

const int = (min: number, max: number, fallback: number) =>
  readFrom('int', z.number().int().min(min).max(max).default(fallback));
const text = () => readFrom('text', z.string().trim().min(1).optional());
const flag = (fallback: boolean) => readFrom('bool', z.boolean().default(fallback));
const list = () => readFrom('list', z.array(z.string().trim().min(1)).default([]));
const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  readFrom('text', z.enum(values).optional());
const pattern = (regex: RegExp, message: string) => readFrom('text', z.string().trim().regex(regex, message));

/** Every plain setting (all but `jwt` and the objects the host passes), with its check and default. */
const SETTINGS = {
  production: flag(false),
  instanceId: pattern(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only, at most 64').optional(),
  devLogin: flag(false),
  authExpiryWarningMs: int(0, HOUR, MINUTE),
  ticketTtlMs: int(SECOND, 10 * MINUTE, 30 * SECOND),
  ticketRateMax: int(1, 1_000_000, 30),
  ticketRateWindowMs: int(SECOND, HOUR, MINUTE),
  redisUrl: text(),
  redisClusterNodes: list(),
  redisKeyPrefix: pattern(
    /^[A-Za-z0-9_.-]{1,32}$/,
    'letters, digits, _ . - only (it becomes a Redis hash tag)',
  ).default('is'),
  redisBusPartitions: int(1, MAX_BUS_PARTITIONS, 1),
  databaseUrl: text(),
  dataDir: readFrom('text', z.string().min(1).default('./data')),
  heartbeatMs: int(SECOND, 10 * MINUTE, 15 * SECOND),
  retryMs: int(100, 10 * MINUTE, 2 * SECOND),
  maxConnectionsPerUser: int(1, 1_000_000, 16),
  maxConnectionsPerIp: int(1, 10_000_000, 2_000),
  maxBufferedBytes: int(1_024, 1_073_741_824, 1_048_576),
  hotLogMaxEvents: int(1, 10_000_000, 1_000),
  hotLogMaxAgeMs: int(SECOND, 30 * DAY, HOUR),
  hotLogMaxBytes: int(1_048_576, 68_719_476_736, 67_108_864),
  replayMaxEvents: int(1, 1_000_000, 10_000),
  storeRetentionMs: int(MINUTE, 3650 * DAY, 7 * DAY),
  storeCleanupIntervalMs: int(SECOND, DAY, HOUR),
  journalRetentionMs: int(MINUTE, 3650 * DAY, DAY),
  conversationRetentionMs: int(MINUTE, 3650 * DAY, 30 * DAY),
  publishRateMax: int(1, 10_000_000, 200),
  publishRateMaxService: int(1, 10_000_000, 10_000),
  publishTopicRateMax: int(1, 10_000_000, 100),
  publishRateWindowMs: int(100, HOUR, SECOND),
  publishNewTopicsMax: int(1, 10_000_000, 1_000),
  publishNewTopicsWindowMs: int(SECOND, DAY, MINUTE),
  corsOrigins: list(),
  metricsToken: text(),
  shutdownDrainMs: int(0, MINUTE, 2 * SECOND),
  aiService: choice(PROVIDER_KINDS),
  aiClient: choice(['direct', 'ai-sdk'] as const),
  aiBaseUrl: pattern(/^https?:\/\/[^/]/, 'an http(s) URL, e.g. http://localhost:11434/v1').optional(),
  aiApiKey: text(),
  aiModel: text(),
  aiModels: list(),
  aiMaxTokensParam: choice(['max_tokens', 'max_completion_tokens'] as const),
  aiAzureApiVersion: pattern(
    /^(v1|\d{4}-\d{2}-\d{2}(-preview)?)$/,
    'a dated API version (2025-04-01-preview, 2024-10-21) or v1',
  ).default(AZURE_API_VERSION),
  aiConnectTimeoutMs: int(100, 10 * MINUTE, 10 * SECOND),
  aiIdleTimeoutMs: int(100, 10 * MINUTE, 30 * SECOND),
  aiTotalTimeoutMs: int(SECOND, HOUR, 5 * MINUTE),
  aiFlushMs: int(1, 10 * SECOND, 40),
  aiMaxConcurrentPerUser: int(1, 100_000, 3),
  aiCreateRateMax: int(1, 10_000_000, 30),
  aiCreateRateWindowMs: int(SECOND, DAY, MINUTE),
  aiDefaultMaxTokens: int(1, 32_768, 200),
  aiOfflineTokensPerSecond: int(1, 1_000_000, 40),
  aiOfflineSeed: int(0, 4_294_967_295, 1),
  taskMaxConcurrentPerUser: int(1, 100_000, 2),
  taskMaxQueuedPerUser: int(0, 100_000, 10),
  taskCreateRateMax: int(1, 10_000_000, 30),
  taskCreateRateWindowMs: int(SECOND, DAY, MINUTE),
  taskProgressIntervalMs: int(10, MINUTE, 100),
  taskMaxDurationMs: int(SECOND, DAY, 30 * MINUTE),
  breakerFailureThreshold: int(1, 1_000, 3),
  breakerCoolDownMs: int(100, 10 * MINUTE, 5 * SECOND),
  redisCommandTimeoutMs: int(100, MINUTE, 3 * SECOND),
  busProbeIntervalMs: int(0, 10 * MINUTE, 5 * SECOND),
  busProbeTimeoutMs: int(100, 10 * MINUTE, 10 * SECOND),
  connectionLeaseTtlMs: int(SECOND, HOUR, 90 * SECOND),
};

type SettingName = keyof typeof SETTINGS;

/** The `jwt` option: a shared HS256 secret, or an identity provider's JWKS. */
export type JwtOptions = {
  /** Required `iss`; strongly advised (and required with `production`) for a JWKS. */
  issuer?: string;
  /** Required `aud`; strongly advised (and required with `production`) for a JWKS. */
  audience?: string;
  /** Required `typ` header (e.g. `at+jwt`); unset: not checked. */
  typ?: string;
  /** Tokens whose `exp` is further ahead than this are refused. Default 24 h. */
  maxLifetimeMs?: number;
} & ({ secret: string; jwksUrl?: never } | { jwksUrl: string; secret?: never });

const jwtSchema = z
  .object({
    secret: z.string().min(32, 'at least 32 characters (HS256 needs a 256-bit key)').optional(),
    jwksUrl: z.url().optional(),
    issuer: z.string().trim().min(1).optional(),
    audience: z.string().trim().min(1).optional(),
    typ: z.string().trim().min(1).optional(),
    maxLifetimeMs: z
      .number()
      .int()
      .min(MINUTE)
      .max(365 * DAY)
      .default(DAY),
  })
  .refine((jwt) => jwt.secret === undefined || jwt.jwksUrl === undefined, {
    message: 'give secret or jwksUrl, not both',
    path: ['jwksUrl'],
    when: () => true,
  })
  .refine((jwt) => jwt.secret !== undefined || jwt.jwksUrl !== undefined, {
    message: 'required: secret (HS256) or jwksUrl (an identity provider)',
    path: ['secret'],
    when: () => true,
  });

/** What `register(realtimePlugin, options)` takes. Every option is optional but `jwt`. */
export type RealtimePluginOptions = {
  jwt: JwtOptions;
  /** Event types of the host's own, validated on publish like the built-in ones (see defineEventType). */
  eventTypes?: readonly EventTypeDefinition[];
  /** Task kinds `POST /api/tasks` and `app.realtime.tasks.start` run (see defineTaskKind). */
  taskKinds?: readonly RunnableTaskKind[];
  /** The AI provider generations and task kinds use; default: what the `ai*` settings select (offline when none). */
  aiProvider?: HostAIProvider;
  /** Adapters built by the host (tests, custom deployments); default: what the settings select. */
  adapters?: { bus?: EventBus; store?: EventStore; tickets?: TicketStore };
  /** Mount the routes under this prefix (also honoured when the plugin is registered inside a prefixed context). */
  prefix?: string;
} & { [TName in SettingName]?: z.input<(typeof SETTINGS)[TName]> };

/** The options, checked: the settings, and the objects the host passed. */
export interface ResolvedRealtimeOptions {
  settings: Readonly<RealtimeSettings>;
  eventTypes: readonly EventTypeDefinition[];
  taskKinds: readonly RunnableTaskKind[];
  aiProvider: HostAIProvider | undefined;
  adapters: { bus?: EventBus; store?: EventStore; tickets?: TicketStore };
}

/** One problem of the options, where it is (`['heartbeatMs']`, `['jwt', 'audience']`) and what. */
export interface OptionProblem {
  path: string[];
  message: string;
}

/** Thrown by `register` (and by resolveRealtimeOptions) with every problem of the options at once. */
export class RealtimeOptionsError extends Error {
  readonly problems: readonly OptionProblem[];
  constructor(problems: readonly OptionProblem[]) {
    super(
      `invalid realtime options:\n${problems.map((problem) => `  - ${problem.path.join('.') || 'options'}: ${problem.message}`).join('\n')}`,
    );
    this.name = 'RealtimeOptionsError';
    this.problems = problems;
  }
}

const objects = {
  eventTypes: z
    .array(
      z.custom<EventTypeDefinition>(
        (value) => typeof value === 'object' && value !== null && 'name' in value && 'schema' in value,
        'an event type made by defineEventType',
      ),
    )
    .default([]),
  taskKinds: z
    .array(
      z.custom<RunnableTaskKind>(
        (value) => typeof value === 'object' && value !== null && 'prepare' in value && 'info' in value,
        'a task kind made by defineTaskKind',
      ),
    )
    .default([]),
  aiProvider: z
    .custom<HostAIProvider>(
      (value) => typeof value === 'object' && value !== null && typeof (value as HostAIProvider).stream === 'function',
      'an AIProvider: an object with stream(request, signal)',
    )
    .optional(),
  adapters: z.custom<ResolvedRealtimeOptions['adapters']>((value) => typeof value === 'object').default({}),
  prefix: z.string().optional(),
};

const optionsSchema = z
  .object({ jwt: jwtSchema, ...objects, ...SETTINGS })
  // An identity provider signs tokens for every application it serves: without an audience (and
  // issuer) check, a token minted for another application would be accepted here.
  .refine((options) => !(options.production && options.jwt?.jwksUrl && !options.jwt.audience), {
    message: 'required with jwksUrl in production (the aud your identity provider sets for this API)',
    path: ['jwt', 'audience'],
    when: () => true,
  })
  .refine((options) => !(options.production && options.jwt?.jwksUrl && !options.jwt.issuer), {
    message: 'required with jwksUrl in production (the iss of your identity provider)',
    path: ['jwt', 'issuer'],
    when: () => true,
  })
  .refine((options) => !(options.redisUrl !== undefined && (options.redisClusterNodes?.length ?? 0) > 0), {
    message: 'give redisUrl (one Redis) or redisClusterNodes (a Redis Cluster), not both',
    path: ['redisClusterNodes'],
    when: () => true,
  })
  // A running job's journal entry must outlive the job, or no instance could answer for it.
  .refine(
    (options) => {
      const limits = [options.aiTotalTimeoutMs, options.taskMaxDurationMs].filter((ms) => typeof ms === 'number');
      return typeof options.journalRetentionMs !== 'number' || options.journalRetentionMs >= Math.max(...limits);
    },
    {
      message: 'must be at least aiTotalTimeoutMs and taskMaxDurationMs (a running job needs its journal entry)',
      path: ['journalRetentionMs'],
      when: () => true,
    },
  )
  // AI: every combination that cannot work is named at start, not at the first generation. A
  // provider the host passes replaces these settings.
  .refine((options) => options.aiProvider !== undefined || aiServiceOf(options) === 'offline' || !!options.aiModel, {
    message: 'required with aiService, aiBaseUrl or aiApiKey (e.g. gpt-5-mini, claude-sonnet-4-5, llama3.1)',
    path: ['aiModel'],
    when: () => true,
  })
  .refine(
    (options) => options.aiProvider !== undefined || !KEYED_SERVICES.has(aiServiceOf(options)) || !!options.aiApiKey,
    {
      message: 'required with aiService openai, azure-openai, anthropic or google',
      path: ['aiApiKey'],
      when: () => true,
    },
  )
  .refine(
    (options) =>
      options.aiProvider !== undefined || aiServiceOf(options) !== 'azure-openai' || options.aiBaseUrl !== undefined,
    {
      message: 'required with aiService azure-openai: the resource endpoint, https://<resource>.openai.azure.com',
      path: ['aiBaseUrl'],
      when: () => true,
    },
  )
  .refine((options) => options.aiProvider !== undefined || aiClientOf(options) !== undefined, {
    message:
      'anthropic and google go through the AI SDK only (aiClient ai-sdk), azure-openai through the direct client only',
    path: ['aiClient'],
    when: () => true,
  });

interface AIOptions {
  aiService?: unknown;
  aiClient?: unknown;
  aiBaseUrl?: unknown;
  aiApiKey?: unknown;
}

/** The AI service as it applies: unset means OpenAI-compatible when a URL or key is given, else offline. */
function aiServiceOf(options: AIOptions): ProviderKind {
  const named = PROVIDER_KINDS.find((kind) => kind === options.aiService);
  if (named) return named;
  return (options.aiBaseUrl ?? options.aiApiKey) !== undefined ? 'openai-compatible' : 'offline';
}

/**
 * The client as it applies, undefined for a combination that does not exist: the direct client by
 * default for Chat Completions (OpenAI-compatible, Azure), the AI SDK for the others.
 */
function aiClientOf(options: AIOptions): 'direct' | 'ai-sdk' | undefined {
  const service = aiServiceOf(options);
  const client =
    options.aiClient ?? (service === 'openai' || service === 'anthropic' || service === 'google' ? 'ai-sdk' : 'direct');
  if (client === 'direct' && (service === 'anthropic' || service === 'google')) return undefined;
  if (client === 'ai-sdk' && service === 'azure-openai') return undefined;
  return client === 'direct' || client === 'ai-sdk' ? client : undefined;
}

/**
 * The direct client's token-bound name as it applies: OpenAI (no URL, or api.openai.com) and
 * Azure serve current models, which want `max_completion_tokens`; other servers know `max_tokens`.
 */
function maxTokensParamOf(service: ProviderKind, baseUrl: string | undefined): 'max_tokens' | 'max_completion_tokens' {
  const openAI = baseUrl === undefined || (URL.canParse(baseUrl) && new URL(baseUrl).hostname === 'api.openai.com');
  return service === 'azure-openai' || openAI ? 'max_completion_tokens' : 'max_tokens';
}

/**
 * Checks `options` once and applies every default.
 * @throws RealtimeOptionsError naming every problem at once.
 */
export function resolveRealtimeOptions(options: RealtimePluginOptions): ResolvedRealtimeOptions {
  const result = optionsSchema.safeParse(options ?? {});
  if (!result.success) {
    throw new RealtimeOptionsError(
      result.error.issues.map((issue) => ({ path: issue.path.map(String), message: issue.message })),
    );
  }
  const { jwt, eventTypes, taskKinds, aiProvider, adapters, prefix: _prefix, ...plain } = result.data;
  const jwtSettings: JwtSettings =
    jwt.jwksUrl !== undefined ? { kind: 'jwks', url: jwt.jwksUrl } : { kind: 'secret', secret: jwt.secret ?? '' };
  const aiService = aiServiceOf(plain);
  const settings: RealtimeSettings = {
    ...plain,
    // Optional settings are present as `undefined` when unset, so every field exists.
    instanceId: plain.instanceId,
    redisUrl: plain.redisUrl,
    databaseUrl: plain.databaseUrl,
    metricsToken: plain.metricsToken,
    aiBaseUrl: plain.aiBaseUrl,
    aiApiKey: plain.aiApiKey,
    aiModel: plain.aiModel,
    jwt: jwtSettings,
    jwtIssuer: jwt.issuer,
    jwtAudience: jwt.audience,
    jwtTyp: jwt.typ,
    jwtMaxLifetimeMs: jwt.maxLifetimeMs,
    // Dev login signs tokens with the HS256 secret, so it cannot exist with a JWKS.
    devLogin: plain.devLogin && jwtSettings.kind === 'secret',
    aiService,
    aiClient: aiClientOf(plain) ?? 'direct',
    aiMaxTokensParam: plain.aiMaxTokensParam ?? maxTokensParamOf(aiService, plain.aiBaseUrl),
  };
  return { settings: Object.freeze(settings), eventTypes, taskKinds, aiProvider, adapters };
}

/** Environment names that are not the option's name in SCREAMING_SNAKE_CASE. */
const ENV_NAME_EXCEPTIONS: Partial<Record<SettingName, string>> = {
  aiService: 'AI_PROVIDER',
  devLogin: 'AUTH_DEV_LOGIN',
};
const JWT_ENV = {
  secret: 'JWT_SECRET',
  jwksUrl: 'JWT_JWKS_URL',
  issuer: 'JWT_ISSUER',
  audience: 'JWT_AUDIENCE',
  typ: 'JWT_TYP',
  maxLifetimeMs: 'JWT_MAX_LIFETIME_MS',
} as const;

function screamingSnake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase();
}

/** The environment variable each setting is read from by {@link realtimeOptionsFromEnv}. */
export const REALTIME_ENV_NAMES: Readonly<Record<string, string>> = Object.freeze({
  ...Object.fromEntries(
    (Object.keys(SETTINGS) as SettingName[])
      .filter((name) => name !== 'production')
      .map((name) => [name, ENV_NAME_EXCEPTIONS[name] ?? screamingSnake(name)]),
  ),
  ...Object.fromEntries(Object.entries(JWT_ENV).map(([name, env]) => [`jwt.${name}`, env])),
});

/** The environment variable behind an option problem's path, or the path itself when there is none. */
export function envNameOf(path: readonly string[]): string {
  return REALTIME_ENV_NAMES[path.join('.')] ?? path.join('.');
}

/** Option names by their last segment (`jwksUrl` for `jwt.jwksUrl`), longest first, for {@link inEnvTerms}. */
const OPTION_WORDS = Object.entries(REALTIME_ENV_NAMES)
  .map(([option, env]) => [option.split('.').at(-1) ?? option, env] as const)
  .sort(([a], [b]) => b.length - a.length);

/** A problem's message with the option names it mentions written as their environment variables. */
export function inEnvTerms(message: string): string {
  let result = message;
  for (const [word, env] of OPTION_WORDS) result = result.replace(new RegExp(`\\b${word}\\b`, 'g'), env);
  return result;
}

function fromEnv(raw: string | undefined, form: EnvForm): unknown {
  const value = raw?.trim();
  if (value === undefined || value === '') return undefined;
  switch (form) {
    case 'int':
      return /^-?\d+$/.test(value) ? Number(value) : value;
    case 'bool':
      return value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value;
    case 'list':
      return value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry.length > 0);
    case 'text':
      return value;
  }
}

/**
 * The options an environment gives (see {@link REALTIME_ENV_NAMES}): each variable that is set,
 * as the option's type; values of the wrong type are passed on for resolveRealtimeOptions to name.
 * `production` is not read here: hosts decide what production means (NODE_ENV, usually).
 */
export function realtimeOptionsFromEnv(env: Record<string, string | undefined>): RealtimePluginOptions {
  const options: Record<string, unknown> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    if (name === 'production') continue;
    const value = fromEnv(env[REALTIME_ENV_NAMES[name] ?? ''], envFormOf(SETTINGS[name]));
    if (value !== undefined) options[name] = value;
  }
  const jwt: Record<string, unknown> = {};
  for (const [name, variable] of Object.entries(JWT_ENV)) {
    const value = fromEnv(env[variable], name === 'maxLifetimeMs' ? 'int' : 'text');
    if (value !== undefined) jwt[name] = value;
  }
  options['jwt'] = jwt;
  return options as RealtimePluginOptions;
}

/** The env form a setting was declared with; `.optional()` and `.default()` wrap the declared schema. */
function envFormOf(schema: z.ZodType): EnvForm {
  let current: unknown = schema;
  while (current instanceof z.ZodType) {
    const form = envForms.get(current);
    if (form) return form;
    const inner = (current as { def?: { innerType?: unknown } }).def?.innerType;
    current = inner;
  }
  return 'text';
}
