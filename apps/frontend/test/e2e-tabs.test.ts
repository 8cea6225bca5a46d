/**
 * End to end: seven tabs on one origin all receive events over one shared stream. Browsers allow
 * six HTTP/1.1 connections per origin; with a stream per tab the seventh tab would hang. The
 * client elects one leader tab (Web Locks) that relays events to the others (BroadcastChannel),
 * and another tab takes over when the leader closes.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../../../packages/server/test/helpers/server-process.js';
import {
  browserTestsEnabled,
  ensureFrontendBuilt,
  launchChromium,
  publishNotification,
  screenshot,
  waitUntil,
} from './helpers/e2e.js';

const enabled = browserTestsEnabled('e2e-tabs');
const UI_TIMEOUT_MS = 15_000;
const TABS = 7;
const USER = 'septimus';

describe.skipIf(!enabled)('seven tabs in Chromium', () => {
  let browser: Browser | undefined;
  let server: ServerProcess | undefined;
  let context: BrowserContext | undefined;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await ensureFrontendBuilt();
    const [launched, started] = await Promise.allSettled([
      launchChromium(),
      startServerProcess({ HEARTBEAT_MS: '2000', RETRY_MS: '500' }),
    ]);
    if (launched.status === 'fulfilled') browser = launched.value;
    if (started.status === 'fulfilled') server = started.value;
    for (const outcome of [launched, started]) if (outcome.status === 'rejected') throw outcome.reason;
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
  }, 30_000);

  /** A new tab of the shared context, signed in through the form (the token is per tab). */
  async function openTab(url: string, index: number): Promise<Page> {
    if (!context) throw new Error('no browser context');
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('pageerror', (error) => pageErrors.push(`tab ${index}: ${error.message}`));
    await page.goto(url);
    await page.getByTestId('sign-in-name').fill(USER);
    await page.getByTestId('sign-in-submit').click();
    await page.waitForSelector('[data-testid="connection-badge"][data-state="open"]');
    return page;
  }

  async function activeStreams(url: string): Promise<number> {
    const text = await (await fetch(new URL('/metrics', url))).text();
    const match = /^sse_connections_active (\d+)/m.exec(text);
    return Number(match?.[1] ?? Number.NaN);
  }

  const toast = (page: Page, title: string) =>
    page.getByTestId('toast').filter({ hasText: title }).waitFor({ timeout: UI_TIMEOUT_MS });

  it('seven tabs on one origin all receive events, over one stream; a closed leader is replaced', async () => {
    if (!browser || !server) throw new Error('not started');
    const { url } = server;
    context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const pages: Page[] = [];
    for (let index = 0; index < TABS; index++) pages.push(await openTab(url, index));
    expect(
      await waitUntil(
        () => activeStreams(url),
        (count) => count === 1,
        { timeoutMs: 5_000, what: 'one stream' },
      ),
    ).toBe(1);

    await publishNotification(url, USER, 'Hello, seven tabs');
    await Promise.all(pages.map((page) => toast(page, 'Hello, seven tabs')));
    await screenshot(pages[TABS - 1] as Page, 'tabs-01-seventh-tab');
    expect(await activeStreams(url)).toBe(1);

    // Close the leader (the first tab took the lock): another tab connects and relays.
    await pages.shift()?.close();
    await waitUntil(
      () => activeStreams(url),
      (count) => count === 1,
      { timeoutMs: 10_000, what: 'one stream again' },
    );
    await Promise.all(pages.map((page) => page.waitForSelector('[data-testid="connection-badge"][data-state="open"]')));
    await publishNotification(url, USER, 'After the leader left');
    await Promise.all(pages.map((page) => toast(page, 'After the leader left')));
    expect(await activeStreams(url)).toBe(1);
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
