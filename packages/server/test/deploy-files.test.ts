import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { CONFIG_VARIABLES, parseConfig } from '../../../apps/backend/src/config.js';
import { dockerInstructions, dockerStages } from './helpers/dockerfile.js';
import {
  checkNginxConfig,
  ensureCertificate,
  placeholdersOf,
  renderTemplate,
  requireNginx,
} from './helpers/nginx-process.js';

/**
 * Docker does not run here, so the deployment files are kept honest by reading them: the compose
 * file refers to what exists, gives the server a configuration it accepts, and wires nginx to the
 * backends it defines. (nginx-proxy.test.ts runs the nginx config itself.)
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = path.join(ROOT, 'deploy');
const read = (relativePath: string) => readFileSync(path.join(ROOT, relativePath), 'utf8');

interface Service {
  build?: { context: string; dockerfile?: string };
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** What an operator must provide (the compose file refuses to start without them). */
const OPERATOR_ENV = {
  JWT_SECRET: 'an-operator-secret-of-at-least-32-characters',
  POSTGRES_PASSWORD: 'operator-password',
};

/** Compose's interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`. */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  const pattern =
    /\$(?:(?<dollar>\$)|(?<bare>[A-Za-z_][A-Za-z0-9_]*)|\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?<colon>:?)(?<operator>[-?])(?<word>[^}]*))?\})/g;
  return value.replace(pattern, (...args: unknown[]) => {
    const groups = args.at(-1) as Record<
      'dollar' | 'bare' | 'name' | 'colon' | 'operator' | 'word',
      string | undefined
    >;
    if (groups.dollar) return '$';
    const variable = groups.bare ?? groups.name ?? '';
    const current = env[variable];
    const unset = current === undefined || (groups.colon === ':' && current === '');
    if (!unset || groups.operator === undefined) return current ?? '';
    if (groups.operator === '-') return groups.word ?? '';
    throw new Error(`required variable ${variable} is missing: ${groups.word}`);
  });
}

function interpolateAll(node: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof node === 'string') return interpolate(node, env);
  if (Array.isArray(node)) return node.map((item) => interpolateAll(item, env));
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, interpolateAll(value, env)]));
  }
  return node;
}

const composeText = read('deploy/docker-compose.yml');
const loadCompose = (env: Record<string, string | undefined>) =>
  interpolateAll(YAML.parse(composeText, { merge: true }), env) as Compose;
const compose = loadCompose(OPERATOR_ENV);
const BACKENDS = ['backend1', 'backend2'];

function service(name: string): Service {
  const found = compose.services[name];
  if (!found) throw new Error(`no service ${name}`);
  return found;
}

function environmentOf(name: string): Record<string, string> {
  const environment = service(name).environment;
  expect(environment, `${name}.environment must be a map`).toBeTypeOf('object');
  expect(Array.isArray(environment)).toBe(false);
  return Object.fromEntries(Object.entries(environment ?? {}).map(([key, value]) => [key, String(value ?? '')]));
}

/** `./source:/target[:mode]` bind mounts of a service, source resolved against deploy/. */
function bindMounts(name: string): { source: string; target: string }[] {
  return (service(name).volumes ?? [])
    .filter((volume) => volume.startsWith('.') || volume.startsWith('/'))
    .map((volume) => {
      const [source = '', target = ''] = volume.split(':');
      return { source: path.resolve(DEPLOY, source), target };
    });
}

/** The environment variables the standalone server reads (apps/backend/src/config.ts). */
function configVariables(): Set<string> {
  return new Set(CONFIG_VARIABLES);
}

/** The `name { ... }` block of an nginx config (blocks without nested braces). */
function block(config: string, header: string): string {
  const start = config.indexOf(`${header} {`);
  if (start < 0) throw new Error(`no "${header}" block`);
  const end = config.indexOf('}', start);
  return config.slice(start, end + 1);
}

