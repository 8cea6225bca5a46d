import { describe, expect, it } from 'vitest';
import { RecentIds, ResumePoint, defaultResumeStorage, type ResumeStorage } from './resume.js';
import { MemoryStorage } from './testing/fakes.js';

describe('ResumePoint', () => {
  it('mirrors the id to the storage and reads it back in a new instance (a reload)', () => {
    const storage = new MemoryStorage();
    const point = new ResumePoint(storage, 'key');
    expect(point.get()).toBeNull();
    point.set('a-1');
    expect(storage.getItem('key')).toBe('a-1');
    expect(new ResumePoint(storage, 'key').get()).toBe('a-1');
    expect(new ResumePoint(storage, 'other').get()).toBeNull();
  });

  it('works from memory when there is no storage or it throws', () => {
    const broken: ResumeStorage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
      removeItem: () => undefined,
    };
    for (const storage of [null, broken]) {
      const point = new ResumePoint(storage, 'key');
      expect(point.get()).toBeNull();
      point.set('x');
      expect(point.get()).toBe('x');
    }
  });

  it('finds no sessionStorage in Node', () => {
    expect(defaultResumeStorage()).toBeNull();
  });
});

describe('RecentIds', () => {
  it('detects duplicates by equality only (ids are opaque)', () => {
    const recent = new RecentIds(10);
    expect(recent.add('10')).toBe(true);
    expect(recent.add('9')).toBe(true); // "out of order" means nothing to the client
    expect(recent.add('10')).toBe(false);
    expect(recent.add('010')).toBe(true);
  });

  it('forgets the oldest ids past its size', () => {
    const recent = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd']) recent.add(id);
    expect(recent.has('a')).toBe(false);
    expect(recent.has('b')).toBe(true);
    expect(recent.has('d')).toBe(true);
  });
});
