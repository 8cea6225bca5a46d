import { signDevToken } from '../../src/adapters/auth/dev-token.js';
import { TEST_JWT_SECRET } from './test-app.js';

/** What {@link callAs} got back: the status and the JSON body. */
export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One JSON API call as `userId` (a fresh dev token signed with the test secret) against a server
 * process: `route` is `"<METHOD> <path>"`, e.g. `"POST /api/tasks"`.
 */
export async function callAs(url: string, userId: string, route: string, body?: unknown): Promise<ApiAnswer> {
  const [method, path] = route.split(' ') as [string, string];
  const token = await signDevToken(TEST_JWT_SECRET, { userId, expiresIn: 3600 });
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Polls `condition` every 25 ms until it holds; fails after `timeoutMs` naming `what`. */
export async function pollUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
