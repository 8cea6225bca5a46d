/** Randomized tests replay exactly from their seed: the same PRNG the offline provider uses. */
export { seededRandom } from '../../src/core/seeded-random.js';

/** An integer in [min, max]. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
