import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { IdempotencyClaim, IdempotencyRetention, IdempotencyStore } from './idempotency-store.js';

/** How a contract run gets a fresh store. */
export interface IdempotencyStoreFactory {
  create(retention?: IdempotencyRetention): Promise<IdempotencyStore>;
  /**
   * Whether stores made by `create` share their keys, as the instances of one cluster do (Redis).
   * If not (in-process), "another instance" is the same store.
   */
  sharedAcrossStores: boolean;
}

const ANSWER = { status: 202, body: '{"id":"1780000000000000"}' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The behaviour every IdempotencyStore adapter must show (memory, Redis). */
export function describeIdempotencyStoreContract(name: string, factory: IdempotencyStoreFactory): void {
  describe(`IdempotencyStore contract: ${name}`, () => {
    const open: IdempotencyStore[] = [];
    const store = async (retention?: IdempotencyRetention) => {
      const created = await factory.create(retention);
      open.push(created);
      return created;
    };
    const peers = async (count: number) => {
      const first = await store();
      const others = await Promise.all(
        Array.from({ length: count - 1 }, () => (factory.sharedAcrossStores ? store() : first)),
      );
      return [first, ...others];
    };
    /** Keys may be shared by a factory's stores: each test uses fresh ones. */
    const freshKey = () => `key-${randomBytes(6).toString('hex')}`;
    const claimOf = async (target: IdempotencyStore, key: string, fingerprint = 'f1'): Promise<IdempotencyClaim> => {
      const outcome = await target.begin(key, fingerprint);
      if (outcome.kind !== 'claimed') throw new Error(`expected a claim, got ${outcome.kind}`);
      return outcome.claim;
    };

    afterEach(async () => {
      await Promise.all(open.splice(0).map((created) => created.close()));
    });

    it('claims a free key, then tells duplicates it is in flight, then replays the answer', async () => {
      const idempotency = await store();
      const key = freshKey();
      const claim = await claimOf(idempotency, key);
      expect(claim.key).toBe(key);
      expect(await idempotency.begin(key, 'f1')).toEqual({ kind: 'in_flight' });
      await idempotency.complete(claim, ANSWER);
      expect(await idempotency.begin(key, 'f1')).toEqual({ kind: 'answered', answer: ANSWER });
      expect(await idempotency.begin(key, 'f1')).toEqual({ kind: 'answered', answer: ANSWER });
    });

    it('refuses the key with another body, running or answered', async () => {
      const idempotency = await store();
      const key = freshKey();
      const claim = await claimOf(idempotency, key);
      expect(await idempotency.begin(key, 'f2')).toEqual({ kind: 'reused' });
      await idempotency.complete(claim, ANSWER);
      expect(await idempotency.begin(key, 'f2')).toEqual({ kind: 'reused' });
    });

    it('frees a released key, so a retry runs again (with any body)', async () => {
      const idempotency = await store();
      const key = freshKey();
      await idempotency.release(await claimOf(idempotency, key));
      const again = await claimOf(idempotency, key, 'f2');
      await idempotency.complete(again, ANSWER);
      expect(await idempotency.begin(key, 'f2')).toEqual({ kind: 'answered', answer: ANSWER });
    });

    it('keeps keys apart', async () => {
      const idempotency = await store();
      const [first, second] = [freshKey(), freshKey()];
      await idempotency.complete(await claimOf(idempotency, first), ANSWER);
      expect((await idempotency.begin(second, 'f1')).kind).toBe('claimed');
    });

    it('lets exactly one of many racing requests claim a key, across stores', async () => {
      const [a, b, c] = (await peers(3)) as [IdempotencyStore, IdempotencyStore, IdempotencyStore];
      const key = freshKey();
      const outcomes = await Promise.all([a, b, c, a, b, c].map((target) => target.begin(key, 'f1')));
      expect(outcomes.filter((outcome) => outcome.kind === 'claimed')).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome.kind === 'in_flight')).toHaveLength(5);
    });

    it('shares answers between the stores of one deployment', async () => {
      const [a, b] = (await peers(2)) as [IdempotencyStore, IdempotencyStore];
      const key = freshKey();
      await a.complete(await claimOf(a, key), ANSWER);
      expect(await b.begin(key, 'f1')).toEqual({ kind: 'answered', answer: ANSWER });
    });

    it('lets a claim lapse (its holder died), and the lapsed holder can no longer answer or release', async () => {
      const idempotency = await store({ claimTtlMs: 100 });
      const key = freshKey();
      const lapsed = await claimOf(idempotency, key);
      await sleep(200);
      const current = await claimOf(idempotency, key, 'f2');
      await idempotency.complete(lapsed, { status: 201, body: '{"id":"stale"}' });
      await idempotency.release(lapsed);
      expect(await idempotency.begin(key, 'f2')).toEqual({ kind: 'in_flight' });
      await idempotency.complete(current, ANSWER);
      expect(await idempotency.begin(key, 'f2')).toEqual({ kind: 'answered', answer: ANSWER });
    });

    it('forgets answers after the answer TTL', async () => {
      const idempotency = await store({ answerTtlMs: 150 });
      const key = freshKey();
      await idempotency.complete(await claimOf(idempotency, key), ANSWER);
      expect((await idempotency.begin(key, 'f1')).kind).toBe('answered');
      await sleep(250);
      expect((await idempotency.begin(key, 'f2')).kind).toBe('claimed');
    });
  });
}
