/**
 * @module Helpers of the end-to-end tests: Debian's Chromium through playwright-core, a fresh
 * frontend build, the real backend as a child process, and small HTTP calls to check what the
 * page shows against what the server says.
 */
import type { NotificationPayload } from '@infinitescribe/protocol';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { chromium, type Browser, type Page } from 'playwright-core';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** Where screenshots go (gitignored). */
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts', 'e2e');
/** Debian's Chromium (`apt-get install -y chromium`); `npx playwright install` cannot work here. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const FRONTEND = join(REPO_ROOT, 'apps', 'frontend');
const BUILD_INPUTS = [
  join(FRONTEND, 'src'),
  join(FRONTEND, 'index.html'),
  join(FRONTEND, 'vite.config.ts'),
  join(FRONTEND, 'package.json'),
  join(REPO_ROOT, 'packages', 'client', 'src'),
  join(REPO_ROOT, 'packages', 'react', 'src'),
  join(REPO_ROOT, 'packages', 'protocol', 'src'),
];
const BUILT_INDEX = join(FRONTEND, 'dist', 'index.html');
const BUILD_LOCK = join(REPO_ROOT, '.tmp', 'frontend-build.lock');
const BUILD_TIMEOUT_MS = 120_000;

/**
 * Whether the browser tests can run. Without Chromium they are skipped with a loud warning,
 * except with `CI=true`, where a missing browser is a failure (the suite must not pass by running
 * nothing).
 */
export function browserTestsEnabled(suite: string): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const message = `${suite}: ${CHROMIUM_PATH} is missing (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so this fails instead of skipping`);
  console.warn(`\n!!! SKIPPED: ${message} !!!\n`);
  return false;
}

/** Launches headless Chromium; close it in `afterAll`. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 30_000,
  });
}

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function isBuildStale(): boolean {
  if (!existsSync(BUILT_INDEX)) return true;
  const built = statSync(BUILT_INDEX).mtimeMs;
  return BUILD_INPUTS.some((input) => newestMtime(input) > built);
}

/**
 * Builds the frontend (`npm run build -w apps/frontend`) unless `dist/index.html` is newer than
 * every source, so `npm test` works on a clean clone. A lock folder keeps two test files from
 * building at once (vite empties `dist` first).
 */
export async function ensureFrontendBuilt(): Promise<void> {
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  mkdirSync(join(REPO_ROOT, '.tmp'), { recursive: true });
  for (;;) {
    if (!isBuildStale()) return;
    try {
      mkdirSync(BUILD_LOCK);
    } catch {
      // Someone else builds; a lock older than the build limit was left by a dead process.
      if (existsSync(BUILD_LOCK) && Date.now() - statSync(BUILD_LOCK).mtimeMs > BUILD_TIMEOUT_MS) {
        rmSync(BUILD_LOCK, { recursive: true, force: true });
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for another frontend build');
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    try {
      if (!isBuildStale()) return;
      await promisify(execFile)('npm', ['run', 'build', '-w', 'apps/frontend'], {
        cwd: REPO_ROOT,
        timeout: BUILD_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      });
      return;
    } finally {
      rmSync(BUILD_LOCK, { recursive: true, force: true });
    }
  }
}

/** Saves a full-page screenshot as `test-artifacts/e2e/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS_DIR, `${name}.png`), fullPage: true });
}

/** `POST /api/auth/dev-token` for `userId`. */
export async function devToken(baseUrl: string, userId: string, scope?: string): Promise<string> {
  const response = await fetch(new URL('/api/auth/dev-token', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, ...(scope ? { scope } : {}) }),
  });
  if (!response.ok) throw new Error(`dev-token answered HTTP ${response.status}`);
  const body = (await response.json()) as { accessToken: string };
  return body.accessToken;
}

/** `GET /api/ai/generations/:id` as its owner. */
export interface ServerGeneration {
  generationId: string;
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  text: string;
  error?: string;
}

/** The server's view of a generation. */
export async function getGeneration(baseUrl: string, token: string, generationId: string): Promise<ServerGeneration> {
  const response = await fetch(new URL(`/api/ai/generations/${encodeURIComponent(generationId)}`, baseUrl), {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok) throw new Error(`GET generation answered HTTP ${response.status}`);
  return (await response.json()) as ServerGeneration;
}

/** Publishes a `notification` to `user:<userId>` with a publisher token of that user. */
export async function publishNotification(
  baseUrl: string,
  userId: string,
  title: string,
  extra: Partial<Omit<NotificationPayload, 'title'>> = {},
): Promise<void> {
  const token = await devToken(baseUrl, userId, 'events:publish');
  const payload: NotificationPayload = { title, level: 'info', ...extra };
  const response = await fetch(new URL('/api/events', baseUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic: `user:${userId}`, type: 'notification', payload }),
  });
  if (response.status !== 202 && response.status !== 201) throw new Error(`publish answered HTTP ${response.status}`);
}

/** Polls `read` until `done` holds for its value; returns it. */
export async function waitUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs: number; what: string; everyMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${options.timeoutMs} ms: ${options.what} (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}

/** A second reader of a user's stream, next to the page: what the server published. */
export interface StreamObserver {
  /** Every event received, control events included, in order. */
  events: EventSourceMessage[];
  /** Resolves once the server has ended the stream (or `close()` was called). */
  ended: Promise<void>;
  close(): void;
}

/** Opens `GET /api/sse/stream` with `token`; resolves once `connection.established` has arrived. */
export async function observeStream(baseUrl: string, token: string): Promise<StreamObserver> {
  const abort = new AbortController();
  const response = await fetch(new URL('/api/sse/stream', baseUrl), {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  });
  if (response.status !== 200 || !response.body) throw new Error(`stream answered HTTP ${response.status}`);
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    try {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        parser.feed(decoder.decode(chunk.value, { stream: true }));
      }
    } catch {
      // Aborted by close(), or cut by the server: either way the stream is over.
    }
  })();
  await waitUntil(
    async () => events.some((event) => event.event === 'connection.established'),
    (established) => established,
    { timeoutMs: 10_000, what: 'connection.established on the observer stream' },
  );
  return { events, ended, close: () => abort.abort() };
}
