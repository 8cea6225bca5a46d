import { SignJWT } from 'jose';

/**
 * A service token, signed with the server's JWT_SECRET (HS256). `events:publish` lets it publish;
 * `events:service` gives it the service rate limit (PUBLISH_RATE_MAX_SERVICE) instead of a user's.
 */
export async function mintServiceToken(jwtSecret: string, serviceName: string): Promise<string> {
  return new SignJWT({ scope: 'events:publish events:service' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(`service:${serviceName}`)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(jwtSecret));
}

/** One event, as `POST /api/events` takes it. */
export interface PublishRequest {
  topic: string;
  type: string;
  payload: unknown;
  critical?: boolean;
}

const RETRIED_STATUSES = new Set([409, 429, 503]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Publishes `event` exactly once, retrying network errors and 409/429/503: every try sends the
 * same Idempotency-Key, so a try whose answer was lost cannot create a second event.
 */
export async function publishOnce(
  baseUrl: string,
  token: string,
  event: PublishRequest,
  idempotencyKey: string = crypto.randomUUID(),
): Promise<{ id: string }> {
  for (let attempt = 1; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(new URL('/api/events', baseUrl), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': idempotencyKey,
        },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(200 * 2 ** attempt);
      continue;
    }
    if (response.ok) return (await response.json()) as { id: string };
    if (!RETRIED_STATUSES.has(response.status) || attempt >= 5) {
      throw new Error(`publish failed: ${response.status} ${await response.text()}`);
    }
    await sleep(1000 * Number(response.headers.get('retry-after') ?? '1'));
  }
}
