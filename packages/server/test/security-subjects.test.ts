/**
 * Security regression suite, user ids (issue 11, item 6): the subjects identity providers issue
 * get a working `user:<sub>` topic; a subject that cannot be served is a 401 that says so.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJsonError } from './helpers/http-assertions.js';
import { SERVABLE_SUBJECTS, UNSERVABLE_SUBJECTS } from './helpers/identity-subjects.js';
import { ofType, openStream, published } from './helpers/sse-reader.js';
import { startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

function sign(sub: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

function post(server: TestApp, token: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('security: identity-provider subjects', () => {
  let server: TestApp;
  let service: string;

  beforeAll(async () => {
    server = await startTestApp({ AI_OFFLINE_TOKENS_PER_SECOND: '1000' });
    service = await server.token('publisher-service', { scope: 'events:publish' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(SERVABLE_SUBJECTS.map((sub) => [sub.length > 40 ? `${sub.slice(0, 20)}… (${sub.length})` : sub, sub]))(
    '%s: streams, receives what is published to user:<sub>, and runs generations and tasks',
    async (_label, sub) => {
      const token = await sign(sub);
      const topic = `user:${sub}`;
      // Default topics, and the topic named explicitly in the query (percent-encoded by URLSearchParams).
      const implicit = await openStream(server.url, { token });
      const explicit = await openStream(server.url, { token, query: { topics: topic } });
      try {
        for (const stream of [implicit, explicit]) {
          expect(stream.status).toBe(200);
          await stream.waitFor((events) => events.some((event) => event.event === 'connection.established'));
          expect(ofType<{ topics: string[] }>(stream.events, 'connection.established')[0]?.topics).toEqual([topic]);
        }
        const notification = { topic, type: 'notification', payload: { title: 'for you', level: 'info' } };
        expect((await post(server, service, '/api/events', notification)).status).toBe(202);

        const generation = await post(server, token, '/api/ai/generations', { prompt: 'Once', maxTokens: 3 });
        expect(generation.status).toBe(202);
        const { generationId } = (await generation.json()) as { generationId: string };
        const task = await post(server, token, '/api/tasks', { kind: 'demo', input: { stages: 1, stageMs: 10 } });
        expect(task.status).toBe(202);

        for (const stream of [implicit, explicit]) {
          await stream.waitFor((events) => {
            const types = published(events).map((event) => event.event);
            return ['notification', 'ai.generation.completed', 'task.completed'].every((type) => types.includes(type));
          });
          for (const event of published(stream.events)) {
            expect((JSON.parse(event.data) as { topic: string }).topic).toBe(topic);
          }
        }
        const view = await fetch(`${server.url}/api/ai/generations/${generationId}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(await view.json()).toMatchObject({ generationId, status: 'completed' });
      } finally {
        implicit.close();
        explicit.close();
      }
    },
  );

  it('the dev login signs tokens for these subjects', async () => {
    for (const userId of SERVABLE_SUBJECTS) {
      const response = await fetch(`${server.url}/api/auth/dev-token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId }),
      });
      expect(response.status, userId).toBe(200);
    }
  });

  it.each(UNSERVABLE_SUBJECTS.map(({ sub, why }) => [why, sub]))(
    'a subject with %s is refused with a 401 that says so, on streams and API calls',
    async (_why, sub) => {
      const token = await sign(sub, { scope: 'events:publish' });
      const stream = await fetch(`${server.url}/api/sse/stream`, { headers: { authorization: `Bearer ${token}` } });
      const body = await expectJsonError(stream, 401, 'unauthorized');
      expect(body.error.message).toMatch(/subject cannot be served/);
      await expectJsonError(await post(server, token, '/api/ai/generations', { prompt: 'x' }), 401, 'unauthorized');
      await expectJsonError(await post(server, token, '/api/tasks', { kind: 'demo' }), 401, 'unauthorized');
    },
  );

  it('a raw `+` in ?topics= reads as a space: refused with a hint to percent-encode', async () => {
    const sub = 'jane.doe+news@example.com';
    const response = await fetch(`${server.url}/api/sse/stream?topics=user:${sub}`, {
      headers: { authorization: `Bearer ${await sign(sub)}` },
    });
    const body = await expectJsonError(response, 403, 'forbidden_topic');
    expect(body.error.message).toMatch(/percent-encode/);
  });
});
