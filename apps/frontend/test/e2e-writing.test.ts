/**
 * End to end, in a real browser against the real backend: Debian's Chromium driven by
 * playwright-core, the built frontend served by `apps/backend/src/main.ts` run as a child process
 * (stopped by PID). Every state is saved as `test-artifacts/e2e/<name>.png`.
 *
 * "Seven tabs on one origin all receive events" (one shared stream) is covered by e2e-tabs.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startServerOnFreePort,
  startServerProcess,
  type ServerProcess,
} from '../../../packages/server/test/helpers/server-process.js';
import { joinContinuation } from '../src/lib/continuation.js';
import {
  browserTestsEnabled,
  devToken,
  ensureFrontendBuilt,
  getGeneration,
  launchChromium,
  observeStream,
  publishNotification,
  screenshot,
  waitUntil,
} from './helpers/e2e.js';

const enabled = browserTestsEnabled('e2e-writing');

/** Paced so text visibly grows: 150 tokens at 30 per second is about 5 s per continuation. */
const PACED_ENV = {
  AI_OFFLINE_TOKENS_PER_SECOND: '30',
  AI_DEFAULT_MAX_TOKENS: '150',
  HEARTBEAT_MS: '2000',
  RETRY_MS: '500',
  SHUTDOWN_DRAIN_MS: '200',
};
/** Fast, for the three-stage task (950 tokens). */
const FAST_ENV = { AI_OFFLINE_TOKENS_PER_SECOND: '600', HEARTBEAT_MS: '2000', RETRY_MS: '500' };

const UI_TIMEOUT_MS = 15_000;

