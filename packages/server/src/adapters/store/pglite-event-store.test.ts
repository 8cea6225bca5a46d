import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeEventStoreContract, storedEvent } from './event-store.contract.js';
import { PgliteEventStore } from './pglite-event-store.js';
import { describeConversationStoreContract } from './conversation-store.contract.js';

describeEventStoreContract('PGlite (in memory)', {
  create: async () => {
    const store = new PgliteEventStore();
    await store.init();
    return store;
  },
});

describeConversationStoreContract('PGlite (in memory)', {
  create: async () => {
    const store = new PgliteEventStore();
    await store.init();
    return store;
  },
});

describe('PgliteEventStore in memory', () => {
  it('starts every store migrated and empty, from the first store’s migrated files, whatever that one wrote since', async () => {
    const first = new PgliteEventStore();
    await first.init();
    const second = new PgliteEventStore();
    try {
      await first.append(storedEvent(1_800_000_000_000_001));
      await first.recordHeadId(1_800_000_000_000_002);
      await second.init();
      expect(await second.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([]);
      expect(await second.takeRecordedHeadId()).toBeUndefined();
      expect(await second.maxId()).toBe(0);
      // Each its own database: writes to one never show in the other.
      await second.append(storedEvent(1_800_000_000_000_005, { payload: { text: 'second' } }));
      expect(await first.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([
        storedEvent(1_800_000_000_000_001),
      ]);
      expect(await second.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([
        storedEvent(1_800_000_000_000_005, { payload: { text: 'second' } }),
      ]);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});

describe('PgliteEventStore on disk', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pglite-store-'));
    dirs.push(dir);
    return dir;
  };

  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('persists events, migrations and the recorded head across close and reopen', async () => {
    // A nested, not-yet-existing folder: the store must create it.
    const dataDir = path.join(tempDir(), 'nested', 'pglite');
    const first = new PgliteEventStore({ dataDir });
    await first.init();
    await first.append(storedEvent(1_800_000_000_000_001, { payload: { text: 'persisted ✓' } }));
    await first.recordHeadId(1_800_000_000_000_002);
    await first.close();
    expect(fs.existsSync(dataDir)).toBe(true);

    const second = new PgliteEventStore({ dataDir });
    await second.init(); // migrations already recorded: must be a no-op, not "relation exists"
    try {
      expect(await second.readAfter({ topics: ['task:1'], after: 0, limit: 10 })).toEqual([
        storedEvent(1_800_000_000_000_001, { payload: { text: 'persisted ✓' } }),
      ]);
      expect(await second.takeRecordedHeadId()).toBe(1_800_000_000_000_002);
    } finally {
      await second.close();
    }
  });

  it('refuses operations before init() and reports down until then', async () => {
    const store = new PgliteEventStore();
    try {
      await expect(store.maxId()).rejects.toThrow(/init\(\)/);
      expect(await store.health()).toMatchObject({ status: 'down', detail: expect.stringMatching(/not initialised/) });
      await store.init();
      expect(await store.health()).toEqual({ status: 'up' });
    } finally {
      await store.close();
    }
  });
});
