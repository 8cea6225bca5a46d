import { lstat, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserTestsEnabled, ensureFrontendBuilt, launchChromium } from '../../../apps/frontend/test/helpers/e2e.js';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { spawnTracked, waitForOutput, type TrackedChild } from './helpers/child-process.js';
import { replayRuntimeStage } from './helpers/dockerfile.js';
import {
  compileWorkspace,
  createConsumerProject,
  packPackages,
  REPO_ROOT,
  run,
  type ConsumerProject,
  type PackedPackage,
} from './helpers/packed-packages.js';

/**
 * The packages as a user installs them (issue: nothing could be installed). Compiled and packed
 * with npm, installed from the tarballs into a project in a temporary folder outside the
 * repository (see helpers/packed-packages.ts), and used there the way the package READMEs say:
 * plain Node imports every entry point, tsc checks a TypeScript consumer against the shipped
 * .d.ts, Vite builds a page with the React hooks, and a Fastify app with the plugin streams a
 * custom event to the client package and to that page in Chromium.
 */

const VERSION = '0.2.0';
const SECRET = 'consumer-secret-0123456789-0123456789';
const browserEnabled = browserTestsEnabled('packaging (the React page)');

let packDir = '';
let packed: PackedPackage[] = [];
let consumer: ConsumerProject;
/** What `tsc -p` printed in the consumer project, and how it exited. */
let typecheck: { code: number; output: string };

beforeAll(async () => {
  await compileWorkspace();
  packDir = await mkdtemp(path.join(os.tmpdir(), 'infinitescribe-pack-'));
  packed = await packPackages(packDir);
  consumer = await createConsumerProject(packed);
  typecheck = await run(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
    cwd: consumer.dir,
  }).then(
    ({ stdout }) => ({ code: 0, output: stdout }),
    (error: Error) => ({ code: 1, output: error.message }),
  );
}, 600_000);

afterAll(async () => {
  if (packDir) await rm(packDir, { recursive: true, force: true });
  if (consumer) await rm(consumer.dir, { recursive: true, force: true });
});

/** `node_modules/<name>` of the consumer project. */
const installed = (name: string) => path.join(consumer.dir, 'node_modules', name);

async function manifestOf(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(installed(name), 'package.json'), 'utf8')) as Record<string, unknown>;
}

