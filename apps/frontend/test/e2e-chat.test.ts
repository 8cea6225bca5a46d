/**
 * End to end, in Chromium against the real backend (a child process, stopped by PID): the chat
 * page, `useChat` of the AI SDK on our generations through `@infinitescribe/react/chat`, with the
 * offline demo provider paced so an answer takes seconds. Screenshots in `test-artifacts/e2e/chat-*.png`.
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
import {
  browserTestsEnabled,
  devToken,
  ensureFrontendBuilt,
  getGeneration,
  launchChromium,
  screenshot,
  waitUntil,
} from './helpers/e2e.js';

const enabled = browserTestsEnabled('e2e-chat');

/** 150 tokens at 30 per second: about 5 s per answer. */
const PACED_ENV = {
  AI_OFFLINE_TOKENS_PER_SECOND: '30',
  AI_DEFAULT_MAX_TOKENS: '150',
  HEARTBEAT_MS: '2000',
  RETRY_MS: '500',
  SHUTDOWN_DRAIN_MS: '200',
};
const UI_TIMEOUT_MS = 15_000;

const words = (text: string) => text.split(/\s+/).filter(Boolean).length;

interface Turn {
  generationId: string;
  prompt: string;
  status: string;
  text: string;
}

describe.skipIf(!enabled)('the chat page (useChat on our generations) in Chromium', () => {
  let browser: Browser;
  let server: ServerProcess | undefined;
  let port = 0;
  let dataDir = '';
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];

  const start = (onPort = port) => startServerProcess({ ...PACED_ENV, PORT: String(onPort), DATA_DIR: dataDir });
  const running = (): ServerProcess => {
    if (!server) throw new Error('the server is not running');
    return server;
  };

  beforeAll(async () => {
    await ensureFrontendBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'is-e2e-chat-'));
    browser = await launchChromium();
    // The port stays the same across the restart test, so the pages' reconnects find it again.
    ({ server, port } = await startServerOnFreePort(start));
  }, 180_000);

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
    expect(pageErrors.splice(0), 'uncaught errors in the page').toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    return context;
  }

  /** Signs in as `userId` in `context` (a new one by default) and opens the chat page. */
  async function openChat(userId: string, context?: BrowserContext): Promise<Page> {
    const page = await (context ?? (await newContext())).newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('pageerror', (error) => pageErrors.push(`${userId}: ${error.message}`));
    await page.goto(running().url);
    if (await page.getByTestId('sign-in-name').isVisible()) {
      await page.getByTestId('sign-in-name').fill(userId);
      await page.getByTestId('sign-in-submit').click();
    }
    await page.waitForSelector('[data-testid="connection-badge"][data-state="open"]');
    await page.getByTestId('tab-chat').click();
    await page.getByTestId('chat-input').waitFor();
    return page;
  }

  /** Sends `text`; resolves with the generation id `POST /api/ai/generations` answered. */
  async function send(page: Page, text: string): Promise<string> {
    await page.getByTestId('chat-input').fill(text);
    const [response] = await Promise.all([
      page.waitForResponse(
        (candidate) =>
          new URL(candidate.url()).pathname === '/api/ai/generations' && candidate.request().method() === 'POST',
      ),
      page.getByTestId('chat-input').press('Enter'),
    ]);
    expect(response.status()).toBe(202);
    const request = JSON.parse(response.request().postData() ?? '{}') as { conversationId?: string };
    expect(request.conversationId).toMatch(/^chat-/);
    return ((await response.json()) as { generationId: string }).generationId;
  }

  const answerText = async (page: Page): Promise<string> =>
    (await page.getByTestId('chat-message-assistant').last().locator('.chat-text').textContent()) ?? '';

  const waitForAnswerWords = (page: Page, count: number) =>
    waitUntil(
      () => answerText(page).catch(() => ''),
      (text) => words(text) >= count,
      { timeoutMs: UI_TIMEOUT_MS, what: `${count} words of the answer` },
    );

  const chatStatus = (page: Page, status: string, timeout = UI_TIMEOUT_MS) =>
    page.waitForSelector(`[data-testid="chat-status"][data-status="${status}"]`, { timeout });

  const conversationIdOf = (page: Page) => new URL(page.url()).hash.replace('#/chat/', '');

  async function turnsOf(userId: string, conversationId: string): Promise<Turn[]> {
    const token = await devToken(running().url, userId);
    const response = await fetch(`${running().url}/api/ai/conversations/${conversationId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { turns: Turn[] }).turns;
  }

  const settled = async (userId: string, generationId: string) =>
    waitUntil(
      async () => getGeneration(running().url, await devToken(running().url, userId), generationId),
      (view) => view.status !== 'running',
      { timeoutMs: 30_000, what: 'the generation to settle on the server' },
    );

  /** Records every answer text the page shows from its first paint on, in `window.shownAnswers`. */
  async function recordAnswers(page: Page): Promise<void> {
    await page.addInitScript(() => {
      const shown: string[] = [];
      (window as unknown as { shownAnswers: string[] }).shownAnswers = shown;
      new MutationObserver(() => {
        const answers = document.querySelectorAll('[data-testid="chat-message-assistant"] .chat-text');
        const text = answers[answers.length - 1]?.textContent;
        if (text !== undefined && text !== null && shown.at(-1) !== text) shown.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
  }

  it('streams an answer, keeps the turn on the server, and another context lists and reopens it', async () => {
    const page = await openChat('chatter');
    await recordAnswers(page);
    const generationId = await send(page, 'It is a truth universally acknowledged');
    await waitForAnswerWords(page, 3);
    await screenshot(page, 'chat-01-streaming');
    await chatStatus(page, 'ready', 30_000);
    const view = await settled('chatter', generationId);
    expect(view.status).toBe('completed');
    expect(await answerText(page)).toBe(view.text);
    const conversationId = conversationIdOf(page);
    expect(await turnsOf('chatter', conversationId)).toEqual([
      expect.objectContaining({
        generationId,
        prompt: 'It is a truth universally acknowledged',
        status: 'completed',
        text: view.text,
      }),
    ]);
    await screenshot(page, 'chat-02-answered');

    // Another browser (own storage): signs in, finds the conversation listed, reopens it.
    const other = await openChat('chatter');
    const link = other.locator(`[data-testid="conversation-link"][data-conversation-id="${conversationId}"]`);
    await link.waitFor();
    expect(await link.textContent()).toContain('It is a truth universally acknowledged');
    await link.click();
    await other.getByTestId('chat-message-assistant').waitFor();
    expect(await other.getByTestId('chat-message-user').textContent()).toContain(
      'It is a truth universally acknowledged',
    );
    expect(await answerText(other)).toBe(view.text);
    await screenshot(other, 'chat-03-reopened-elsewhere');
    // Someone else sees none of it.
    const stranger = await openChat('stranger');
    await stranger.getByText('No conversations yet.').waitFor();
  }, 90_000);

  it('a reload mid-answer resumes it where it stood: never empty, never replayed from the start, no text doubled', async () => {
    const page = await openChat('reloader');
    const generationId = await send(page, 'Tell me about the sea');
    const before = await waitForAnswerWords(page, 6);
    await recordAnswers(page);
    await page.reload();
    await page.getByTestId('chat-input').waitFor();
    await screenshot(page, 'chat-04-resumed-after-reload');
    await chatStatus(page, 'ready', 30_000);
    const view = await settled('reloader', generationId);
    expect(view.status).toBe('completed');
    expect(await answerText(page)).toBe(view.text);
    const shown = await page.evaluate(() => (window as unknown as { shownAnswers: string[] }).shownAnswers);
    // From its first paint after the reload: at least what it showed before, then only growing.
    for (const text of shown) expect(text.startsWith(before), JSON.stringify(text)).toBe(true);
    const lengths = shown.map((text) => text.length);
    expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
    expect(shown.at(-1)).toBe(view.text);
    expect(await page.getByTestId('chat-message-assistant').count()).toBe(1);
    await screenshot(page, 'chat-05-completed-after-reload');
  }, 90_000);

  it('after a reload mid-answer, Stop cancels it on the server', async () => {
    const page = await openChat('restopper');
    const generationId = await send(page, 'Write at length about rivers');
    await waitForAnswerWords(page, 4);
    await page.reload();
    await waitForAnswerWords(page, 6);
    await page.getByTestId('chat-stop').click();
    await chatStatus(page, 'ready');
    const view = await settled('restopper', generationId);
    expect(view.status).toBe('cancelled');
    const turns = await waitUntil(
      () => turnsOf('restopper', conversationIdOf(page)),
      (found) => found[0]?.status === 'cancelled',
      { timeoutMs: UI_TIMEOUT_MS, what: 'the turn recorded as cancelled' },
    );
    expect(turns[0]?.text).toBe(view.text);
  }, 60_000);

  it('Stop cancels the answer on the server, not only the stream', async () => {
    const page = await openChat('stopper');
    const generationId = await send(page, 'Write at length about mountains');
    await waitForAnswerWords(page, 4);
    await page.getByTestId('chat-stop').click();
    await chatStatus(page, 'ready');
    const lastAnswer = () => page.getByTestId('chat-message-assistant').last();
    await lastAnswer().getByTestId('answer-stopped').waitFor();
    const view = await settled('stopper', generationId);
    expect(view.status).toBe('cancelled');
    expect(words(view.text)).toBeLessThan(150);
    // Reopened from the server, the answer is still marked as stopped.
    await page.reload();
    await page.getByTestId('chat-input').waitFor();
    await lastAnswer().getByTestId('answer-stopped').waitFor();
    expect(await lastAnswer().getAttribute('data-message-id')).toBe(generationId);
    await screenshot(page, 'chat-05b-stopped-reopened');
    // Sending again works at once (nothing left running).
    const next = await send(page, 'Now something short');
    await chatStatus(page, 'ready', 30_000);
    expect((await settled('stopper', next)).status).toBe('completed');
    await screenshot(page, 'chat-06-stopped-then-answered');
  }, 60_000);

  it('offline mid-answer, then online: the answer catches up and completes', async () => {
    const context = await newContext();
    const page = await openChat('nomad', context);
    const generationId = await send(page, 'Describe a long journey');
    await waitForAnswerWords(page, 3);
    await context.setOffline(true);
    await page.waitForSelector('[data-testid="connection-badge"][data-state="offline"]');
    const whileOffline = await answerText(page);
    // The generation goes on on the server meanwhile.
    const token = await devToken(running().url, 'nomad');
    await waitUntil(
      () => getGeneration(running().url, token, generationId),
      (view) => view.status !== 'running' || words(view.text) > words(whileOffline) + 5,
      { timeoutMs: UI_TIMEOUT_MS, what: 'the answer to grow on the server while the page is offline' },
    );
    await screenshot(page, 'chat-07-offline');
    await context.setOffline(false);
    await chatStatus(page, 'ready', 30_000);
    const view = await settled('nomad', generationId);
    expect(view.status).toBe('completed');
    expect(view.text.startsWith(whileOffline)).toBe(true);
    expect(await answerText(page)).toBe(view.text);
  }, 60_000);

  it('a server restart mid-answer: the answer is continued and completes, nothing doubled or lost', async () => {
    const page = await openChat('restarter');
    const generationId = await send(page, 'Tell me a story about a lighthouse');
    const before = await waitForAnswerWords(page, 6);
    const stopped = running();
    server = undefined;
    await stopped.stop('SIGTERM');
    await page.waitForSelector('[data-testid="connection-badge"][data-state="reconnecting"]');
    server = await start();
    await page.waitForSelector('[data-testid="connection-badge"][data-state="open"]', { timeout: 30_000 });
    await chatStatus(page, 'ready', 30_000);
    const view = await settled('restarter', generationId);
    expect(view.status).toBe('completed');
    expect(view.text.startsWith(before)).toBe(true);
    expect(words(view.text)).toBeGreaterThan(words(before));
    expect(await answerText(page)).toBe(view.text);
    const turns = await waitUntil(
      () => turnsOf('restarter', conversationIdOf(page)),
      (found) => found[0]?.status === 'completed',
      { timeoutMs: UI_TIMEOUT_MS, what: 'the continued answer recorded in the conversation' },
    );
    expect(turns[0]?.text).toBe(view.text);
    await screenshot(page, 'chat-08-completed-after-restart');
  }, 120_000);
});
