import { join } from 'node:path';
import { build, defaultClientConditions, type Rollup } from 'vite';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/e2e.js';

/** The modules a production build of `entries` pulls in (React left out, as an app provides it). */
async function bundledModules(entries: Record<string, string>): Promise<string[]> {
  const output = (await build({
    configFile: false,
    logLevel: 'silent',
    resolve: { conditions: ['@infinitescribe/source', ...defaultClientConditions] },
    build: {
      write: false,
      minify: false,
      lib: { entry: entries, formats: ['es'] },
      rollupOptions: { external: [/^react($|\/)/, /^react-dom($|\/)/] },
    },
  })) as Rollup.RollupOutput[];
  return output.flatMap(({ output: chunks }) =>
    chunks.flatMap((chunk) => (chunk.type === 'chunk' ? Object.keys(chunk.modules) : [])),
  );
}

describe('what a browser loads', () => {
  it('the protocol entry, the client, the React bindings and the chat transport carry no zod (the schemas are behind ./schemas)', async () => {
    const modules = await bundledModules({
      protocol: join(REPO_ROOT, 'packages/protocol/src/index.ts'),
      client: join(REPO_ROOT, 'packages/client/src/index.ts'),
      react: join(REPO_ROOT, 'packages/react/src/index.ts'),
      // The chat transport only types itself with `ai`: nothing of the AI SDK (or its zod) is bundled.
      chat: join(REPO_ROOT, 'packages/react/src/chat/index.ts'),
    });
    expect(modules.some((id) => id.includes('packages/client/src/generation-store.ts'))).toBe(true);
    expect(modules.some((id) => id.includes('packages/react/src/chat/generation-chat-transport.ts'))).toBe(true);
    expect(modules.filter((id) => /[\\/]node_modules[\\/]ai[\\/]/.test(id))).toEqual([]);
    expect(modules.filter((id) => /[\\/]zod[\\/]/.test(id))).toEqual([]);
  });

  it('the schemas entry does carry zod (so the check above can fail)', async () => {
    const modules = await bundledModules({ schemas: join(REPO_ROOT, 'packages/protocol/src/schemas.ts') });
    expect(modules.some((id) => /[\\/]zod[\\/]/.test(id))).toBe(true);
  });
});
