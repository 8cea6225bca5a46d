import { randomBytes } from 'node:crypto';
import { hashString } from './seeded-random.js';

/**
 * Generation ids: `gen-<start ms, base 36>-<instance tag>-<random>`, e.g.
 * `gen-m3x9k2a1-4fz0qk-8h2kd93jf0a1`. Opaque to clients. The start time bounds where the
 * generation's events can be in the log (ids are time-seeded), so any instance can find them; the
 * instance tag tells an instance which generations it started itself.
 */
const PATTERN = /^gen-([0-9a-z]{1,11})-([0-9a-z]{6})-([0-9a-z]{12})$/;

/** What a generation id says about its generation. */
export interface GenerationIdParts {
  startedAtMs: number;
  instanceTag: string;
}

/** A short, stable tag of an instance id (6 base-36 characters). */
export function instanceTagOf(instanceId: string): string {
  return hashString(instanceId).toString(36).padStart(7, '0').slice(-6);
}

/** A new generation id. */
export function newGenerationId(instanceTag: string, nowMs: number = Date.now()): string {
  const random = BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString(36)
    .padStart(13, '0')
    .slice(-12);
  return `gen-${Math.floor(nowMs).toString(36)}-${instanceTag}-${random}`;
}

/** Parts of a generation id; `undefined` when it is not one of ours. */
export function parseGenerationId(id: string): GenerationIdParts | undefined {
  const match = PATTERN.exec(id);
  if (!match) return undefined;
  const startedAtMs = Number.parseInt(match[1] as string, 36);
  if (!Number.isSafeInteger(startedAtMs)) return undefined;
  return { startedAtMs, instanceTag: match[2] as string };
}
