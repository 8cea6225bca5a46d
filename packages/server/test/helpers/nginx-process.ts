import { execFile, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './free-port.js';

/** The production config (a template with `${NAME}` placeholders), as deployed. */
export const NGINX_TEMPLATE_PATH = fileURLToPath(new URL('../../../../deploy/nginx.conf', import.meta.url));
/** The script the nginx container runs before nginx: a self-signed certificate unless one is there. */
export const CERTIFICATE_SCRIPT_PATH = fileURLToPath(
  new URL('../../../../deploy/ensure-tls-certificate.sh', import.meta.url),
);

/** Masters still running, stopped by PID if the test process exits without stopping them (a timed-out test). */
const running = new Set<number>();
process.once('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGTERM'); // the master stops its workers
    } catch {
      // already gone
    }
  }
});

const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;

/** Where the nginx binary is: NGINX_BIN, else PATH, else the sbin folders a non-root PATH may lack. */
export function findNginx(): string | undefined {
  const candidates = process.env.NGINX_BIN
    ? [process.env.NGINX_BIN]
    : [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'].map((dir) =>
        path.join(dir, 'nginx'),
      );
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Whether the nginx suites can run (nginx, and openssl for the test certificate). Like
 * `requireService`: outside CI a missing tool skips with a visible warning; with CI=true it fails.
 */
export function requireNginx(): boolean {
  const missing: string[] = [];
  if (!findNginx()) missing.push('nginx (apt-get install -y nginx)');
  if (spawnSync('openssl', ['version']).status !== 0) missing.push('openssl (apt-get install -y openssl)');
  if (missing.length === 0) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${missing.join(' and ')} missing and CI=true: the nginx suite must run in CI`);
  }
  console.warn(`\n⚠️  SKIPPING nginx tests: ${missing.join(' and ')} not installed\n`);
  return false;
}

/** The placeholders `template` uses, in order of first use. */
export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[1] ?? ''))];
}

/** What the image's envsubst does, strictly: every placeholder must have a value. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  const missing = placeholdersOf(template).filter((name) => values[name] === undefined);
  if (missing.length > 0) throw new Error(`no value for ${missing.join(', ')}`);
  return template.replace(PLACEHOLDER, (_, name: string) => values[name] ?? '');
}

/** Replaces `search` in `text`, insisting it occurs exactly once (so an adaptation never silently misses). */
export function replaceOnce(text: string, search: string, replacement: string): string {
  const count = text.split(search).length - 1;
  if (count !== 1) throw new Error(`expected "${search}" once in the nginx config, found it ${count} times`);
  return text.replace(search, () => replacement);
}

/** Changes to the rendered production config so an unprivileged nginx can run it from a scratch folder. */
function adaptForTest(config: string, dir: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((kind) => `    ${kind}_temp_path ${path.join(dir, `${kind}_temp`)};`)
    .join('\n');
  let adapted = replaceOnce(config, 'worker_processes auto;', 'worker_processes 2;');
  adapted = replaceOnce(adapted, '\nhttp {\n', `\nhttp {\n${temp}\n`);
  adapted = replaceOnce(adapted, 'access_log /var/log/nginx/access.log', `access_log ${path.join(dir, 'access.log')}`);
  return adapted;
}

/** A real nginx (master + workers) running deploy/nginx.conf in front of `backends`. */
export interface NginxProcess {
  /** `http://127.0.0.1:<port>`: the plain HTTP/1.1 listener. */
  httpUrl: string;
  /** `https://127.0.0.1:<port>`: the TLS listener (HTTP/2 by ALPN). */
  httpsUrl: string;
  /** PEM of the self-signed certificate the TLS listener presents (trust it as a CA). */
  certificate: string;
  /** The config nginx runs. */
  config: string;
  pid: number;
  /** What nginx wrote to stderr (its error log) and its access log so far. */
  output(): string;
  /** Fast shutdown by PID (SIGTERM), SIGKILL to master and workers if it hangs. Removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@link startNginx}. */
export interface StartNginxOptions {
  /** `host:port` of the two upstreams. */
  backends: [string, string];
  /** A last change to the config (e.g. a deliberately broken variant for a control experiment). */
  adapt?: (config: string) => string;
}

/**
 * Runs deploy/ensure-tls-certificate.sh as the nginx container does, with the certificate and key
 * paths it is given; resolves with what it printed.
 */
export async function ensureCertificate(paths: { certificatePath: string; keyPath: string }): Promise<string> {
  const { stdout } = await promisify(execFile)(CERTIFICATE_SCRIPT_PATH, [], {
    env: { PATH: process.env.PATH ?? '', TLS_CERTIFICATE: paths.certificatePath, TLS_CERTIFICATE_KEY: paths.keyPath },
  });
  return stdout;
}

/**
 * `nginx -t` on deploy/nginx.conf rendered with this certificate and key (upstreams and listeners
 * on 127.0.0.1, which `-t` only parses): rejects with nginx's complaint when it refuses them.
 */
export async function checkNginxConfig(paths: { certificatePath: string; keyPath: string }): Promise<void> {
  const binary = findNginx();
  if (!binary) throw new Error('nginx is not installed');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'is-nginx-t-'));
  try {
    const config = renderForTest(await readFile(NGINX_TEMPLATE_PATH, 'utf8'), dir, {
      BACKEND_1: '127.0.0.1:3001',
      BACKEND_2: '127.0.0.1:3002',
      LISTEN_HTTP: '127.0.0.1:8080',
      LISTEN_HTTPS: '127.0.0.1:8443',
      TLS_CERTIFICATE: paths.certificatePath,
      TLS_CERTIFICATE_KEY: paths.keyPath,
    });
    const configPath = path.join(dir, 'nginx.conf');
    await writeFile(configPath, config);
    await promisify(execFile)(binary, ['-t', '-q', '-p', `${dir}/`, '-c', configPath, '-g', `pid ${dir}/nginx.pid;`]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The production template rendered with `values`, then adapted to run from the scratch folder `dir`. */
function renderForTest(template: string, dir: string, values: Record<string, string>): string {
  return adaptForTest(renderTemplate(template, values), dir);
}

/**
 * Renders deploy/nginx.conf for `backends` on two free ports of 127.0.0.1 with a fresh
 * self-signed certificate (made by the deploy script), and runs `nginx -g 'daemon off;'` as a
 * child process.
 */
export async function startNginx(options: StartNginxOptions): Promise<NginxProcess> {
  const binary = findNginx();
  if (!binary) throw new Error('nginx is not installed');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'is-nginx-'));
  // The workers run as an unprivileged user when the test runs as root: let them reach their temp folders.
  await chmod(dir, 0o755);
  const certificatePath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  await ensureCertificate({ certificatePath, keyPath });
  const template = await readFile(NGINX_TEMPLATE_PATH, 'utf8');
  try {
    for (let attempt = 1; ; attempt++) {
      const [httpPort, httpsPort] = [await freePort(), await freePort()];
      let config = renderForTest(template, dir, {
        BACKEND_1: options.backends[0],
        BACKEND_2: options.backends[1],
        LISTEN_HTTP: `127.0.0.1:${httpPort}`,
        LISTEN_HTTPS: `127.0.0.1:${httpsPort}`,
        TLS_CERTIFICATE: certificatePath,
        TLS_CERTIFICATE_KEY: keyPath,
      });
      if (options.adapt) config = options.adapt(config);
      const configPath = path.join(dir, 'nginx.conf');
      await writeFile(configPath, config);
      const started = await launch(binary, dir, configPath, [httpPort, httpsPort]);
      if ('pid' in started) {
        return {
          httpUrl: `http://127.0.0.1:${httpPort}`,
          httpsUrl: `https://127.0.0.1:${httpsPort}`,
          certificate: await readFile(certificatePath, 'utf8'),
          config,
          pid: started.pid,
          output: () => `${started.output()}${readIfExists(path.join(dir, 'access.log'))}`,
          async stop() {
            await started.stop();
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      // Another process took a port between freePort() and nginx's bind: try others.
      if (!/Address already in use/.test(started.failure) || attempt === 5) throw new Error(started.failure);
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

type Launched = { pid: number; output(): string; stop(): Promise<void> } | { failure: string };

async function launch(binary: string, dir: string, configPath: string, ports: number[]): Promise<Launched> {
  const child = spawn(binary, ['-p', `${dir}/`, '-c', configPath, '-g', `daemon off; pid ${dir}/nginx.pid;`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exitedCode: number | string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedCode = code ?? signal ?? 'unknown';
      resolve();
    }),
  );
  const pid = child.pid;
  try {
    if (pid === undefined) throw new Error('nginx did not start');
    for (const port of ports) await waitForPort(port, 10_000, () => exitedCode !== undefined);
  } catch (error) {
    if (exitedCode === undefined && pid !== undefined) await stopByPid(pid, exited);
    await exited;
    return { failure: `nginx failed to start (${exitedCode}): ${(error as Error).message}\n${output}` };
  }
  running.add(pid);
  void exited.then(() => running.delete(pid));
  return { pid, output: () => output, stop: () => stopByPid(pid, exited) };
}

/** SIGTERM (fast shutdown: nginx closes its connections) to the master; SIGKILL to it and its workers after 5 s. */
async function stopByPid(pid: number, exited: Promise<void>): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 5_000)),
  ]);
  if (!timedOut) return;
  for (const worker of await childrenOf(pid)) {
    try {
      process.kill(worker, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  process.kill(pid, 'SIGKILL');
  await exited;
}

/** PIDs of the processes `pid` started (Linux /proc), read before the master is killed. */
async function childrenOf(pid: number): Promise<number[]> {
  try {
    const tasks = await readdir(`/proc/${pid}/task`);
    const lists = await Promise.all(tasks.map((task) => readFile(`/proc/${pid}/task/${task}/children`, 'utf8')));
    return lists.flatMap((list) => list.split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
