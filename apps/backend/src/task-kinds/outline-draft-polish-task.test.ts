import { describe, expect, it } from 'vitest';
import {
  ProviderError,
  lastUserText,
  type AIProvider,
  type CompletionChunk,
  type CompletionRequest,
} from '@infinitescribe/server';
import { outlineDraftPolishTask, stagePrompts } from './outline-draft-polish-task.js';

/** A provider answering each request with the next scripted list of words (or error). */
function scriptedProvider(script: (string[] | Error)[]): AIProvider & { requests: CompletionRequest[] } {
  const requests: CompletionRequest[] = [];
  return {
    info: { kind: 'offline', label: 'scripted', model: 'scripted' },
    requests,
    async *stream(request): AsyncGenerator<CompletionChunk> {
      const answer = script[requests.length];
      requests.push(request);
      if (answer instanceof Error) throw answer;
      for (const word of answer ?? []) yield { type: 'delta', text: ` ${word}` };
      yield { type: 'usage', usage: { completionTokens: answer?.length ?? 0 } };
    },
  };
}

function run(provider: AIProvider, input: unknown, finishedStages: unknown[] = []) {
  const reports: [number, number, string | undefined][] = [];
  const recorded: unknown[] = [];
  const prepared = outlineDraftPolishTask.prepare(input);
  const result = prepared.run({
    taskId: 'task-1',
    signal: new AbortController().signal,
    provider,
    progress: (stageIndex, fraction, message) => reports.push([stageIndex, fraction, message]),
    finishedStages,
    stageFinished: (stageIndex, output) => (recorded[stageIndex] = output),
  });
  return { prepared, result, reports, recorded };
}

describe('outline-draft-polish', () => {
  it('chains three completions, each fed the previous text, with token-based progress', async () => {
    const provider = scriptedProvider([
      ['- sea', '- light'],
      ['The', 'keeper', 'wrote.'],
      ['The', 'keeper', 'wrote', 'well.'],
    ]);
    const { prepared, result, reports, recorded } = run(provider, { prompt: 'A lighthouse', maxTokens: 4 });
    expect(prepared.stages).toEqual(['Outline', 'Draft', 'Polish']);
    expect(await result).toEqual({
      outline: '- sea - light',
      draft: 'The keeper wrote.',
      polished: 'The keeper wrote well.',
    });
    expect(provider.requests.map((request) => lastUserText(request.messages))).toEqual([
      stagePrompts.outline('A lighthouse'),
      stagePrompts.draft('A lighthouse', '- sea - light'),
      stagePrompts.polish('The keeper wrote.'),
    ]);
    expect(provider.requests.map((request) => request.maxTokens)).toEqual([4, 4, 4]);
    expect(recorded).toEqual(['- sea - light', 'The keeper wrote.', 'The keeper wrote well.']);
    expect(reports.filter(([stage]) => stage === 1)).toEqual([
      [1, 0, 'Drafting'],
      [1, 0.25, 'Drafting'],
      [1, 0.5, 'Drafting'],
      [1, 0.75, 'Drafting'],
      [1, 1, 'Drafting'],
    ]);
  });

  it('after a restart, continues after its finished stages with their recorded text', async () => {
    const provider = scriptedProvider([['The', 'keeper', 'wrote', 'well.']]);
    const { result, reports } = run(provider, { prompt: 'A lighthouse' }, ['- sea - light', 'The keeper wrote.']);
    expect(await result).toEqual({
      outline: '- sea - light',
      draft: 'The keeper wrote.',
      polished: 'The keeper wrote well.',
    });
    // Only the polish stage asks the model again, from the draft it had.
    expect(provider.requests.map((request) => lastUserText(request.messages))).toEqual([
      stagePrompts.polish('The keeper wrote.'),
    ]);
    expect(new Set(reports.map(([stage]) => stage))).toEqual(new Set([2]));
  });

  it('fails with the provider’s message, or when a stage comes back empty', async () => {
    const failing = scriptedProvider([['- a'], new ProviderError('http', 'the AI provider answered HTTP 500')]);
    await expect(run(failing, { prompt: 'x' }).result).rejects.toThrow('the AI provider answered HTTP 500');
    const empty = scriptedProvider([[]]);
    await expect(run(empty, { prompt: 'x' }).result).rejects.toThrow(/no text for the Outline stage/);
  });

  it('validates its input', () => {
    expect(() => outlineDraftPolishTask.prepare({})).toThrow(/prompt/);
    expect(() => outlineDraftPolishTask.prepare({ prompt: '   ' })).toThrow(/must not be blank/);
    expect(() => outlineDraftPolishTask.prepare({ prompt: 'x', other: 1 })).toThrow(/other/);
    expect(() => outlineDraftPolishTask.prepare(undefined)).toThrow(/prompt/);
  });
});
