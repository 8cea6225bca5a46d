import { randomBytes } from 'node:crypto';
import { hashString } from './seeded-random.js';

/**
 * Job ids: `<kind>-<start ms, base 36>-<instance tag>-<random>`, e.g.
 * `gen-m3x9k2a1-4fz0qk-8h2kd93jf0a1` or `task-…`. Opaque to clients. The start time bounds where
 * the job's events can be in the log (ids are time-seeded), so any instance can find them; the
 * instance tag tells an instance which jobs it started itself.
 */
const PATTERN = /^(gen|task)-([0-9a-z]{1,11})-([0-9a-z]{6})-([0-9a-z]{12})$/;

/** The kinds of job, as their ids spell them. */
export type JobIdKind = 'gen' | 'task';

/** What a job id says about its job. */
export interface JobIdParts {
  startedAtMs: number;
  instanceTag: string;
}

/** A short, stable tag of an instance id (6 base-36 characters). */
export function instanceTagOf(instanceId: string): string {
  return hashString(instanceId).toString(36).padStart(7, '0').slice(-6);
}

/** A new job id of `kind`. */
export function newJobId(kind: JobIdKind, instanceTag: string, nowMs: number = Date.now()): string {
  const random = BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString(36)
    .padStart(13, '0')
    .slice(-12);
  return `${kind}-${Math.floor(nowMs).toString(36)}-${instanceTag}-${random}`;
}

/** Parts of a job id of `kind`; `undefined` when it is not one of ours. */
export function parseJobId(kind: JobIdKind, id: string): JobIdParts | undefined {
  const match = PATTERN.exec(id);
  if (!match || match[1] !== kind) return undefined;
  const startedAtMs = Number.parseInt(match[2] as string, 36);
  if (!Number.isSafeInteger(startedAtMs)) return undefined;
  return { startedAtMs, instanceTag: match[3] as string };
}

export const newGenerationId = (instanceTag: string, nowMs?: number): string => newJobId('gen', instanceTag, nowMs);
export const parseGenerationId = (id: string): JobIdParts | undefined => parseJobId('gen', id);
export const newTaskId = (instanceTag: string, nowMs?: number): string => newJobId('task', instanceTag, nowMs);
export const parseTaskId = (id: string): JobIdParts | undefined => parseJobId('task', id);
