import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { defineTaskKind, TaskError } from '@infinitescribe/server';

/** Bounds of the demo's input. */
export const DEMO_MAX_STAGES = 20;
export const DEMO_MAX_STAGE_MS = 600_000;
/** The demo reports progress this often within a stage. */
const TICK_MS = 50;

const demoInput = z
  .strictObject({
    stages: z.number().int().min(1).max(DEMO_MAX_STAGES).default(3).describe('How many stages'),
    stageMs: z.number().int().min(0).max(DEMO_MAX_STAGE_MS).default(1_000).describe('How long each stage takes (ms)'),
    failAtStage: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('For testing failure handling: the stage (0-based) that fails halfway through'),
  })
  .refine((input) => input.failAtStage === undefined || input.failAtStage < input.stages, {
    message: 'failAtStage must be less than stages',
    path: ['failAtStage'],
  });

/** Input of the demo kind, defaults applied. */
export type DemoInput = z.output<typeof demoInput>;

/** The demo's stage names: `Stage 1` … `Stage n`. */
export function demoStages(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `Stage ${index + 1}`);
}

/**
 * Kind `demo`: waits through `stages` stages of `stageMs` each, reporting progress every 50 ms; no
 * AI involved. For trying the progress UI and for tests; `failAtStage` makes that stage fail
 * halfway (`task.failed` with its stage).
 */
export const demoTask = defineTaskKind<DemoInput>({
  name: 'demo',
  description: 'Waits through a number of stages of a given duration, reporting progress (no AI).',
  input: demoInput,
  stages: (input) => demoStages(input.stages),
  async run({ input, signal, progress, finishedStages, stageFinished }) {
    // After a restart, the stages already done are not waited through again.
    for (let stage = finishedStages.length; stage < input.stages; stage++) {
      const message = `Stage ${stage + 1} of ${input.stages}`;
      progress(stage, 0, message);
      const startedAt = Date.now();
      const failAt = input.failAtStage === stage ? input.stageMs / 2 : Number.POSITIVE_INFINITY;
      for (;;) {
        const elapsed = Date.now() - startedAt;
        if (elapsed >= failAt) throw new TaskError(`demo failure in ${demoStages(input.stages)[stage]} (failAtStage)`);
        if (elapsed >= input.stageMs) break;
        await delay(Math.min(TICK_MS, input.stageMs - elapsed, failAt - elapsed), undefined, { signal });
        progress(stage, Math.min(1, (Date.now() - startedAt) / Math.max(1, input.stageMs)), message);
      }
      progress(stage, 1, message);
      stageFinished(stage, true);
    }
    return { stages: input.stages };
  },
});
