import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EventSource } from 'eventsource';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../apps/backend/src/config.js';
import { REALTIME_ENV_NAMES, type Publisher } from '../src/index.js';
import { startJwksServer } from './helpers/jwks-server.js';
import { openStream, published } from './helpers/sse-reader.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import { startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

/**
 * Keeps the docs from rotting. Every fenced block in docs/ is one of:
 * - ```<lang> example=<name>: identical to docs/examples/<name>.*, which a runner below executes
 *   against a real server (or, for React, type-checks);
 * - ```<lang> excerpt=<path>: found word for word (per line, indentation and `#` comment markers
 *   aside) in that shipped file, which its own tests cover;
 * - ```text: a picture, not an example.
 * Links between the pages must resolve, anchors included, and configuration.md must list exactly
 * the variables the config parser reads, with the defaults it applies.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCS = join(ROOT, 'docs');
const EXAMPLES = join(DOCS, 'examples');

interface CodeBlock {
  file: string;
  language: string;
  attributes: Record<string, string>;
  body: string;
}

async function markdownFiles(): Promise<string[]> {
  const entries = await readdir(DOCS, { recursive: true });
  return entries.filter((entry) => entry.endsWith('.md')).map((entry) => join(DOCS, entry));
}

function codeBlocks(file: string, markdown: string): CodeBlock[] {
  return [...markdown.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)].map((match) => {
    const [language = '', ...rest] = (match[1] ?? '').trim().split(/\s+/);
    const attributes = Object.fromEntries(rest.map((attribute) => attribute.split('=') as [string, string]));
    return { file: relative(ROOT, file), language, attributes, body: match[2] ?? '' };
  });
}

/** Lines without indentation and without a leading `#` comment marker. */
function normalizedLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().replace(/^#\s*/, ''))
    .filter((line) => line !== '');
}

function containsLines(haystack: string[], needle: string[]): boolean {
  return haystack.some((_, start) => needle.every((line, offset) => haystack[start + offset] === line));
}

