import { isIP } from 'node:net';
import { z } from 'zod';
import {
  envNameOf,
  inEnvTerms,
  REALTIME_ENV_NAMES,
  realtimeOptionsFromEnv,
  RealtimeOptionsError,
  resolveRealtimeOptions,
  type RealtimePluginOptions,
  type RealtimeSettings,
} from '@infinitescribe/server';

const DEV_JWT_SECRET = 'infinitescribe-dev-secret-change-me-0123456789';

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

/** What only the standalone host reads; every other variable is the plugin's (realtimeOptionsFromEnv). */
const hostSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  LISTEN_BACKLOG: int(1, 1_048_576).default(65_535),
  LISTEN_SOCKETS: int(1, 64).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TRUST_PROXY: trustProxy,
  REQUEST_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int(100, 60_000).default(10_000),
  STATIC_DIR: optionalString,
});

/**
 * The standalone host's configuration: its own settings, the plugin's settings as they apply (for
 * logs and tests), and the options the plugin is registered with. Nothing else in the process
 * reads `process.env`.
 */
export interface Config extends RealtimeSettings {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  host: string;
  /**
   * Pending connections the kernel may queue before the server accepts them (listen(2)'s backlog;
   * Linux caps it at net.core.somaxconn). Node's default, 511, is too small for a reconnect storm:
   * past it the kernel drops SYNs and clients wait on TCP's retransmission steps (1, 3, 7 s…).
   */
  listenBacklog: number;
  /**
   * Listening sockets on the port (SO_REUSEPORT; listenOnSockets): the server accepts up to this
   * many connections per event-loop turn. Unset: 8 on Linux, 1 elsewhere.
   */
  listenSockets?: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * Which X-Forwarded-For hops to believe (Fastify's trustProxy): off, how many proxies stand in
   * front, or their addresses and CIDRs.
   */
  trustProxy: false | number | string[];
  /** A request whose headers and body have not all arrived after this is answered 408 (streams are not affected). */
  requestTimeoutMs: number;
  shutdownTimeoutMs: number;
  staticDir: string | undefined;
  /** JWT_SECRET is unset: tokens are signed with the public development secret. */
  usesDevSecret: boolean;
  /** What `realtimePlugin` is registered with. */
  realtime: RealtimePluginOptions;
}

/** Whether the listen address `host` is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(?:\.\d{1,3}){3}$/.test(bare);
}

/** Every environment variable the standalone host reads: its own and the plugin's. */
export const CONFIG_VARIABLES: readonly string[] = [
  ...Object.keys(hostSchema.shape),
  ...Object.values(REALTIME_ENV_NAMES),
];

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
 * Parses and validates the environment once: the host's variables here, the plugin's through
 * realtimeOptionsFromEnv and resolveRealtimeOptions. Unknown variables are ignored; every bad one
 * is reported together, by its variable's name, so an operator fixes them in one go.
 * @example parseConfig({ PORT: '0', JWT_SECRET: 'x'.repeat(32) }).port === 0
 */
export function parseConfig(env: Record<string, string | undefined>): Readonly<Config> {
  const problems: string[] = [];
  const hostResult = hostSchema.safeParse(env);
  if (!hostResult.success) {
    problems.push(...hostResult.error.issues.map((issue) => `${issue.path.join('.') || 'env'}: ${issue.message}`));
  }
  const nodeEnv = typeof env['NODE_ENV'] === 'string' ? env['NODE_ENV'] : 'development';
  const production = nodeEnv === 'production';
  const host = env['HOST']?.trim() || '127.0.0.1';
  const options = realtimeOptionsFromEnv(env);
  options.production = production;
  // Dev login signs any token for anyone: unless asked for, only on a server nobody else can reach.
  options.devLogin ??= !production && isLoopbackHost(host);
  const usesDevSecret = options.jwt.secret === undefined && options.jwt.jwksUrl === undefined;
  if (usesDevSecret) {
    if (production) problems.push('JWT_SECRET: required when NODE_ENV=production (the built-in dev secret is public)');
    const { issuer, audience, typ, maxLifetimeMs } = options.jwt;
    options.jwt = { issuer, audience, typ, maxLifetimeMs, secret: DEV_JWT_SECRET };
  }
  let settings: Readonly<RealtimeSettings> | undefined;
  try {
    settings = resolveRealtimeOptions(options).settings;
  } catch (error) {
    if (!(error instanceof RealtimeOptionsError)) throw error;
    problems.push(...error.problems.map((problem) => `${envNameOf(problem.path)}: ${inEnvTerms(problem.message)}`));
  }
  if (problems.length > 0 || !hostResult.success || !settings) throw new ConfigError(problems);
  const value = hostResult.data;
  const {
    jwt,
    jwtIssuer: issuer,
    jwtAudience: audience,
    jwtTyp: typ,
    jwtMaxLifetimeMs: maxLifetimeMs,
    ...plain
  } = settings;
  const jwtOptions = { issuer, audience, typ, maxLifetimeMs };
  return Object.freeze({
    ...settings,
    nodeEnv: value.NODE_ENV,
    port: value.PORT,
    host: value.HOST,
    listenBacklog: value.LISTEN_BACKLOG,
    ...(value.LISTEN_SOCKETS === undefined ? {} : { listenSockets: value.LISTEN_SOCKETS }),
    logLevel: value.LOG_LEVEL,
    trustProxy: value.TRUST_PROXY,
    requestTimeoutMs: value.REQUEST_TIMEOUT_MS,
    shutdownTimeoutMs: value.SHUTDOWN_TIMEOUT_MS,
    staticDir: value.STATIC_DIR,
    usesDevSecret,
    // The settings as options again: what the plugin runs with, whatever the environment spelt out.
    realtime: {
      ...plain,
      jwt: jwt.kind === 'jwks' ? { ...jwtOptions, jwksUrl: jwt.url } : { ...jwtOptions, secret: jwt.secret },
    },
  });
}
