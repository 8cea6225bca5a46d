import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

/** The `no-restricted-imports` messages lint gives `source` as if it were the file at `filePath`. */
async function restrictedImports(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? [])
    .filter((message) => message.ruleId === 'no-restricted-imports')
    .map((message) => message.message);
}

const SERVER = 'packages/server/src';

describe('lint keeps the server’s layers (core -> adapters -> services -> routes -> plugin)', () => {
  it.each([
    ['core', `${SERVER}/core/fixture.ts`, "import { EventPublisher } from '../services/events/event-publisher.js';"],
    ['core', `${SERVER}/core/fixture.ts`, "import { MemoryEventBus } from '../adapters/bus/memory-event-bus.js';"],
    [
      'adapters',
      `${SERVER}/adapters/bus/fixture.ts`,
      "import { TaskRunner } from '../../services/tasks/task-runner.js';",
    ],
    ['adapters', `${SERVER}/adapters/ai/fixture.ts`, "import { buildApp } from '../../plugin.js';"],
    ['services', `${SERVER}/services/sse/fixture.ts`, "import { streamRoutes } from '../../routes/sse-routes.js';"],
    ['routes', `${SERVER}/routes/fixture.ts`, "import { buildApp } from '../plugin.js';"],
    [
      'the package',
      `${SERVER}/services/tasks/fixture.ts`,
      "import { demoTask } from '../../../../../apps/backend/src/task-kinds/demo-task.js';",
    ],
    ['publisher', `${SERVER}/publisher/fixture.ts`, "import { AppError } from '../core/errors.js';"],
  ])('refuses an import that climbs out of %s (%s)', async (_layer, filePath, source) => {
    const messages = await restrictedImports(
      filePath,
      `${source}\nexport const used = [typeof ${source.match(/\{ (\w+)/)?.[1]}];\n`,
    );
    expect(messages).toHaveLength(1);
  });

  it.each([
    [`${SERVER}/adapters/bus/fixture.ts`, "import { AppError } from '../../core/errors.js';"],
    [`${SERVER}/services/sse/fixture.ts`, "import { MemoryEventBus } from '../../adapters/bus/memory-event-bus.js';"],
    [`${SERVER}/routes/fixture.ts`, "import { EventPublisher } from '../services/events/event-publisher.js';"],
    [`${SERVER}/plugin-fixture.ts`, "import { streamRoutes } from './routes/sse-routes.js';"],
    [`${SERVER}/publisher/fixture.ts`, "import { PublishError } from './publish-error.js';"],
  ])('allows an import of the same layer or below (%s)', async (filePath, source) => {
    const messages = await restrictedImports(
      filePath,
      `${source}\nexport const used = [typeof ${source.match(/\{ (\w+)/)?.[1]}];\n`,
    );
    expect(messages).toEqual([]);
  });
});
