import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idFloorAt } from '../../src/core/event-id.js';
import type { EventRecord } from '../../src/core/event-record.js';
import { PgliteEventStore } from '../../src/adapters/store/pglite-event-store.js';
import { startTestApp, type TestApp } from './test-app.js';

/** An event a dead process left in the store: topic, type, payload. */
export type LeftEvent = [topic: string, type: EventRecord['type'], payload: unknown];

/**
 * Servers that restart on the same PGlite data folder, as one process after another; call
 * `cleanup()` after each test. Shared by the generation and task restart tests.
 */
export function restartFixture() {
  const dirs: string[] = [];
  const servers = new Set<TestApp>();
  return {
    /** A fresh data folder, removed by `cleanup()`. */
    async dataDir(prefix: string): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    /** A server process-alike on `dir`. */
    async start(dir: string, env: Record<string, string> = {}): Promise<TestApp> {
      const server = await startTestApp(env, { store: new PgliteEventStore({ dataDir: dir }) });
      servers.add(server);
      return server;
    },
    /** Stops `server` cleanly (SIGTERM-like: its shutdown hooks run). */
    async stop(server: TestApp): Promise<void> {
      servers.delete(server);
      await server.close();
    },
    /** Writes into `dir` what a process that died left (critical, ids from `startedAt`), as its store would hold it. */
    async leaveBehind(dir: string, startedAt: number, events: readonly LeftEvent[]): Promise<void> {
      const store = new PgliteEventStore({ dataDir: dir });
      await store.init();
      let id = idFloorAt(startedAt);
      for (const [topic, type, payload] of events) {
        await store.append({ id: ++id, topic, type, ts: new Date(startedAt).toISOString(), payload, critical: true });
      }
      await store.close();
    },
    async cleanup(): Promise<void> {
      await Promise.allSettled([...servers].map((server) => server.close()));
      servers.clear();
      await Promise.allSettled(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