/** nginx time (`90`, `90s`, `5m`, `1h`) in ms. */
function nginxTimeMs(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value);
  if (!match) throw new Error(`not an nginx time: ${value}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 's'] ?? 1_000;
  return Number(match[1]) * unit;
}

describe('deploy/docker-compose.yml', () => {
  it('has the two backends, Redis, PostgreSQL and nginx', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['backend1', 'backend2', 'nginx', 'postgres', 'redis']);
  });

  it('builds the backends from the repository and its Dockerfile', () => {
    for (const name of BACKENDS) {
      const build = service(name).build;
      if (!build) throw new Error(`${name} has no build`);
      const context = path.resolve(DEPLOY, build.context);
      expect(context).toBe(path.resolve(ROOT));
      expect(existsSync(path.join(context, build.dockerfile ?? 'Dockerfile'))).toBe(true);
      expect(existsSync(path.join(context, '.dockerignore'))).toBe(true);
    }
  });

  it('refuses to start without the secrets an operator must set', () => {
    expect(() => loadCompose({})).toThrow(/JWT_SECRET|POSTGRES_PASSWORD/);
    expect(() => loadCompose({ ...OPERATOR_ENV, JWT_SECRET: '' })).toThrow(/JWT_SECRET/);
  });

  it('gives the backends only variables the server reads, and a configuration it accepts', () => {
    const known = configVariables();
    expect(known).toContain('REDIS_URL');
    expect(known).toContain('TRUST_PROXY');
    const [first, second] = BACKENDS.map(environmentOf);
    if (!first || !second) throw new Error('backends missing');
    for (const environment of [first, second]) {
      expect(Object.keys(environment).filter((name) => !known.has(name))).toEqual([]);
      const config = parseConfig(environment);
      expect(config.nodeEnv).toBe('production');
      expect(config.host).toBe('0.0.0.0');
      expect(config.port).toBe(3000);
      // Behind nginx, the one proxy in front: the client address is the hop nginx wrote.
      expect(config.trustProxy).toBe(1);
      // No dev login on a reachable server, and no public metrics (nginx keeps them inside).
      expect(config.devLogin).toBe(false);
      expect(config.jwt.kind).toBe('secret');
      expect(config.usesDevSecret).toBe(false);
    }
    // Same configuration, told apart only by INSTANCE_ID.
    expect(first['INSTANCE_ID']).not.toBe(second['INSTANCE_ID']);
    expect({ ...first, INSTANCE_ID: '' }).toEqual({ ...second, INSTANCE_ID: '' });
  });

  it('points the backends at the Redis and PostgreSQL services, with the credentials PostgreSQL is given', () => {
    const postgres = environmentOf('postgres');
    for (const name of BACKENDS) {
      const config = parseConfig(environmentOf(name));
      const redis = new URL(config.redisUrl ?? '');
      expect(redis.hostname).toBe('redis');
      expect(compose.services[redis.hostname]?.image).toMatch(/^redis:/);
      const database = new URL(config.databaseUrl ?? '');
      expect(database.hostname).toBe('postgres');
      expect(database.port).toBe('5432');
      expect(compose.services[database.hostname]?.image).toMatch(/^postgres:/);
      expect(decodeURIComponent(database.username)).toBe(postgres['POSTGRES_USER']);
      expect(decodeURIComponent(database.password)).toBe(postgres['POSTGRES_PASSWORD']);
      expect(database.pathname).toBe(`/${postgres['POSTGRES_DB']}`);
      expect(service(name).depends_on).toEqual({
        redis: { condition: 'service_healthy' },
        postgres: { condition: 'service_healthy' },
      });
    }
  });

  it('exposes only nginx, and starts it after both backends are healthy', () => {
    for (const [name, definition] of Object.entries(compose.services)) {
      if (name !== 'nginx') expect(definition.ports, `${name} must not be published`).toBeUndefined();
    }
    expect(service('nginx').ports?.length).toBeGreaterThan(0);
    expect(service('nginx').depends_on).toEqual({
      backend1: { condition: 'service_healthy' },
      backend2: { condition: 'service_healthy' },
    });
  });

  it('declares every named volume it mounts, and every bind mount exists in the repository', () => {
    for (const [name, definition] of Object.entries(compose.services)) {
      for (const volume of definition.volumes ?? []) {
        const [source = ''] = volume.split(':');
        if (source.startsWith('.') || source.startsWith('/')) {
          expect(existsSync(path.resolve(DEPLOY, source)), `${name}: ${source} must exist`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes ?? {}), `${name}: volume ${source}`).toContain(source);
        }
      }
    }
  });
});

describe('deploy/nginx.conf as the compose file deploys it', () => {
  const template = read('deploy/nginx.conf');
  const environment = environmentOf('nginx');
  const rendered = renderTemplate(template, environment);

  it('is mounted as the image template rendered into /etc/nginx/nginx.conf', () => {
    const mounts = bindMounts('nginx');
    expect(mounts).toContainEqual({
      source: path.join(DEPLOY, 'nginx.conf'),
      target: '/etc/nginx/templates/nginx.conf.template',
    });
    expect(environment['NGINX_ENVSUBST_OUTPUT_DIR']).toBe('/etc/nginx');
  });

  it('gets a value for every placeholder, and the substitution touches nothing else', () => {
    const filter = new RegExp(environment['NGINX_ENVSUBST_FILTER'] ?? '');
    const placeholders = placeholdersOf(template);
    expect(placeholders.length).toBeGreaterThan(0);
    for (const name of placeholders) {
      expect(environment[name], `${name} must be set on the nginx service`).toBeDefined();
      expect(name, `NGINX_ENVSUBST_FILTER must let ${name} through`).toMatch(filter);
    }
    // No nginx variable ($host, $request_id, ...) may be mistaken for one of ours.
    const variables = new Set([...template.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1] ?? ''));
    const substituted = [...variables].filter((name) => filter.test(name) && environment[name] !== undefined);
    expect(substituted.sort()).toEqual([...placeholders].sort());
  });

  it('sends the upstream `realtime` to the compose backends, sticky by a consistent hash', () => {
    const upstream = block(rendered, 'upstream realtime');
    const servers = [...upstream.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((match) => match[1] ?? '');
    expect(servers).toEqual(BACKENDS.map((name) => `${name}:${environmentOf(name)['PORT']}`));
    expect(upstream).toMatch(/^\s*hash \$\w+ consistent;/m);
    expect(upstream).toMatch(/^\s*keepalive \d+;/m);
    const passes = [...rendered.matchAll(/proxy_pass\s+([^;]+);/g)].map((match) => match[1]);
    expect(passes.length).toBeGreaterThan(0);
    expect(new Set(passes)).toEqual(new Set(['http://realtime']));
  });

  it('streams SSE unbuffered, uncompressed, over HTTP/1.1 to the upstream, with a read timeout above the heartbeat', () => {
    const sse = block(rendered, 'location /api/sse/');
    for (const directive of [
      'proxy_buffering off;',
      'proxy_cache off;',
      'gzip off;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
      'proxy_set_header X-Forwarded-For $remote_addr;',
    ]) {
      expect(sse).toContain(directive);
    }
    const readTimeout = /proxy_read_timeout\s+(\w+);/.exec(sse)?.[1] ?? '0';
    for (const name of BACKENDS) {
      expect(nginxTimeMs(readTimeout)).toBeGreaterThan(2 * parseConfig(environmentOf(name)).heartbeatMs);
    }
    expect(/gzip_types([^;]*);/.exec(rendered)?.[1]).not.toMatch(/event-stream|\*/);
  });

  it('does not pass /metrics on to the backends (Prometheus scrapes them directly)', () => {
    expect(block(rendered, 'location = /metrics')).toMatch(/return 404 '\{"error":\{"code":"not_found"/);
    expect(block(rendered, 'location = /metrics')).not.toContain('proxy_pass');
  });

  it('speaks HTTP/2 over TLS to clients, with certificates from the mounted folder', () => {
    expect(rendered).toMatch(/^\s*listen 443 ssl http2;/m);
    const certificates = bindMounts('nginx').find((mount) => mount.target === '/etc/nginx/certs');
    expect(certificates?.source).toBe(path.join(DEPLOY, 'certs'));
    expect(environment['TLS_CERTIFICATE']).toMatch(/^\/etc\/nginx\/certs\//);
    expect(environment['TLS_CERTIFICATE_KEY']).toMatch(/^\/etc\/nginx\/certs\//);
    // The published ports lead to the two listeners.
    expect(service('nginx').ports?.map((port) => port.split(':').at(-1))).toEqual([
      environment['LISTEN_HTTP'],
      environment['LISTEN_HTTPS'],
    ]);
  });
});

describe('deploy/ensure-tls-certificate.sh: no certificate step before `docker compose up`', () => {
  const environment = environmentOf('nginx');

  it('runs in the nginx image before nginx starts, with a certificate folder it may write to', () => {
    const script = bindMounts('nginx').find((mount) => mount.target.startsWith('/docker-entrypoint.d/'));
    expect(script?.source).toBe(path.join(DEPLOY, 'ensure-tls-certificate.sh'));
    // The image's entrypoint runs /docker-entrypoint.d/*.sh in name order, and only executable ones.
    expect(script?.target).toMatch(/^\/docker-entrypoint\.d\/\d+-[a-z-]+\.sh$/);
    expect(statSync(script?.source ?? '').mode & 0o111).not.toBe(0);
    const certificates = (service('nginx').volumes ?? []).find((volume) => volume.split(':')[1] === '/etc/nginx/certs');
    expect(certificates?.split(':')[2], 'the certificate folder must not be read-only').toBeUndefined();
    for (const name of ['TLS_CERTIFICATE', 'TLS_CERTIFICATE_KEY'])
      expect(environment[name]).toMatch(/^\/etc\/nginx\/certs\//);
  });

  describe.skipIf(!requireNginx())('run here, as the container runs it', () => {
    let dir: string;
    /** The compose file's certificate paths, moved from /etc/nginx/certs into a scratch folder. */
    const paths = () => ({
      certificatePath: (environment['TLS_CERTIFICATE'] ?? '').replace('/etc/nginx/certs', dir),
      keyPath: (environment['TLS_CERTIFICATE_KEY'] ?? '').replace('/etc/nginx/certs', dir),
    });

    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'is-certs-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('writes a self-signed pair for localhost that nginx -t accepts with deploy/nginx.conf', async () => {
      expect(await ensureCertificate(paths())).toContain('self-signed');
      const certificate = new X509Certificate(await readFile(paths().certificatePath));
      expect(certificate.checkHost('localhost')).toBe('localhost');
      expect(certificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(statSync(paths().keyPath).mode & 0o077).toBe(0);
      await checkNginxConfig(paths());
    });

    it('leaves an existing pair alone (yours, or the one a previous start wrote)', async () => {
      await ensureCertificate(paths());
      const before = await readFile(paths().certificatePath, 'utf8');
      expect(await ensureCertificate(paths())).toContain('using');
      expect(await readFile(paths().certificatePath, 'utf8')).toBe(before);
    });

    it('nginx -t refuses the config without a certificate (the check can fail)', async () => {
      await expect(checkNginxConfig(paths())).rejects.toThrow(/fullchain\.pem|privkey\.pem/);
    });
  });
});

describe('Dockerfile', () => {
  const instructions = dockerInstructions();
  const args = (keyword: string) => instructions.filter((item) => item.keyword === keyword).map((item) => item.args);

  it('installs exactly the lockfile with npm ci, every workspace manifest copied first', () => {
    const copies = args('COPY');
    expect(copies.some((copy) => /(^|\s)package-lock\.json(\s|$)/.test(copy))).toBe(true);
    expect(args('RUN').some((run) => /^npm ci\b/.test(run))).toBe(true);
    const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
    for (const workspace of workspaces) {
      expect(copies, `the manifest of ${workspace}`).toContain(`${workspace}/package.json ${workspace}/`);
    }
  });

  it('copies only what exists', () => {
    for (const copy of args('COPY')) {
      if (copy.startsWith('--from=')) continue;
      const sources = copy
        .split(/\s+/)
        .filter((part) => !part.startsWith('--'))
        .slice(0, -1);
      for (const source of sources) expect(existsSync(path.join(ROOT, source)), source).toBe(true);
    }
    const ignored = read('.dockerignore').split('\n');
    expect(ignored).toContain('**/node_modules');
  });

  it('listens on 0.0.0.0:3000 with only variables the server reads, and runs the backend', () => {
    const environment = Object.fromEntries(
      args('ENV').flatMap((line) => line.split(/\s+/).map((pair) => pair.split('=') as [string, string])),
    );
    expect(environment).toMatchObject({ HOST: '0.0.0.0', PORT: '3000', NODE_ENV: 'production' });
    const known = configVariables();
    expect(Object.keys(environment).filter((name) => !known.has(name))).toEqual([]);
    expect(args('EXPOSE')).toContain('3000');
    const command = JSON.parse(args('CMD').at(-1) ?? '[]') as string[];
    // Compiled JavaScript (tsc: apps/backend/src -> dist), no TypeScript at run time; the V8 flags
    // of docs/deploying.md, the ones the benchmark runs every Node server with.
    const flags = ['--no-memory-reducer', '--initial-old-space-size=256', '--max-semi-space-size=16'];
    expect(command).toEqual(['node', ...flags, 'apps/backend/dist/main.js']);
    expect(read('bench/processes.ts')).toContain(
      `SERVER_NODE_FLAGS = [${flags.map((flag) => `'${flag}'`).join(', ')}]`,
    );
    // `npm start` outside Docker runs the same command.
    const rootScripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(rootScripts['start']).toBe(`npm run build && node ${flags.join(' ')} apps/backend/dist/main.js`);
    expect(existsSync(path.join(ROOT, 'apps/backend/src/main.ts'))).toBe(true);
    const backendBuild = JSON.parse(read('apps/backend/package.json')) as { scripts: Record<string, string> };
    expect(backendBuild.scripts.start).toBe('node dist/main.js');
    expect(args('HEALTHCHECK').join(' ')).toContain('/readyz');
  });

  it('builds in one stage and runs from another with production dependencies and compiled output only', () => {
    const stages = dockerStages();
    const runtime = stages.at(-1);
    const build = stages.find((stage) => stage.name === 'build');
    if (!runtime || !build) throw new Error('no runtime or build stage');
    expect(build.instructions.filter((item) => item.keyword === 'RUN').map((item) => item.args)).toContain(
      'npm run build',
    );
    const copies = runtime.instructions.filter((item) => item.keyword === 'COPY').map((item) => item.args.split(/\s+/));
    // From the build: dist/ folders only (never its node_modules, which hold the dev tools).
    const fromBuild = copies.filter(([flag]) => flag === '--from=build');
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const [, source = ''] of fromBuild) expect(source).toMatch(/^\/app\/[a-z/]+\/dist$/);
    // Everything else from a stage that installed with --omit=dev.
    for (const [flag = ''] of copies.filter(([flag]) => flag !== '--from=build')) {
      const stage = stages.find((candidate) => `--from=${candidate.name}` === flag);
      const installs = stage?.instructions.filter((item) => item.keyword === 'RUN' && /^npm\b/.test(item.args));
      expect(
        installs?.map((item) => item.args),
        flag,
      ).toEqual([expect.stringMatching(/^npm ci .*--omit=dev\b/)]);
    }
  });
});
