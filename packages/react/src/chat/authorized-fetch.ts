import type { FetchLike, GetToken } from '@infinitescribe/client';

/** Where the server is and how to authenticate, as given to `createSSEClient`. */
export interface ServerAccess {
  /** Base URL of the server (`''` for same origin). */
  url: string;
  getToken: GetToken;
  /** Default: `globalThis.fetch`. */
  fetch?: FetchLike;
}

/** An error answer of the API (`{"error": {"code", "message"}}`), with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * One authenticated JSON request; a 401 is retried once with a fresh token. Resolves with the
 * parsed body (`undefined` for 204), rejects with {@link ApiError} for an error answer.
 */
export async function requestJson(
  access: ServerAccess,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { body?: unknown; signal?: AbortSignal; headers?: Record<string, string> } = {},
): Promise<unknown> {
  const fetch = access.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const attempt = async (forceRefresh: boolean) =>
    fetch(`${access.url}${path}`, {
      method,
      headers: {
        ...options.headers,
        authorization: `Bearer ${await access.getToken({ forceRefresh })}`,
        accept: 'application/json',
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  let response = await attempt(false);
  if (response.status === 401) response = await attempt(true);
  const text = await response.text();
  const body: unknown = text === '' ? undefined : JSON.parse(text);
  if (!response.ok) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    throw new ApiError(
      response.status,
      typeof error?.code === 'string' ? error.code : 'http_error',
      typeof error?.message === 'string' ? error.message : `${method} ${path} answered HTTP ${response.status}`,
    );
  }
  return body;
}
