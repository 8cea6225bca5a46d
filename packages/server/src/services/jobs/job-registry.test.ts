import { describe, expect, it } from 'vitest';
import { instanceTagOf, newGenerationId, newTaskId, parseGenerationId, parseTaskId } from '../../core/job-id.js';
import { JobRegistry, settleWithin } from './job-registry.js';

interface Job {
  id: string;
  userId: string;
  finishedAt?: number;
}

function registry(options: { singleInstance?: boolean; now?: () => number } = {}) {
  return new JobRegistry<Job>({
    instanceId: 'here',
    singleInstance: options.singleInstance ?? false,
    maxDurationMs: 10_000,
    parseId: parseGenerationId,
    noun: 'generation',
    now: options.now ?? Date.now,
  });
}

describe('job ids', () => {
  it('round-trip start time and instance tag, and never pass for the other kind', () => {
    const tag = instanceTagOf('instance-a');
    const generation = newGenerationId(tag, 1_700_000_000_123);
    const task = newTaskId(tag, 1_700_000_000_123);
    expect(parseGenerationId(generation)).toEqual({ startedAtMs: 1_700_000_000_123, instanceTag: tag });
    expect(parseTaskId(task)).toEqual({ startedAtMs: 1_700_000_000_123, instanceTag: tag });
    expect(parseTaskId(generation)).toBeUndefined();
    expect(parseGenerationId(task)).toBeUndefined();
    expect(parseGenerationId('gen-../../etc')).toBeUndefined();
    expect(newGenerationId(tag)).not.toBe(newGenerationId(tag));
  });
});

describe('JobRegistry', () => {
  it("answers not_found for another user's job, as for no job", () => {
    const jobs = registry();
    jobs.add({ id: 'gen-1', userId: 'u1' });
    expect(jobs.owned('u1', 'gen-1')?.userId).toBe('u1');
    expect(jobs.owned('u1', 'gen-2')).toBeUndefined();
    expect(() => jobs.owned('u2', 'gen-1')).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('tells orphans: its own, any in embedded mode, and others only past their time limit and a grace', () => {
    let now = Date.now();
    const jobs = registry({ now: () => now });
    const mine = newGenerationId(jobs.instanceTag, now);
    const theirs = newGenerationId(instanceTagOf('elsewhere'), now);
    expect(jobs.isOrphan(mine)).toBe(true);
    expect(jobs.isOrphan(theirs)).toBe(false);
    expect(registry({ singleInstance: true }).isOrphan(theirs)).toBe(true);
    now += 10_000 + 60_001;
    expect(jobs.isOrphan(theirs)).toBe(true);
    expect(jobs.isOrphan('not-an-id')).toBe(false);
  });

  it('runs one repair of a job at a time', async () => {
    const jobs = registry();
    let runs = 0;
    let finish: () => void = () => undefined;
    const first = jobs.repairOnce('gen-1', async () => {
      runs++;
      await new Promise<void>((resolve) => (finish = resolve));
    });
    await jobs.repairOnce('gen-1', async () => {
      runs++;
    });
    expect(runs).toBe(1);
    finish();
    await first;
    await jobs.repairOnce('gen-1', async () => {
      runs++;
    });
    expect(runs).toBe(2);
  });

  it('forgets finished jobs after ten minutes, never running ones', () => {
    let now = Date.now();
    const jobs = registry({ now: () => now });
    jobs.add({ id: 'done', userId: 'u1', finishedAt: now });
    jobs.add({ id: 'running', userId: 'u1' });
    now += 10 * 60_000 + 1;
    jobs.add({ id: 'new', userId: 'u1' });
    expect(jobs.all().map((job) => job.id)).toEqual(['running', 'new']);
  });

  it('settleWithin gives up after its wait and ignores rejections', async () => {
    await settleWithin(Promise.reject(new Error('x')), 1_000);
    // A job that never settles does not hold up a shutdown.
    await expect(settleWithin(new Promise(() => undefined), 20)).resolves.toBeUndefined();
  });
});