/** The import paths of a package's `exports`, e.g. `@infinitescribe/react/testing`. */
async function entryPointsOf(name: string): Promise<string[]> {
  const exports = (await manifestOf(name)).exports as Record<string, unknown>;
  return Object.keys(exports)
    .filter((subpath) => subpath !== './package.json')
    .map((subpath) => (subpath === '.' ? name : `${name}/${subpath.slice(2)}`));
}

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('npm pack', () => {
  it('packs the four packages at one version', () => {
    expect(packed.map((entry) => [entry.name, entry.version])).toEqual([
      ['@infinitescribe/protocol', VERSION],
      ['@infinitescribe/client', VERSION],
      ['@infinitescribe/react', VERSION],
      ['@infinitescribe/server', VERSION],
    ]);
  });

  it('ships compiled JavaScript with its .d.ts, README, CHANGELOG and LICENSE, and no sources, tests or tooling', async () => {
    const license = await readFile(path.join(REPO_ROOT, 'LICENSE'), 'utf8');
    for (const entry of packed) {
      expect(entry.files, entry.name).toEqual(
        expect.arrayContaining([
          'package.json',
          'README.md',
          'CHANGELOG.md',
          'LICENSE',
          'dist/index.js',
          'dist/index.d.ts',
        ]),
      );
      const stray = entry.files.filter(
        (file) =>
          !/^(package\.json|README\.md|CHANGELOG\.md|LICENSE)$/.test(file) &&
          !/^dist\/.+\.(js|d\.ts|sql|txt)$/.test(file),
      );
      expect(stray, entry.name).toEqual([]);
      // The repository's test tooling: the client's harness and fakes, the fake model servers.
      const tooling = /\.test\.|\.contract\.|testing\/(harness|fakes|fake-network)\.|ai\/testing\/|tsbuildinfo/;
      expect(entry.files.filter((file) => tooling.test(file))).toEqual([]);
      // Every JavaScript module has its declarations.
      const modules = entry.files.filter((file) => file.endsWith('.js'));
      expect(modules.filter((file) => !entry.files.includes(file.replace(/\.js$/, '.d.ts')))).toEqual([]);
      expect(await readFile(path.join(installed(entry.name), 'LICENSE'), 'utf8')).toBe(license);
    }
  });

  it('ships the server files it reads at run time: the SQL migrations and the offline corpus', async () => {
    const server = packed.find((entry) => entry.name === '@infinitescribe/server');
    const sources = path.join(REPO_ROOT, 'packages/server/src');
    const runtimeFiles = (await filesUnder(sources)).filter((file) => !/\.tsx?$/.test(file));
    expect(runtimeFiles).toContain('adapters/ai/offline-corpus.txt');
    expect(runtimeFiles.filter((file) => file.endsWith('.sql')).length).toBeGreaterThanOrEqual(3);
    expect(server?.files).toEqual(expect.arrayContaining(runtimeFiles.map((file) => `dist/${file}`)));
  });

  it('declares what a user installs: ESM, Node >= 22.12, React and Fastify as peers, siblings at this version', async () => {
    for (const entry of packed) {
      const manifest = await manifestOf(entry.name);
      expect(manifest, entry.name).toMatchObject({ type: 'module', engines: { node: '>=22.12' }, license: 'MIT' });
      expect(manifest.private, entry.name).toBeUndefined();
      const dependencies = (manifest.dependencies ?? {}) as Record<string, string>;
      for (const [name, range] of Object.entries(dependencies)) {
        if (name.startsWith('@infinitescribe/')) expect(range, `${entry.name} -> ${name}`).toBe(`^${VERSION}`);
      }
      expect(dependencies.react, entry.name).toBeUndefined();
      expect(dependencies.fastify, entry.name).toBeUndefined();
    }
    expect((await manifestOf('@infinitescribe/react')).peerDependencies).toMatchObject({ react: '>=18' });
    expect((await manifestOf('@infinitescribe/server')).peerDependencies).toMatchObject({ fastify: '^5.0.0' });
  });

  it('installs from the tarballs: real folders, no links into the repository', async () => {
    const lock = JSON.parse(await readFile(path.join(consumer.dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string; link?: boolean }>;
    };
    for (const entry of packed) {
      expect((await lstat(installed(entry.name))).isSymbolicLink(), entry.name).toBe(false);
      expect(lock.packages[`node_modules/${entry.name}`]?.resolved, entry.name).toMatch(/^file:.*\.tgz$/);
    }
    expect(Object.values(lock.packages).filter((node) => node.link)).toEqual([]);
  });
});

describe('installed in a project of its own', () => {
  it('imports every entry point from plain Node, from the compiled dist/ (and the browser entries without zod)', async () => {
    const entryPoints = (await Promise.all(packed.map((entry) => entryPointsOf(entry.name)))).flat();
    expect(entryPoints).toEqual(
      expect.arrayContaining([
        '@infinitescribe/protocol',
        '@infinitescribe/protocol/schemas',
        '@infinitescribe/client',
        '@infinitescribe/react',
        '@infinitescribe/react/testing',
        '@infinitescribe/react/chat',
        '@infinitescribe/server',
      ]),
    );
    // One process per entry point, recording every module Node resolves on the way.
    const script = `
      import { registerHooks } from 'node:module';
      const urls = [];
      registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); urls.push(result.url); return result; } });
      const loaded = await import(process.argv[1]);
      console.log(JSON.stringify({ exports: Object.keys(loaded), urls }));`;
    for (const entryPoint of entryPoints) {
      const { stdout } = await run(process.execPath, ['--input-type=module', '--eval', script, entryPoint], {
        cwd: consumer.dir,
      });
      const { exports, urls } = JSON.parse(stdout) as { exports: string[]; urls: string[] };
      expect(exports.length, entryPoint).toBeGreaterThan(0);
      const ours = urls.filter((url) => url.includes('/@infinitescribe/'));
      expect(ours.length, entryPoint).toBeGreaterThan(0);
      expect(
        ours.filter((url) => !/\/node_modules\/@infinitescribe\/[a-z]+\/dist\/.+\.js$/.test(url)),
        entryPoint,
      ).toEqual([]);
      const zod = urls.some((url) => url.includes('/node_modules/zod/'));
      if (/^@infinitescribe\/(protocol|client|react)(\/testing|\/chat)?$/.test(entryPoint))
        expect(zod, entryPoint).toBe(false);
      if (entryPoint === '@infinitescribe/protocol/schemas') expect(zod, entryPoint).toBe(true);
    }
  });

  it('type-checks a TypeScript consumer against the shipped .d.ts: the README examples and expected errors', async () => {
    expect(consumer.examples.map((example) => example.path).sort()).toEqual([
      'src/listen.ts',
      'src/protocol.ts',
      'src/publish.ts',
      'src/server.ts',
      'web/app.tsx',
    ]);
    const checks = await readFile(path.join(consumer.dir, 'src/type-checks.ts'), 'utf8');
    expect(checks.match(/@ts-expect-error/g)?.length).toBeGreaterThanOrEqual(12);
    expect(typecheck).toEqual({ code: 0, output: '' });
  });

  it('runs the protocol README example', async () => {
    const { stdout } = await run(process.execPath, ['out/src/protocol.js'], { cwd: consumer.dir });
    expect(stdout.trim().split('\n')).toEqual(['user:u1 true false', 'true true', 'false']);
  });

  describe('a Fastify app with realtimePlugin (the server README), run by plain Node', () => {
    const processes: TrackedChild[] = [];
    let browser: Browser | undefined;
    let url = '';
    let webDir = '';

    /** Starts one of the consumer's compiled files. */
    const start = (file: string, env: Record<string, string>) => {
      const child = spawnTracked(process.execPath, [file], {
        cwd: consumer.dir,
        env: { PATH: process.env.PATH ?? '', ...env },
      });
      processes.push(child);
      return child;
    };

    beforeAll(async () => {
      const server = start('out/src/server.js', {
        JWT_SECRET: SECRET,
        DATA_DIR: path.join(consumer.dir, 'data'),
        PORT: '0',
      });
      url = (await waitForOutput(server, /listening on (http:\/\/\S+)/, 60_000))[1] ?? '';
    }, 90_000);

    afterAll(async () => {
      await browser?.close();
      await Promise.all(processes.map((child) => child.stop('SIGTERM')));
    });

    it('streams a custom event to the client package, published in-process and with the publisher SDK', async () => {
      const reader = start('out/src/listen.js', {
        REALTIME_URL: url,
        USER_TOKEN: await signDevToken(SECRET, { userId: 'reader', topics: ['doc:42'], expiresIn: 3600 }),
      });
      await waitForOutput(reader, /^connected$/m, 30_000);

      const inProcess = await fetch(`${url}/comments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ docId: '42', text: 'From the app' }),
      });
      expect(inProcess.status).toBe(200);
      expect(await inProcess.json()).toEqual({ id: expect.any(String) });

      const serviceToken = await signDevToken(SECRET, {
        userId: 'service:comments',
        scope: 'events:publish events:service',
        expiresIn: 3600,
      });
      const { stdout } = await run(process.execPath, ['out/src/publish.js'], {
        cwd: consumer.dir,
        env: { PATH: process.env.PATH ?? '', REALTIME_URL: url, SERVICE_TOKEN: serviceToken },
      });
      expect(stdout).toMatch(/^published \d+\n$/);

      await waitForOutput(reader, /: Hi$/m, 15_000);
      // Each event once, in publish order (a reconnect, were there one, would say `connected` again).
      expect(
        reader
          .output()
          .trim()
          .split('\n')
          .filter((line) => line !== 'connected'),
      ).toEqual(['doc:42 comment.added: From the app', 'doc:42 comment.added: Hi']);
    });

    it.skipIf(!browserEnabled)(
      'builds a Vite page with the React hooks (the react README) that streams the event in Chromium',
      async () => {
        webDir = path.join(consumer.dir, 'web');
        await build({
          root: webDir,
          base: '/app/',
          configFile: false,
          logLevel: 'silent',
          mode: 'production',
          build: { outDir: path.join(webDir, 'dist'), emptyOutDir: true },
        });
        const built = await filesUnder(path.join(webDir, 'dist'));
        expect(built).toContain('index.html');

        browser = await launchChromium();
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (error) => errors.push(error.message));
        // The page comes from the build, on the server's origin; everything else goes to the server.
        await page.route(`${url}/app/**`, (route) =>
          route.fulfill({
            path: path.join(webDir, 'dist', new URL(route.request().url()).pathname.slice(5) || 'index.html'),
          }),
        );
        const token = await signDevToken(SECRET, { userId: 'page-reader', topics: ['doc:42'], expiresIn: 3600 });
        await page.addInitScript((value) => {
          (globalThis as unknown as { REALTIME_TOKEN: string }).REALTIME_TOKEN = value;
        }, token);
        await page.goto(`${url}/app/index.html`);
        await page.locator('.state', { hasText: 'open' }).waitFor({ timeout: 30_000 });

        await fetch(`${url}/comments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ docId: '42', text: 'Shown by the hook' }),
        });
        await page.locator('li', { hasText: 'Shown by the hook' }).waitFor({ timeout: 15_000 });
        expect(errors).toEqual([]);
      },
      120_000,
    );
  });
});

/** Dev tools that must not reach the production image. */
const DEV_TOOLS = ['typescript', 'tsx', 'eslint', 'prettier', 'vitest', 'vite', 'jsdom', 'playwright-core', 'react'];

describe('the production image: the Dockerfile runtime stage, replayed without Docker', () => {
  let imageDir = '';
  let server: TrackedChild | undefined;

  beforeAll(async () => {
    await ensureFrontendBuilt();
    imageDir = await mkdtemp(path.join(os.tmpdir(), 'infinitescribe-image-'));
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGTERM');
    if (imageDir) await rm(imageDir, { recursive: true, force: true });
  });

  it('runs the compiled server on production dependencies only, and serves the API and the UI', async () => {
    const image = await replayRuntimeStage(path.join(imageDir, 'app'));
    const app = path.join(imageDir, 'app');
    const modules = await readdir(path.join(app, 'node_modules'));
    expect(modules.filter((name) => DEV_TOOLS.includes(name))).toEqual([]);
    expect(modules).toEqual(expect.arrayContaining(['fastify', '@electric-sql', '@infinitescribe']));
    const sizeMiB = (await du(path.join(app, 'node_modules'))) / 1024 / 1024;
    console.log(`production image: node_modules ${sizeMiB.toFixed(1)} MiB (${modules.length} top-level entries)`);

    const [command = '', ...args] = image.command;
    expect(command).toBe('node');
    server = spawnTracked(process.execPath, args, {
      cwd: app,
      env: {
        PATH: process.env.PATH ?? '',
        ...image.env,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: path.join(imageDir, 'data'),
        JWT_SECRET: SECRET,
      },
    });
    const url = (await waitForOutput(server, /READY (http:\/\/\S+)/, 60_000))[1] ?? '';
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
  }, 180_000);
});

/** Bytes of the files under `dir` (what `du --apparent-size` counts). */
async function du(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await lstat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}
