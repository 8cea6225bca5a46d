import { z } from 'zod';
import { toProviderError } from '@infinitescribe/server';
import { MAX_PROMPT_CHARS, MAX_TOKENS_LIMIT } from '@infinitescribe/server';
import { defineTaskKind, TaskError, type TaskContext } from '@infinitescribe/server';

/** Token budget of each stage unless the input names one. */
export const STAGE_MAX_TOKENS = { outline: 150, draft: 400, polish: 400 } as const;

const STAGES = ['Outline', 'Draft', 'Polish'] as const;

const outlineDraftPolishInput = z.strictObject({
  prompt: z
    .string()
    .max(MAX_PROMPT_CHARS)
    .refine((prompt) => prompt.trim() !== '', { message: 'prompt must not be blank' })
    .describe('What to write about'),
  maxTokens: z
    .number()
    .int()
    .min(1)
    .max(MAX_TOKENS_LIMIT)
    .optional()
    .describe(
      `Token budget of every stage (default: outline ${STAGE_MAX_TOKENS.outline}, draft ${STAGE_MAX_TOKENS.draft}, polish ${STAGE_MAX_TOKENS.polish})`,
    ),
});

/** Input of the outline-draft-polish kind. */
export type OutlineDraftPolishInput = z.output<typeof outlineDraftPolishInput>;

/** Result of the outline-draft-polish kind (`task.completed.result`). */
export interface OutlineDraftPolishResult {
  outline: string;
  draft: string;
  polished: string;
}

/** The stage prompts. */
export const stagePrompts = {
  outline: (prompt: string) =>
    `Write a concise outline (five to seven short bullet points) for a piece of writing about the following.\n\n` +
    `Topic: ${prompt}\n\nOutline:`,
  draft: (prompt: string, outline: string) =>
    `Write a first draft of a piece of writing that follows this outline, in flowing prose.\n\n` +
    `Topic: ${prompt}\n\nOutline:\n${outline}\n\nDraft:`,
  polish: (draft: string) =>
    `Polish the following draft: fix grammar and awkward phrasing, tighten sentences, keep its meaning ` +
    `and structure. Answer with the polished text only.\n\nDraft:\n${draft}\n\nPolished text:`,
};

/**
 * Streams one completion for stage `stageIndex`, reporting tokens so far / budget as the stage's
 * progress; resolves with the trimmed text, which it records as the stage's output. A stage
 * finished before a restart is not asked again: its recorded text is the answer.
 */
async function completeStage(
  context: TaskContext<OutlineDraftPolishInput>,
  stageIndex: number,
  request: { prompt: string; maxTokens: number; message: string },
): Promise<string> {
  const { provider, signal, progress, finishedStages, stageFinished } = context;
  const earlier = finishedStages[stageIndex];
  if (typeof earlier === 'string') return earlier;
  const { prompt, maxTokens, message } = request;
  progress(stageIndex, 0, message);
  let text = '';
  let tokens = 0;
  try {
    for await (const chunk of provider.stream({ messages: [{ role: 'user', content: prompt }], maxTokens, signal })) {
      if (chunk.type !== 'delta') continue;
      text += chunk.text;
      tokens++;
      progress(stageIndex, tokens / maxTokens, message);
    }
  } catch (error) {
    throw toProviderError(error, signal);
  }
  const trimmed = text.trim();
  if (trimmed === '') throw new TaskError(`the AI provider returned no text for the ${STAGES[stageIndex]} stage`);
  progress(stageIndex, 1, message);
  stageFinished(stageIndex, trimmed);
  return trimmed;
}

/**
 * Kind `outline-draft-polish`: three AI completions, each fed the previous one's text: an outline
 * of the prompt, a draft following the outline, a polished version of the draft. Progress within a
 * stage is tokens so far over the stage's token budget. Result: `{outline, draft, polished}`.
 */
export const outlineDraftPolishTask = defineTaskKind<OutlineDraftPolishInput>({
  name: 'outline-draft-polish',
  description: 'Writes an outline of the prompt, then a draft from the outline, then polishes the draft (AI).',
  input: outlineDraftPolishInput,
  stages: STAGES,
  async run(context): Promise<OutlineDraftPolishResult> {
    const { prompt, maxTokens } = context.input;
    const outline = await completeStage(context, 0, {
      prompt: stagePrompts.outline(prompt),
      maxTokens: maxTokens ?? STAGE_MAX_TOKENS.outline,
      message: 'Outlining',
    });
    const draft = await completeStage(context, 1, {
      prompt: stagePrompts.draft(prompt, outline),
      maxTokens: maxTokens ?? STAGE_MAX_TOKENS.draft,
      message: 'Drafting',
    });
    const polished = await completeStage(context, 2, {
      prompt: stagePrompts.polish(draft),
      maxTokens: maxTokens ?? STAGE_MAX_TOKENS.polish,
      message: 'Polishing',
    });
    return { outline, draft, polished };
  },
});
