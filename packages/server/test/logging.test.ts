import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDevToken } from '../src/adapters/auth/dev-token.js';
import { createLogger } from '../src/adapters/observability/logger.js';
import { ofType, openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

function post(url: string, token?: string, body?: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

async function connectionIdOf(stream: StreamReader): Promise<string> {
  await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
  const [established] = ofType<{ connectionId: string }>(stream.events, 'connection.established');
  if (!established) throw new Error('no connection.established');
  return established.connectionId;
}

describe('logging: credentials never reach the logs', () => {
  const lines: string[] = [];
  /** Every credential the scenario sends; none may appear in the log. */
  const secrets: string[] = [];
  let server: TestApp;

  beforeAll(async () => {
    const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
    server = await startTestApp({}, { logger });
  });
  afterAll(async () => {
    await server?.close();
  });

  const remember = <T extends string>(secret: T): T => {
    secrets.push(secret);
    // A JWT's signature alone is enough to leak it in part; look for it separately as well.
    const signature = secret.split('.')[2];
    if (signature) secrets.push(signature);
    return secret;
  };

  it('logs requests of every credential kind without the credentials', async () => {
    const streams: StreamReader[] = [];
    try {
      // Bearer stream.
      const bearer = remember(await server.token('log-user', { topics: ['doc:1'] }));
      const bearerStream = await openStream(server.url, { token: bearer, query: { topics: 'user:log-user,doc:1' } });
      streams.push(bearerStream);
      expect(bearerStream.status).toBe(200);
      const connectionId = await connectionIdOf(bearerStream);

      // Ticket stream (the ticket travels in the URL).
      const ticketResponse = await post(`${server.url}/api/sse/ticket`, bearer);
      expect(ticketResponse.status).toBe(200);
      const { ticket } = (await ticketResponse.json()) as { ticket: string };
      remember(ticket);
      const ticketStream = await openStream(server.url, { query: { ticket } });
      streams.push(ticketStream);
      expect(ticketStream.status).toBe(200);
      await connectionIdOf(ticketStream);
      // The reused ticket is refused: logged at debug as a 401, still without the ticket.
      expect((await fetch(`${server.url}/api/sse/stream?ticket=${ticket}`)).status).toBe(401);
      // Tickets on the poll endpoint and tokens in other credential-looking query parameters.
      const pollTicket = remember(
        ((await (await post(`${server.url}/api/sse/ticket`, bearer)).json()) as { ticket: string }).ticket,
      );
      expect((await fetch(`${server.url}/api/sse/poll?timeoutMs=0&ticket=${pollTicket}`)).status).toBe(401);
      const queryToken = remember(await server.token('query-user'));
      expect((await fetch(`${server.url}/api/sse/stream?access_token=${queryToken}&token=${queryToken}`)).status).toBe(
        401,
      );

      // Cookie stream.
      const cookie = remember(await server.token('cookie-user'));
      const cookieStream = await openStream(server.url, { headers: { cookie: `access_token=${cookie}` } });
      streams.push(cookieStream);
      expect(cookieStream.status).toBe(200);
      await connectionIdOf(cookieStream);
      // Cookie poll.
      const poll = await fetch(`${server.url}/api/sse/poll?timeoutMs=0`, {
        headers: { cookie: `access_token=${cookie}` },
      });
      expect(poll.status).toBe(200);

      // 401s: a forged token, in the header and in the cookie, and a malformed header.
      const forged = remember(
        await signDevToken('some-other-secret-0123456789-0123456789', { userId: 'log-user', expiresIn: 3600 }),
      );
      expect(
        (await fetch(`${server.url}/api/sse/stream`, { headers: { authorization: `Bearer ${forged}` } })).status,
      ).toBe(401);
      expect(
        (await fetch(`${server.url}/api/sse/stream`, { headers: { cookie: `access_token=${forged}` } })).status,
      ).toBe(401);
      const basic = remember(Buffer.from('log-user:hunter2-password').toString('base64'));
      expect(
        (await fetch(`${server.url}/api/sse/stream`, { headers: { authorization: `Basic ${basic}` } })).status,
      ).toBe(401);

      // Publish.
      const publisher = remember(await server.token('log-publisher', { scope: 'events:publish' }));
      const publish = await post(`${server.url}/api/events`, publisher, {
        topic: 'user:log-user',
        type: 'notification',
        payload: { title: 'logged', level: 'info' },
      });
      expect(publish.status).toBe(202);
      const { id } = (await publish.json()) as { id: string };
      await bearerStream.waitFor((events) => published(events).some((event) => event.id === id));

      // Refresh.
      const fresh = remember(await server.token('log-user', { topics: ['doc:1'] }));
      expect((await post(`${server.url}/api/sse/connections/${connectionId}/refresh`, fresh)).status).toBe(200);

      // Dev login: the token is in the response body, never in the log.
      const devLogin = await post(`${server.url}/api/auth/dev-token`, undefined, { userId: 'dev-log-user' });
      expect(devLogin.status).toBe(200);
      remember(((await devLogin.json()) as { accessToken: string }).accessToken);
    } finally {
      for (const stream of streams) stream.close();
    }

    const log = lines.join('');
    // The capture works and is detailed: the requests above were logged, with their URLs.
    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(log).toContain('/api/sse/stream');
    expect(log).toContain('/api/sse/connections/');
    expect(log).toContain('/api/events');
    expect(log).toContain('"level":20');
    // Credential query values are replaced, literally, and the rest of the query is kept.
    expect(log).toContain('ticket=[REDACTED]');
    expect(log).toContain('access_token=[REDACTED]&token=[REDACTED]');
    expect(log).toContain('timeoutMs=0&ticket=[REDACTED]');

    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets)
      expect(log.includes(secret), `a credential leaked into the log: ${secret}`).toBe(false);
  });
});
