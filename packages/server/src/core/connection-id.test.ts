import { describe, expect, it } from 'vitest';
import { newConnectionId } from './connection-id.js';

describe('newConnectionId', () => {
  it('is a version-4 UUID, a different one every time', () => {
    const ids = Array.from({ length: 1_000 }, () => newConnectionId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('uses every hex digit in every free position across pool refills (random, not a counter)', () => {
    // 2,000 ids span several fills of the pool; each of the 30 random digits takes all 16 values.
    const ids = Array.from({ length: 2_000 }, () => newConnectionId().replaceAll('-', ''));
    for (let position = 0; position < 32; position++) {
      if (position === 12 || position === 16) continue; // version, and variant (8, 9, a or b)
      expect(new Set(ids.map((id) => id[position])).size, `digit ${position}`).toBe(16);
    }
    expect(new Set(ids.map((id) => id[16]))).toEqual(new Set(['8', '9', 'a', 'b']));
  });
});
