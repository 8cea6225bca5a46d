/**
 * @module Reloading server state after events were lost (a seq gap, `stream.reset`, an incomplete
 * resume): `GET /api/ai/generations/:id` and `GET /api/tasks/:id` (docs/http-api.md). Plain functions, so an
 * app can swap in its own HTTP layer; {@link createHttpStateLoaders} builds the default ones.
 */
import type { GenerationView, TaskView } from '@infinitescribe/protocol';
import type { GetToken } from './auth.js';
import type { FetchLike } from './transport.js';

/**
 * `GET /api/ai/generations/:id` as loaded. A server from before `seq` was added to the view
 * leaves it out; the generation store then infers it from the deltas it holds.
 */
export type LoadedGenerationView = Omit<GenerationView, 'seq'> & { seq?: number };

/**
 * How lost state is reloaded (by the React hooks, or by any app after `needsRefetch`). Each
 * receives an `AbortSignal` that fires when nobody needs the answer any more.
 * @example
 * const loaders: StateLoaders = {
 *   loadGeneration: (id, signal) => api.get(`/api/ai/generations/${id}`, { signal }),
 *   loadTask: (id, signal) => api.get(`/api/tasks/${id}`, { signal }),
 * };
 */
export interface StateLoaders {
  loadGeneration(generationId: string, signal: AbortSignal): Promise<LoadedGenerationView>;
  loadTask(taskId: string, signal: AbortSignal): Promise<TaskView>;
}

/** Options of {@link createHttpStateLoaders}. */
export interface HttpStateLoadersOptions {
  /** Base URL of the server (`''` for same origin), as given to `createSSEClient`. */
  url: string;
  /** The same token source as the client's; a 401 is retried once with `forceRefresh: true`. */
  getToken: GetToken;
  /** `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: FetchLike;
}

/**
 * The default loaders: authenticated GETs against the endpoints of docs/http-api.md. React's `SSEProvider`
 * builds them from its client `options`; pass your own when you give it a ready-made client.
 * @example
 * <SSEProvider client={client} loaders={createHttpStateLoaders({ url: '', getToken })}>
 */
export function createHttpStateLoaders(options: HttpStateLoadersOptions): StateLoaders {
  const fetchJson = async (path: string, signal: AbortSignal): Promise<unknown> => {
    const fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    const attempt = async (forceRefresh: boolean) =>
      fetch(`${options.url}${path}`, {
        headers: { authorization: `Bearer ${await options.getToken({ forceRefresh })}`, accept: 'application/json' },
        signal,
      });
    let response = await attempt(false);
    if (response.status === 401) response = await attempt(true);
    if (!response.ok) throw new Error(`@infinitescribe/client: GET ${path} answered HTTP ${response.status}`);
    return response.json();
  };
  return {
    async loadGeneration(generationId, signal) {
      const body = await fetchJson(`/api/ai/generations/${encodeURIComponent(generationId)}`, signal);
      if (!isGenerationView(body)) throw new Error('@infinitescribe/client: unexpected generation answer');
      return body;
    },
    async loadTask(taskId, signal) {
      const body = await fetchJson(`/api/tasks/${encodeURIComponent(taskId)}`, signal);
      if (!isTaskView(body)) throw new Error('@infinitescribe/client: unexpected task answer');
      return body;
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

const GENERATION_STATUSES: readonly string[] = ['running', 'completed', 'failed', 'cancelled'];
const TASK_STATUSES: readonly string[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

function isGenerationView(value: unknown): value is LoadedGenerationView {
  return (
    isRecord(value) &&
    typeof value.generationId === 'string' &&
    typeof value.text === 'string' &&
    typeof value.status === 'string' &&
    GENERATION_STATUSES.includes(value.status) &&
    (value.seq === undefined || typeof value.seq === 'number')
  );
}

function isTaskView(value: unknown): value is TaskView {
  return (
    isRecord(value) &&
    typeof value.taskId === 'string' &&
    typeof value.kind === 'string' &&
    typeof value.status === 'string' &&
    TASK_STATUSES.includes(value.status) &&
    typeof value.stage === 'string' &&
    typeof value.stageIndex === 'number' &&
    typeof value.stageCount === 'number' &&
    typeof value.percent === 'number'
  );
}