describe.skipIf(!enabled)('the writing assistant in Chromium', () => {
  let browser: Browser;
  /** The paced server; replaced by the restart test (same port, same data folder). */
  let paced: ServerProcess | undefined;
  let pacedPort = 0;
  let fast: ServerProcess | undefined;
  let dataDir = '';
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];

  /** The paced server keeps its port across restarts, so the page's reconnects find it again. */
  const startPaced = (port = pacedPort) =>
    startServerProcess({ ...PACED_ENV, PORT: String(port), DATA_DIR: join(dataDir, 'paced') });

  beforeAll(async () => {
    // Before any server starts: the backend registers the files of dist/ when it starts.
    await ensureFrontendBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'is-e2e-'));
    const [launched, fastServer] = await Promise.allSettled([
      launchChromium(),
      startServerProcess({ ...FAST_ENV, DATA_DIR: join(dataDir, 'fast') }),
    ]);
    if (launched.status === 'fulfilled') browser = launched.value;
    if (fastServer.status === 'fulfilled') fast = fastServer.value;
    for (const outcome of [launched, fastServer]) if (outcome.status === 'rejected') throw outcome.reason;
    ({ server: paced, port: pacedPort } = await startServerOnFreePort(startPaced));
  }, 180_000);

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
    expect(pageErrors.splice(0), 'uncaught errors in the page').toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([paced?.stop(), fast?.stop()]);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  function server(which: 'paced' | 'fast'): ServerProcess {
    const found = which === 'paced' ? paced : fast;
    if (!found) throw new Error(`the ${which} server is not running`);
    return found;
  }

  /** A fresh browser context (own storage), signed in through the form as `userId`. */
  async function signIn(baseUrl: string, userId: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('pageerror', (error) => pageErrors.push(`${userId}: ${error.message}`));
    await page.goto(baseUrl);
    await page.getByTestId('sign-in-name').fill(userId);
    await page.getByTestId('sign-in-submit').click();
    await badge(page, 'open');
    await expectText(page, 'user-name', userId);
    return page;
  }

  async function badge(page: Page, state: string, timeout = UI_TIMEOUT_MS): Promise<void> {
    await page.waitForSelector(`[data-testid="connection-badge"][data-state="${state}"]`, { timeout });
  }

  async function generationStatus(page: Page, status: string, timeout = UI_TIMEOUT_MS): Promise<void> {
    await page.waitForSelector(`[data-testid="generation-status"][data-status="${status}"]`, { timeout });
  }

  async function expectText(page: Page, testId: string, text: string): Promise<void> {
    expect((await page.getByTestId(testId).textContent())?.trim()).toBe(text);
  }

  /** Clicks "Continue writing"; resolves with the id from `POST /api/ai/generations`. */
  async function continueWriting(page: Page): Promise<string> {
    const [response] = await Promise.all([
      page.waitForResponse(
        (candidate) =>
          new URL(candidate.url()).pathname === '/api/ai/generations' && candidate.request().method() === 'POST',
      ),
      page.getByTestId('continue-button').click(),
    ]);
    expect(response.status()).toBe(202);
    return ((await response.json()) as { generationId: string }).generationId;
  }

  /** Records every value the task's progress bar shows, in `window.progressValues`. */
  async function recordProgressValues(page: Page): Promise<void> {
    await page.evaluate(() => {
      const values: number[] = [];
      (window as unknown as { progressValues: number[] }).progressValues = values;
      new MutationObserver(() => {
        const value = document.querySelector('[data-testid="task-progress"]')?.getAttribute('aria-valuenow');
        if (value !== null && value !== undefined && values.at(-1) !== Number(value)) values.push(Number(value));
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
  }

  const streamedText = async (page: Page) => (await page.getByTestId('streamed-text').textContent()) ?? '';
  const words = (text: string) => text.trim().split(/\s+/).filter(Boolean).length;

  /** Waits until the streamed continuation has at least `count` words; returns it. */
  const waitForWords = (page: Page, count: number) =>
    waitUntil(
      () => streamedText(page),
      (text) => words(text) >= count,
      { timeoutMs: UI_TIMEOUT_MS, what: `${count} streamed words` },
    );

  /** Records every distinct text of `streamed-text`, with the time it appeared, inside the page. */
  async function recordStreamedText(page: Page): Promise<() => Promise<{ text: string; at: number }[]>> {
    await page.evaluate(() => {
      const samples: { text: string; at: number }[] = [];
      (window as unknown as { streamSamples: typeof samples }).streamSamples = samples;
      const record = () => {
        const text = document.querySelector('[data-testid="streamed-text"]')?.textContent;
        if (text !== undefined && text !== null && samples.at(-1)?.text !== text) {
          samples.push({ text, at: performance.now() });
        }
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    return () =>
      page.evaluate(() => (window as unknown as { streamSamples: { text: string; at: number }[] }).streamSamples);
  }

  it('signs in with a dev token; the continuation grows progressively and ends as the server’s text', async () => {
    const { url } = server('paced');
    const page = await signIn(url, 'elizabeth');
    await page.getByTestId('provider-notice').waitFor();
    expect(await page.getByTestId('provider-notice').getAttribute('data-kind')).toBe('offline');
    await screenshot(page, '01-signed-in');

    const base = await page.getByTestId('editor').inputValue();
    const samples = await recordStreamedText(page);
    const generationId = await continueWriting(page);
    await waitForWords(page, 8);
    expect(await page.getByTestId('typing-caret').isVisible()).toBe(true);
    expect(await page.getByTestId('editor-preview').isVisible()).toBe(true);
    await screenshot(page, '02-streaming');

    await generationStatus(page, 'completed');
    await screenshot(page, '03-completed');
    const document = await page.getByTestId('editor').inputValue();
    const view = await getGeneration(url, await devToken(url, 'elizabeth'), generationId);
    expect(view.status).toBe('completed');
    expect(words(view.text)).toBeGreaterThan(20);
    const addition = joinContinuation(base, view.text);
    // The document now ends with exactly the server's text: no word doubled, none missing.
    expect(document).toBe(base + addition);
    expect(await page.getByTestId('typing-caret').count()).toBe(0);

    // Progressive: many intermediate texts over seconds, each a prefix of the final one.
    const seen = (await samples()).filter((sample) => sample.text !== '');
    expect(seen.length).toBeGreaterThanOrEqual(10);
    for (const sample of seen) expect(addition.startsWith(sample.text), sample.text).toBe(true);
    const lengths = seen.map((sample) => sample.text.length);
    expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
    const first = seen[0];
    const last = seen.at(-1);
    expect(first && last && last.at - first.at).toBeGreaterThan(2_000);
  }, 60_000);

  it('Stop ends the continuation: no more text arrives and the document keeps what the server wrote', async () => {
    const { url } = server('paced');
    const page = await signIn(url, 'stopper');
    const base = await page.getByTestId('editor').inputValue();
    const generationId = await continueWriting(page);
    await waitForWords(page, 6);
    await page.getByTestId('stop-button').click();
    await generationStatus(page, 'cancelled');
    await screenshot(page, '04-stopped');
    const stopped = await page.getByTestId('editor').inputValue();
    expect(await page.getByTestId('generation-status').textContent()).toMatch(/^Stopped: kept \d+ words?\.$/);

    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await page.getByTestId('editor').inputValue()).toBe(stopped);
    expect(await page.getByTestId('editor-preview').count()).toBe(0);
    const token = await devToken(url, 'stopper');
    const view = await getGeneration(url, token, generationId);
    expect(view.status).toBe('cancelled');
    expect(stopped).toBe(base + joinContinuation(base, view.text));
    // Stopped well before the 150-token budget, and the server wrote nothing after.
    expect(words(view.text)).toBeLessThan(100);
    expect((await getGeneration(url, token, generationId)).text).toBe(view.text);
  }, 60_000);

  it('a reload mid-generation resumes the text where it stood and finishes it', async () => {
    const { url } = server('paced');
    const page = await signIn(url, 'reloader');
    const base = await page.getByTestId('editor').inputValue();
    const generationId = await continueWriting(page);
    const before = await waitForWords(page, 6);
    await screenshot(page, '05-before-reload');

    // Every text the continuation shows from the first paint after the reload on.
    await page.addInitScript(() => {
      const shown: string[] = [];
      (window as unknown as { shownAfterReload: string[] }).shownAfterReload = shown;
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="streamed-text"]')?.textContent;
        if (text !== undefined && text !== null && shown.at(-1) !== text) shown.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await page.reload();
    await badge(page, 'open');
    const resumed = await waitUntil(
      () => streamedText(page),
      (text) => words(text) >= words(before),
      { timeoutMs: UI_TIMEOUT_MS, what: 'the streamed text back after the reload' },
    );
    expect(await page.getByTestId('typing-caret').isVisible()).toBe(true);
    await screenshot(page, '06-resumed-after-reload');

    await generationStatus(page, 'completed');
    // From the first paint after the reload: never empty, never shorter than before it (the page
    // shows what it had at once), then still growing word by word to the end.
    const shown = await page.evaluate(() => (window as unknown as { shownAfterReload: string[] }).shownAfterReload);
    for (const text of shown) expect(text.startsWith(before), JSON.stringify(text)).toBe(true);
    expect(shown.length).toBeGreaterThan(3);
    const lengths = shown.map((text) => text.length);
    expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
    const view = await getGeneration(url, await devToken(url, 'reloader'), generationId);
    expect(view.status).toBe('completed');
    const addition = joinContinuation(base, view.text);
    expect(addition.startsWith(before)).toBe(true);
    expect(addition.startsWith(resumed)).toBe(true);
    expect(await page.getByTestId('editor').inputValue()).toBe(base + addition);
    await screenshot(page, '07-completed-after-reload');
  }, 60_000);

  it('after a reload mid-generation, Stop still stops it', async () => {
    const { url } = server('paced');
    const page = await signIn(url, 'restopper');
    const base = await page.getByTestId('editor').inputValue();
    const generationId = await continueWriting(page);
    await waitForWords(page, 4);
    await page.reload();
    await badge(page, 'open');
    await waitUntil(
      () => streamedText(page),
      (text) => words(text) >= 6,
      { timeoutMs: UI_TIMEOUT_MS, what: 'the streamed text back after the reload' },
    );
    await page.getByTestId('stop-button').click();
    await generationStatus(page, 'cancelled');
    const stopped = await page.getByTestId('editor').inputValue();
    const view = await getGeneration(url, await devToken(url, 'restopper'), generationId);
    expect(view.status).toBe('cancelled');
    expect(stopped).toBe(base + joinContinuation(base, view.text));
    expect(words(view.text)).toBeLessThan(100);
  }, 60_000);

  it('reads without sight or colour: a named read-only textbox while streaming, toasts that say their level, centred sign-in text, no animation under reduced motion', async () => {
    const { url } = server('paced');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, reducedMotion: 'reduce' });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('pageerror', (error) => pageErrors.push(`a11y: ${error.message}`));
    await page.goto(url);
    await page.getByLabel('Your name').fill('ada');
    const submit = page.getByRole('button', { name: 'Sign in as ada' });
    await screenshot(page, '10-sign-in');
    // The label sits in the middle of its full-width button.
    const offset = await submit.evaluate((button) => {
      const range = document.createRange();
      range.selectNodeContents(button);
      const text = range.getBoundingClientRect();
      const box = button.getBoundingClientRect();
      return text.left + text.width / 2 - (box.left + box.width / 2);
    });
    expect(Math.abs(offset)).toBeLessThan(2);
    await submit.click();
    await badge(page, 'open');

    const documentText = page.getByRole('textbox', { name: 'Document text' });
    expect(await documentText.evaluate((element) => element.tagName)).toBe('TEXTAREA');
    await continueWriting(page);
    const streamed = await waitForWords(page, 4);
    // While it streams, the same name reaches a read-only, multi-line textbox holding the text.
    expect(await documentText.evaluate((element) => element.tagName)).toBe('DIV');
    expect(await documentText.getAttribute('aria-readonly')).toBe('true');
    expect(await documentText.getAttribute('aria-multiline')).toBe('true');
    expect(await documentText.textContent()).toContain(streamed);
    const caret = page.getByTestId('typing-caret');
    expect(await caret.evaluate((element) => getComputedStyle(element).animationName)).toBe('none');
    await screenshot(page, '11-streaming-reduced-motion');
    await page.getByRole('button', { name: 'Stop' }).click();
    await generationStatus(page, 'cancelled');

    await publishNotification(url, 'ada', 'Saved', { level: 'success' });
    await publishNotification(url, 'ada', 'Disk almost full', {
      level: 'warning',
      body: 'Only 2 % of the quota is left.',
    });
    await publishNotification(url, 'ada', 'Sync failed', { level: 'error' });
    const toasts = page.getByRole('region', { name: 'Notifications' });
    const saved = toasts.getByRole('status').filter({ hasText: 'Saved' });
    const full = toasts.getByRole('alert').filter({ hasText: 'Disk almost full' });
    const failed = toasts.getByRole('alert').filter({ hasText: 'Sync failed' });
    await failed.waitFor();
    // The level in words (for screen readers) and as a shape (for eyes), not only as a colour.
    expect(await saved.locator('.toast-text').textContent()).toMatch(/^Success:\s*Saved/);
    expect(await full.locator('.toast-text').textContent()).toMatch(/^Warning:\s*Disk almost full/);
    expect(await failed.locator('.toast-text').textContent()).toMatch(/^Error:\s*Sync failed/);
    const icons = await toasts.getByTestId('toast-icon').allTextContents();
    expect(new Set(icons).size).toBe(3);
    await screenshot(page, '12-toasts');
    // A title-only toast is as tall as its content: the title is centred, no empty strip below it.
    const gap = await saved.evaluate((toast) => {
      const title = toast.querySelector('strong')?.getBoundingClientRect();
      const box = toast.getBoundingClientRect();
      return title ? box.bottom - title.bottom - (title.top - box.top) : Number.NaN;
    });
    expect(Math.abs(gap)).toBeLessThan(3);
  }, 60_000);

  it('offline shows the offline badge; back online it reconnects and delivers what was missed', async () => {
    const { url } = server('paced');
    const page = await signIn(url, 'nomad');
    const context = page.context();
    // One event first, so the page has a resume point (a stream that never received an event
    // has none: what is published during its first outage is not replayed).
    await publishNotification(url, 'nomad', 'Hello before the outage');
    await page.getByTestId('toast').filter({ hasText: 'Hello before the outage' }).waitFor({ timeout: UI_TIMEOUT_MS });
    await page.route('**/api/sse/**', (route) => route.abort('internetdisconnected'));
    await context.setOffline(true);
    await badge(page, 'offline');
    expect((await page.getByTestId('connection-badge').textContent())?.startsWith('Offline')).toBe(true);

    await publishNotification(url, 'nomad', 'Sent while you were offline');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await page.getByTestId('toast').filter({ hasText: 'Sent while you were offline' }).count()).toBe(0);
    await badge(page, 'offline');
    await screenshot(page, '08-offline');

    await page.unroute('**/api/sse/**');
    await context.setOffline(false);
    await badge(page, 'open');
    // The missed event is replayed on resume, then live events flow again.
    await page
      .getByTestId('toast')
      .filter({ hasText: 'Sent while you were offline' })
      .waitFor({ timeout: UI_TIMEOUT_MS });
    await publishNotification(url, 'nomad', 'Live again');
    await page.getByTestId('toast').filter({ hasText: 'Live again' }).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await page.getByTestId('toast').filter({ hasText: 'Sent while you were offline' }).count()).toBe(1);
    await screenshot(page, '09-back-online');
  }, 60_000);

  it('the outline → draft → polish task’s progress bar climbs to 100 %', async () => {
    const { url } = server('fast');
    const page = await signIn(url, 'planner');
    await recordProgressValues(page);
    await page.getByTestId('task-start').click();
    await page.waitForSelector('[data-testid="task-progress"][aria-valuenow="100"]', { timeout: 30_000 });
    await page.getByTestId('task-result').waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await page.getByTestId('task-message').textContent()).toMatch(/^Done\./);
    // The bar is drawn full once its width transition ends.
    await page.waitForFunction(() => {
      const track = document.querySelector('[data-testid="task-progress"]')?.getBoundingClientRect();
      const fill = document.querySelector('[data-testid="task-progress"] .progress-fill')?.getBoundingClientRect();
      return track !== undefined && fill !== undefined && fill.width >= track.width - 1;
    });
    await screenshot(page, '10-task-100');

    const values = await page.evaluate(() => (window as unknown as { progressValues: number[] }).progressValues);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.some((value) => value > 0 && value < 100)).toBe(true);
    expect(values.at(-1)).toBe(100);
  }, 60_000);

  it('the operations page draws live charts of the server’s metrics', async () => {
    const { url } = server('fast');
    const page = await signIn(url, 'operator');
    await page.getByTestId('tab-operations').click();
    for (const chart of ['chart-connections', 'chart-deliveries', 'chart-latency', 'chart-resets']) {
      await page.getByTestId(chart).waitFor({ timeout: UI_TIMEOUT_MS });
    }
    await waitUntil(
      () => page.getByTestId('readiness').textContent(),
      (text) => text === 'ok',
      { timeoutMs: UI_TIMEOUT_MS, what: 'readiness ok' },
    );
    // Two scrapes (2 s apart) give a rate; the connection count includes this page's stream.
    const readout = await waitUntil(
      () => page.getByTestId('chart-connections').locator('.chart-value').textContent(),
      (text) => text !== null && Number(text) >= 1,
      { timeoutMs: UI_TIMEOUT_MS, what: 'a connection count' },
    );
    expect(Number(readout)).toBeGreaterThanOrEqual(1);
    await page.waitForTimeout(2_500);
    expect(await page.locator('[data-testid="chart-connections"] canvas').count()).toBeGreaterThan(0);
    await screenshot(page, '11-operations');
  }, 60_000);

  it('a backend restart mid-generation: reconnecting, then connected; the generation completes with no word doubled or lost, and the running task goes on to 100 %', async () => {
    const userId = 'restarter';
    const page = await signIn(server('paced').url, userId);
    const base = await page.getByTestId('editor').inputValue();
    // A second reader of the same user's stream: what the server published, independently of the page.
    const observer = await observeStream(server('paced').url, await devToken(server('paced').url, userId));
    try {
      // A three-stage task runs across the restart too (950 tokens at 30/s: it outlasts it).
      await recordProgressValues(page);
      await page.getByTestId('task-start').click();
      await page.waitForSelector('[data-testid="task-progress"]', { timeout: UI_TIMEOUT_MS });
      const generationId = await continueWriting(page);
      await waitForWords(page, 6);
      await screenshot(page, '12-streaming-before-restart');

      const stopped = server('paced');
      paced = undefined;
      await stopped.stop('SIGTERM');
      await badge(page, 'reconnecting');
      await screenshot(page, '13-reconnecting');
      await observer.ended;

      paced = await startPaced();
      await badge(page, 'open', 30_000);
      await screenshot(page, '14-reconnected');

      // A clean shutdown hands the generation over; the restarted server continues it where it
      // stopped, and the page, resuming, gets the checkpoint from the store and the rest live.
      await generationStatus(page, 'completed', 30_000);
      const deltas = observer.events
        .filter((event) => event.event === 'ai.generation.delta')
        .map(
          (event) =>
            (JSON.parse(event.data) as { payload: { generationId: string; seq: number; text: string } }).payload,
        )
        .filter((delta) => delta.generationId === generationId);
      expect(deltas.map((delta) => delta.seq)).toEqual(deltas.map((_, index) => index));
      const beforeRestart = deltas.map((delta) => delta.text).join('');
      expect(words(beforeRestart)).toBeGreaterThanOrEqual(6);
      const token = await devToken(paced.url, userId);
      const view = await getGeneration(paced.url, token, generationId);
      expect(view.status).toBe('completed');
      // The text before the restart, then the continuation: nothing doubled, nothing lost.
      expect(view.text.startsWith(beforeRestart)).toBe(true);
      expect(words(view.text)).toBeGreaterThan(words(beforeRestart));
      const kept = await page.getByTestId('editor').inputValue();
      expect(kept).toBe(base + joinContinuation(base, view.text));
      await screenshot(page, '15-completed-after-restart');

      // The restarted server streams a new continuation to the same page as well.
      const nextId = await continueWriting(page);
      await generationStatus(page, 'completed');
      const next = await getGeneration(paced.url, token, nextId);
      expect(next.status).toBe('completed');
      expect(await page.getByTestId('editor').inputValue()).toBe(kept + joinContinuation(kept, next.text));
      await screenshot(page, '16-next-completed-after-restart');

      // The task was handed over and continued: its bar never went back and reaches 100 %.
      await page.waitForSelector('[data-testid="task-progress"][aria-valuenow="100"]', { timeout: 90_000 });
      await page.getByTestId('task-result').waitFor({ timeout: UI_TIMEOUT_MS });
      const values = await page.evaluate(() => (window as unknown as { progressValues: number[] }).progressValues);
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(values.at(-1)).toBe(100);
      const metrics = await (await fetch(`${paced.url}/metrics`)).text();
      expect(metrics).toMatch(/tasks_total\{kind="outline-draft-polish",outcome="continued"\} 1/);
      await screenshot(page, '17-task-completed-after-restart');
    } finally {
      observer.close();
    }
  }, 180_000);
});
