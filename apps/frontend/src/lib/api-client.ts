/**
 * @module A small JSON client for the server's HTTP API: Bearer token from the session, one retry
 * with a fresh token after a 401, and the API's `{"error": {code, message}}` turned into an
 * {@link ApiError}. Requests are never retried otherwise: a POST that starts a paid generation
 * must happen exactly once per click.
 */
import type { GetToken } from '@infinitescribe/client';

/** A failed API call, with the server's error code when it sent one. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** The calls the pages make. */
export interface ApiClient {
  get(path: string, signal?: AbortSignal): Promise<unknown>;
  post(path: string, body?: unknown): Promise<unknown>;
}

/**
 * Builds an {@link ApiClient} over `fetch`.
 * @example const api = createApiClient(session.getToken); await api.post('/api/ai/generations', { prompt });
 */
export function createApiClient(getToken: GetToken, fetchImpl: typeof fetch = (...args) => fetch(...args)): ApiClient {
  const request = async (method: string, path: string, init: { body?: unknown; signal?: AbortSignal }) => {
    const send = async (forceRefresh: boolean) =>
      fetchImpl(path, {
        method,
        headers: {
          authorization: `Bearer ${await getToken({ forceRefresh })}`,
          accept: 'application/json',
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    let response = await send(false);
    // A 401 was refused before anything happened on the server, so sending again is safe.
    if (response.status === 401) response = await send(true);
    const text = await response.text();
    const body: unknown = text === '' ? undefined : parseJson(text);
    if (!response.ok) throw errorFrom(response.status, body, `${method} ${path}`);
    return body;
  };
  return {
    get: (path, signal) => request('GET', path, signal ? { signal } : {}),
    post: (path, body) => request('POST', path, { body: body ?? {} }),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorFrom(status: number, body: unknown, what: string): ApiError {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const { error } = body;
    if (typeof error === 'object' && error !== null) {
      const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
      const message = 'message' in error && typeof error.message === 'string' ? error.message : `${what} failed`;
      return new ApiError(message, status, code);
    }
  }
  return new ApiError(`${what} answered HTTP ${status}`, status, undefined);
}

/**
 * Reads a string field of an unknown JSON object; with the protocol's answer type as `TAnswer`,
 * only that answer's field names compile.
 * @example stringField<GenerationCreated>(body, 'generationId')
 */
export function stringField<TAnswer = Record<string, unknown>>(
  value: unknown,
  field: keyof TAnswer & string,
): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const entry: unknown = (value as Record<string, unknown>)[field];
  return typeof entry === 'string' ? entry : undefined;
}

/** A readable message for anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
