import { newGenerationId, parseGenerationId, type GenerationIdParts } from '../ai/generation-id.js';

/**
 * Task ids have the parts of generation ids (start time, instance tag, random) behind a `task-`
 * prefix, e.g. `task-m3x9k2a1-4fz0qk-8h2kd93jf0a1`, so generation-id.ts does the work: the start
 * time bounds where a task's events are in the log, the tag tells an instance its own tasks.
 */
const TASK_PREFIX = 'task-';
const GENERATION_PREFIX = 'gen-';

/** A new task id. */
export function newTaskId(instanceTag: string, nowMs: number = Date.now()): string {
  return TASK_PREFIX + newGenerationId(instanceTag, nowMs).slice(GENERATION_PREFIX.length);
}

/** Parts of a task id; `undefined` when it is not one of ours. */
export function parseTaskId(id: string): GenerationIdParts | undefined {
  if (!id.startsWith(TASK_PREFIX)) return undefined;
  return parseGenerationId(GENERATION_PREFIX + id.slice(TASK_PREFIX.length));
}
