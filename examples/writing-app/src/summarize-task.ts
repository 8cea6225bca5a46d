import { defineTaskKind, lastUserText, TaskError } from '@infinitescribe/server';
import { z } from 'zod';

/** How much of the model's answer each stage asks for. */
const STAGE_TOKENS = { outline: 60, summary: 120 };

/**
 * A task kind of the app's own: summarises a document in two stages that each call the AI provider
 * the realtime layer was given. It records each stage's output, so a task handed over at a restart
 * continues after the last finished stage instead of calling the model again.
 */
export const summarizeDocument = defineTaskKind({
  name: 'summarize-document',
  description: 'Outlines a document, then summarises it from the outline.',
  input: z.strictObject({ text: z.string().min(1).max(20_000) }),
  stages: ['Outline', 'Summary'],
  async run({ input, progress, signal, provider, finishedStages, stageFinished }) {
    const ask = async (stage: number, prompt: string, maxTokens: number): Promise<string> => {
      let text = '';
      let tokens = 0;
      const request = { messages: [{ role: 'user' as const, content: prompt }], maxTokens, signal };
      for await (const chunk of provider.stream(request)) {
        if (chunk.type !== 'delta') continue;
        text += chunk.text;
        progress(stage, Math.min(0.99, ++tokens / maxTokens));
      }
      if (text.trim() === '') throw new TaskError(`the model returned nothing for stage ${stage + 1}`);
      stageFinished(stage, text);
      return text;
    };
    const outline =
      typeof finishedStages[0] === 'string'
        ? finishedStages[0]
        : await ask(0, `Outline this document:\n\n${input.text}`, STAGE_TOKENS.outline);
    progress(1, 0, 'summarising');
    const summary = await ask(1, `Summarise from this outline:\n\n${outline}`, STAGE_TOKENS.summary);
    return { outline, summary, words: lastUserText([{ role: 'user', content: summary }]).split(/\s+/).length };
  },
});
