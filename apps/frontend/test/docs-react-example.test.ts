import react from '@vitejs/plugin-react';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { build, defaultClientConditions } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../../../packages/server/test/helpers/server-process.js';
import {
  browserTestsEnabled,
  devToken,
  launchChromium,
  observeStream,
  publishNotification,
  REPO_ROOT,
  screenshot,
} from './helpers/e2e.js';

const enabled = browserTestsEnabled('docs-react-example');
const EXAMPLE = join(REPO_ROOT, 'docs', 'examples', 'react-app.tsx');
const USER = 'docs-react';

/**
 * docs/examples/react-app.tsx, the React example of docs/client-integration.md, built by Vite as
 * a page of its own, served by the real backend and run in Chromium: the badge goes live, a
 * published notification shows up, and "Write" streams a generation to its completed text.
 */
describe.skipIf(!enabled)('the docs React example in Chromium', () => {
  let browser: Browser;
  let server: ServerProcess;
  let dir = '';

  beforeAll(async () => {
    // Inside the repository, so the page resolves react and the workspace packages like the app does.
    mkdirSync(join(REPO_ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(REPO_ROOT, '.tmp', 'docs-react-'));
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><html><body><div id="root"></div><script type="module" src="./main.tsx"></script></body></html>',
    );
    // The page around the example: a dev token from the server it is served by.
    writeFileSync(
      join(dir, 'main.tsx'),
      `import { createRoot } from 'react-dom/client';
import { App } from ${JSON.stringify(EXAMPLE)};
const getToken = async () => {
  const response = await fetch('/api/auth/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: ${JSON.stringify(USER)} }),
  });
  return ((await response.json()) as { accessToken: string }).accessToken;
};
createRoot(document.getElementById('root')!).render(<App userId=${JSON.stringify(USER)} apiUrl="" getToken={getToken} />);
`,
    );
    await build({
      root: dir,
      configFile: false,
      mode: 'production',
      logLevel: 'silent',
      plugins: [react()],
      // The workspace packages' sources, like the app's own build.
      resolve: { conditions: ['@infinitescribe/source', ...defaultClientConditions] },
      build: { outDir: join(dir, 'dist'), emptyOutDir: true },
    });
    [browser, server] = await Promise.all([
      launchChromium(),
      startServerProcess({ STATIC_DIR: join(dir, 'dist'), AI_OFFLINE_TOKENS_PER_SECOND: '200' }),
    ]);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('goes live, shows a notification, and streams a generation to its completed text', async () => {
    const context = await browser.newContext();
    const errors: string[] = [];
    try {
      const page = await context.newPage();
      page.on('pageerror', (error) => errors.push(error.message));
      const observer = await observeStream(server.url, await devToken(server.url, USER));
      await page.goto(server.url);
      await page.getByRole('status').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });

      await publishNotification(server.url, USER, 'Hello from the docs');
      await page.getByRole('list', { name: 'notifications' }).getByText('Hello from the docs').waitFor();

      await page.getByRole('button', { name: 'Write' }).click();
      await page.waitForSelector('section[aria-label="draft"][data-status="completed"]', { timeout: 15_000 });
      const shown = await page.locator('section[aria-label="draft"] p').first().textContent();
      await screenshot(page, 'docs-react-example');
      observer.close();
      const completed = observer.events
        .filter((event) => event.event === 'ai.generation.completed')
        .map((event) => (JSON.parse(event.data) as { payload: { text: string } }).payload.text);
      expect(completed).toHaveLength(1);
      expect(shown).toBe(completed[0]);
      expect(shown?.trim().length).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