/** GitHub's heading anchors. */
function anchorsOf(markdown: string): Set<string> {
  return new Set(
    [...markdown.replace(/^```[\s\S]*?^```$/gm, '').matchAll(/^#{1,6} (.+)$/gm)].map((match) =>
      (match[1] ?? '')
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9 _-]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a docs shell example in its own process group, stopped by its PID if it overstays. */
function runScript(name: string, env: Record<string, string>, timeoutMs = 30_000): Promise<ScriptResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', [join(EXAMPLES, name)], {
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`${name} did not finish in ${timeoutMs} ms; output so far:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 20));
  }
}

/** The shapes of the TypeScript examples, as this test drives them (tsc checks the files themselves). */
interface ClientBasicExample {
  connectRealtime(
    baseUrl: string,
    getAccessToken: () => Promise<string>,
    ui: {
      showNotification(title: string, level: string): void;
      appendGenerationText(generationId: string, text: string): void;
      showConnectionState(state: string): void;
      reloadEverything(): void;
    },
  ): { close(): void };
}
interface NativeEventSourceExample {
  openNotificationStream(
    baseUrl: string,
    getAccessToken: () => Promise<string>,
    onNotification: (title: string) => void,
  ): { close(): void };
}

interface ServicePublisherExample {
  mintServiceToken(jwtSecret: string, serviceName: string): Promise<string>;
  publishOnce(
    baseUrl: string,
    token: string,
    event: { topic: string; type: string; payload: unknown },
    idempotencyKey?: string,
  ): Promise<{ id: string }>;
}

interface IdentityProviderExample {
  buildApp(idp: { jwksUrl: string; issuer: string; audience: string }, dataDir: string): Promise<FastifyInstance>;
  servicePublisher(appUrl: string, getServiceToken: () => Promise<string>): Publisher;
}

async function importExample(name: string): Promise<unknown> {
  return import(pathToFileURL(join(EXAMPLES, name)).href);
}

const METRICS_TOKEN = 'docs-metrics-token';

/** How each example file is run; a file without an entry fails the suite. */
const RUNNERS: Record<string, ((server: TestApp) => Promise<void>) | 'run in Chromium'> = {
  'try-it.sh': async (server) => {
    const { code, stdout, stderr } = await runScript('try-it.sh', { BASE: server.url });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('event: connection.established');
    expect(stdout.match(/"title":"Hello"/g)).toHaveLength(1);
    const resumed = stdout.slice(stdout.lastIndexOf('event: connection.established'));
    expect(resumed).toMatch(/event: notification\ndata: .*"title":"Missed it"/);
    expect(resumed).toContain('event: stream.resumed\ndata: {"replayed":1,"complete":true}');
  },
  'ticket.sh': async (server) => {
    const { code, stdout, stderr } = await runScript('ticket.sh', { BASE: server.url });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('event: connection.established');
    expect(stdout).toMatch(/"code":"unauthorized".*\nHTTP 401/);
  },
  'ops-check.sh': async (server) => {
    const { code, stdout, stderr } = await runScript('ops-check.sh', { BASE: server.url, METRICS_TOKEN });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('{"status":"ok"}');
    expect(stdout).toMatch(/"status":"ok".*\nHTTP 200/);
    expect(stdout).toMatch(/^readiness_state 0$/m);
    expect(stdout).toMatch(/^readiness_component_state\{component="store"\} 0$/m);
  },
  'client-basic.ts': async (server) => {
    const { connectRealtime } = (await importExample('client-basic.ts')) as ClientBasicExample;
    const seen = { notifications: [] as string[], text: '', states: [] as string[] };
    const client = connectRealtime(server.url, () => server.token('docs-client'), {
      showNotification: (title, level) => seen.notifications.push(`${level}: ${title}`),
      appendGenerationText: (_id, text) => (seen.text += text),
      showConnectionState: (state) => seen.states.push(state),
      reloadEverything: () => undefined,
    });
    try {
      await waitUntil(() => seen.states.includes('open'), 'an open connection');
      await server.publish({ topic: 'user:docs-client', payload: { title: 'From the docs', level: 'success' } });
      await waitUntil(() => seen.notifications.length === 1, 'the notification');
      expect(seen.notifications).toEqual(['success: From the docs']);
      const response = await fetch(`${server.url}/api/ai/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await server.token('docs-client')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'The sea', maxTokens: 5 }),
      });
      expect(response.status).toBe(202);
      await waitUntil(() => seen.text.trim() !== '', 'generated text');
    } finally {
      client.close();
    }
  },
  'native-eventsource.ts': async (server) => {
    const { openNotificationStream } = (await importExample('native-eventsource.ts')) as NativeEventSourceExample;
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    const globals = globalThis as { EventSource?: unknown };
    const previous = globals.EventSource;
    // The browser's class in a browser; the `eventsource` package implements it for Node.
    globals.EventSource = EventSource;
    const titles: string[] = [];
    const stream = openNotificationStream(
      `http://127.0.0.1:${proxy.port}`,
      () => server.token('docs-native'),
      (title) => titles.push(title),
    );
    try {
      await waitUntil(() => server.app.realtime.internals.connections.size > 0, 'the stream');
      await server.publish({ topic: 'user:docs-native', payload: { title: 'one', level: 'info' } });
      await waitUntil(() => titles.length === 1, 'the first notification');
      // Cut the connection, publish while it is down: the example reconnects with a new ticket and
      // resumes after the last id it saw.
      proxy.dropAll();
      await server.publish({ topic: 'user:docs-native', payload: { title: 'two', level: 'info' } });
      await waitUntil(() => titles.length === 2, 'the missed notification after the reconnect');
      await server.publish({ topic: 'user:docs-native', payload: { title: 'three', level: 'info' } });
      await waitUntil(() => titles.length === 3, 'a live notification after the reconnect');
      expect(titles).toEqual(['one', 'two', 'three']);
    } finally {
      stream.close();
      globals.EventSource = previous;
      await proxy.close();
    }
  },
  'service-publisher.ts': async (server) => {
    const { mintServiceToken, publishOnce } = (await importExample('service-publisher.ts')) as ServicePublisherExample;
    const token = await mintServiceToken(TEST_JWT_SECRET, 'billing');
    const stream = await openStream(server.url, { token: await server.token('docs-service') });
    try {
      const event = { topic: 'user:docs-service', type: 'notification', payload: { title: 'Paid', level: 'success' } };
      const first = await publishOnce(server.url, token, event, 'invoice-42');
      // A retry of the same publish (its answer lost, say) gets the same id, and no second event.
      expect(await publishOnce(server.url, token, event, 'invoice-42')).toEqual(first);
      const other = await publishOnce(server.url, token, event);
      await stream.waitFor((events) => published(events).some((received) => received.id === other.id));
      expect(published(stream.events).map((received) => received.id)).toEqual([first.id, other.id]);
    } finally {
      stream.close();
    }
  },
  'identity-provider.ts': async () => {
    const { buildApp, servicePublisher } = (await importExample('identity-provider.ts')) as IdentityProviderExample;
    const idp = await startJwksServer();
    await idp.publish('key-1');
    const claims = { iss: 'https://idp.example/', aud: 'https://api.example/realtime' };
    const dataDir = await mkdtemp(join(tmpdir(), 'docs-idp-'));
    const app = await buildApp({ jwksUrl: idp.url, issuer: claims.iss, audience: claims.aud }, dataDir);
    try {
      const appUrl = await app.listen({ port: 0, host: '127.0.0.1' });
      const reader = 'auth0|5f7c8ec7c33c6c004bbafe82';
      const stream = await openStream(`${appUrl}/realtime`, {
        token: await idp.sign('key-1', claims, { sub: reader }),
      });
      try {
        expect(stream.status).toBe(200);
        // A token the same provider issued for another API is refused.
        const elsewhere = await idp.sign('key-1', { ...claims, aud: 'https://api.example/billing' }, { sub: reader });
        const refused = await openStream(`${appUrl}/realtime`, { token: elsewhere });
        expect(refused.status).toBe(401);
        refused.close();
        const publisher = servicePublisher(appUrl, () =>
          idp.sign('key-1', { ...claims, scope: 'events:publish events:service' }, { sub: 'billing@clients' }),
        );
        const { id } = await publisher.publish({
          topic: `user:${reader}`,
          type: 'notification',
          payload: { title: 'Invoice paid', level: 'success' },
        });
        await stream.waitFor((events) => published(events).some((event) => event.id === id));
      } finally {
        stream.close();
      }
    } finally {
      await app.close();
      await idp.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  },
  // Needs a browser: built by Vite and run in Chromium against a real server by
  // apps/frontend/test/docs-react-example.test.ts (and type-checked with the other examples here).
  'react-app.tsx': 'run in Chromium',
};

