import { describe, expect, it } from 'vitest';
import { newConnectionId } from './connection-id.js';

describe('newConnectionId', () => {
  it('is a version-4 UUID, a different one every time', () => {
    const ids = Array.from({ length: 1_000 }, () => newConnectionId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
