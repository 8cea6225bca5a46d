import { describe, expect, it } from 'vitest';
import { createEventStore } from './create-event-store.js';

describe('createEventStore', () => {
  it('picks PostgreSQL when a database URL is set', async () => {
    const store = createEventStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/test', dataDir: '/unused' });
    expect(store.kind).toBe('postgres');
    await store.close();
  });

  it('picks embedded PGlite when the URL is unset or empty', async () => {
    for (const databaseUrl of [undefined, '']) {
      const store = createEventStore({ databaseUrl, dataDir: '/unused' });
      expect(store.kind).toBe('pglite');
      await store.close(); // never initialised: nothing opened, nothing created on disk
    }
  });
});
