/**
 * @module Development sign-in: `POST /api/auth/dev-token` `{userId}` gives an access token
 * (docs/http-api.md, "Tokens"; only where AUTH_DEV_LOGIN is on). The token lives in sessionStorage (per tab, gone with
 * the tab) and is fetched again when it is about to expire or the client asks with `forceRefresh`.
 */
import type { GetToken } from '@infinitescribe/client';
import { ApiError, stringField } from './api-client.js';

const STORAGE_KEY = 'infinitescribe:dev-session';
/** Refresh a token this long before it expires. */
const EXPIRY_MARGIN_MS = 90_000;
/** The user id grammar of the dev-token endpoint. */
export const USER_ID_PATTERN = /^[A-Za-z0-9_.@-]{1,100}$/;

/** A signed-in user and the token source for the SSE client and API calls. */
export interface DevSession {
  userId: string;
  getToken: GetToken;
}

interface StoredToken {
  userId: string;
  accessToken: string;
  expiresAt: number;
}

/** Asks the server for a dev token; throws an {@link ApiError} with a readable message. */
export async function requestDevToken(userId: string, fetchImpl: typeof fetch = fetch): Promise<StoredToken> {
  const response = await fetchImpl('/api/auth/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  if (response.status === 404) {
    throw new ApiError('Dev sign-in is turned off on this server (AUTH_DEV_LOGIN).', 404, 'not_found');
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = typeof body === 'object' && body !== null && 'error' in body ? body.error : undefined;
    throw new ApiError(
      stringField(error, 'message') ?? `Sign-in failed (HTTP ${response.status}).`,
      response.status,
      stringField(error, 'code'),
    );
  }
  const accessToken = stringField(body, 'accessToken');
  const expiresIn = typeof body === 'object' && body !== null && 'expiresIn' in body ? Number(body.expiresIn) : NaN;
  if (!accessToken || !Number.isFinite(expiresIn))
    throw new ApiError('Sign-in answered without a token.', 500, undefined);
  return { userId, accessToken, expiresAt: Date.now() + expiresIn * 1000 };
}

/** Signs in as `userId`: gets a first token, stores it, and returns the session. */
export async function signIn(userId: string): Promise<DevSession> {
  const token = await requestDevToken(userId);
  save(token);
  return sessionFrom(token);
}

/** The session saved in this tab, if any. */
export function restoreSession(): DevSession | null {
  const token = load();
  return token ? sessionFrom(token) : null;
}

/** Forgets the session of this tab. */
export function signOut(): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage may be unavailable (privacy mode); nothing to forget then.
  }
}

function sessionFrom(initial: StoredToken): DevSession {
  let current = initial;
  let refreshing: Promise<StoredToken> | undefined;
  const getToken: GetToken = async ({ forceRefresh }) => {
    if (!forceRefresh && current.expiresAt - Date.now() > EXPIRY_MARGIN_MS) return current.accessToken;
    // Several callers at once (the stream and an API call) share one request.
    refreshing ??= requestDevToken(current.userId).finally(() => {
      refreshing = undefined;
    });
    current = await refreshing;
    save(current);
    return current.accessToken;
  };
  return { userId: initial.userId, getToken };
}

function save(token: StoredToken): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(token));
  } catch {
    // Without storage the session simply lasts as long as the page.
  }
}

function load(): StoredToken | null {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    const userId = stringField(parsed, 'userId');
    const accessToken = stringField(parsed, 'accessToken');
    const expiresAt =
      typeof parsed === 'object' && parsed !== null && 'expiresAt' in parsed ? parsed.expiresAt : undefined;
    if (!userId || !accessToken || typeof expiresAt !== 'number') return null;
    return { userId, accessToken, expiresAt };
  } catch {
    return null;
  }
}