describe('docs: examples and excerpts', () => {
  let blocks: CodeBlock[];
  let server: TestApp;

  beforeAll(async () => {
    blocks = [];
    for (const file of await markdownFiles()) blocks.push(...codeBlocks(file, await readFile(file, 'utf8')));
    server = await startTestApp({ METRICS_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('every code block is an example file, an excerpt of a shipped file, or a picture', async () => {
    expect(blocks.length).toBeGreaterThan(10);
    const problems: string[] = [];
    for (const block of blocks) {
      const where = `${block.file} (${block.language || 'no language'} block)`;
      const { example, excerpt } = block.attributes;
      if (block.language === 'text') continue;
      if (example !== undefined) {
        const file = (await readdir(EXAMPLES)).find((name) => name.replace(/\.[^.]+$/, '') === example);
        if (!file) problems.push(`${where}: no docs/examples/${example}.*`);
        else if ((await readFile(join(EXAMPLES, file), 'utf8')) !== block.body) {
          problems.push(`${where}: differs from docs/examples/${file}`);
        }
      } else if (excerpt !== undefined) {
        const path = join(ROOT, excerpt);
        if (!existsSync(path)) problems.push(`${where}: no file ${excerpt}`);
        else if (!containsLines(normalizedLines(await readFile(path, 'utf8')), normalizedLines(block.body))) {
          problems.push(`${where}: not found in ${excerpt}`);
        }
      } else {
        problems.push(`${where}: needs example=<name>, excerpt=<path>, or the language text`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every example file is shown in the docs and has a runner', async () => {
    const files = (await readdir(EXAMPLES)).filter((name) => name !== 'tsconfig.json').sort();
    const shown = new Set(blocks.map((block) => block.attributes['example']));
    expect(files.filter((name) => !shown.has(name.replace(/\.[^.]+$/, '')))).toEqual([]);
    expect(files).toEqual(Object.keys(RUNNERS).sort());
  });

  for (const [name, run] of Object.entries(RUNNERS)) {
    if (typeof run === 'function') it(`runs ${name} against a real server`, () => run(server), 60_000);
  }

  it('the TypeScript examples compile against the real packages', async () => {
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const result = await new Promise<ScriptResult>((resolveRun, reject) => {
      const child = spawn(process.execPath, [tsc, '-p', join(EXAMPLES, 'tsconfig.json')], { stdio: 'pipe' });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolveRun({ code, stdout, stderr: '' }));
    });
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  }, 120_000);

  it('links between pages and to repository files resolve, anchors included', async () => {
    const problems: string[] = [];
    for (const file of [...(await markdownFiles()), join(ROOT, 'README.md')]) {
      const markdown = (await readFile(file, 'utf8')).replace(/^```[\s\S]*?^```$/gm, '');
      for (const match of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = match[1] ?? '';
        if (/^[a-z]+:/.test(link)) continue;
        const [target = '', anchor] = link.split('#');
        const path = target === '' ? file : resolve(dirname(file), target);
        if (!existsSync(path)) problems.push(`${relative(ROOT, file)}: ${link} does not exist`);
        else if (anchor !== undefined && !anchorsOf(await readFile(path, 'utf8')).has(anchor)) {
          problems.push(`${relative(ROOT, file)}: ${link} has no such heading`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('docs: the repository stands alone', () => {
  it('no file points at a contract document that is not in the repository', async () => {
    const files = await new Promise<string[]>((resolveList, reject) => {
      const child = spawn('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', reject);
      child.on('close', () => resolveList(out.split('\0').filter((file) => file !== '')));
    });
    expect(files).toContain('docs/http-api.md');
    const outside = /\b(?:API|DESIGN|LIBRARY)\.md\b/;
    const problems: string[] = [];
    for (const file of files.filter((name) => !name.endsWith('package-lock.json') && existsSync(join(ROOT, name)))) {
      const lines = (await readFile(join(ROOT, file), 'utf8')).split('\n');
      lines.forEach((line, index) => {
        if (outside.test(line)) problems.push(`${file}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(problems).toEqual([]);
  });
});

describe('docs: configuration.md', () => {
  /** `| \`NAME\` | default | effect |` rows. */
  async function documented(): Promise<Map<string, string>> {
    const markdown = await readFile(join(DOCS, 'configuration.md'), 'utf8');
    const rows = [...markdown.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]+) \|/gm)];
    return new Map(rows.map((row) => [row[1] ?? '', (row[2] ?? '').trim()]));
  }

  it('lists every variable the config parser reads, and no other', async () => {
    const read = new Set<string>();
    // The parser reads what it knows from the environment object; a proxy records each name.
    const recorder = new Proxy<Record<string, string | undefined>>(
      {},
      {
        get: (_target, name) => {
          if (typeof name === 'string') read.add(name);
          return undefined;
        },
      },
    );
    parseConfig(recorder);
    expect(read.size).toBeGreaterThan(40);
    expect([...(await documented()).keys()].sort()).toEqual([...read].sort());
  });

  it('every default written as `code` is the one the parser applies', async () => {
    const defaults = parseConfig({});
    const checked: string[] = [];
    for (const [name, cell] of await documented()) {
      const literal = /^`([^`]*)`/.exec(cell)?.[1];
      if (literal === undefined) continue;
      expect(parseConfig({ [name]: literal }), `${name}=${literal}`).toEqual(defaults);
      checked.push(name);
    }
    expect(checked.length).toBeGreaterThan(40);
  });
});

describe('docs: library.md', () => {
  it('names each plugin option whose variable is not the option in capitals (jwt.* are the JWT_* variables)', async () => {
    const markdown = await readFile(join(DOCS, 'library.md'), 'utf8');
    const capitals = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase();
    const unusual = Object.entries(REALTIME_ENV_NAMES).filter(
      ([option, variable]) => option.startsWith('jwt.') || capitals(option) !== variable,
    );
    expect(unusual.length).toBeGreaterThan(6);
    const problems = unusual.filter(([option, variable]) =>
      option.startsWith('jwt.')
        ? !variable.startsWith('JWT_') || !markdown.includes(`\`${option}\``)
        : !markdown.includes(`\`${option}\` is \`${variable}\``),
    );
    expect(problems).toEqual([]);
  });
});
