import type { EventSourceMessage } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomInt, seededRandom } from './helpers/random.js';
import { openStream, published, type StreamReader } from './helpers/sse-reader.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

interface GenerationPayload {
  generationId: string;
  seq?: number;
  text?: string;
}

/**
 * What a client does with a generation's events: deltas append in seq order, a snapshot replaces
 * the text so far, `completed` carries the final text. A gap or a duplicate seq is a failure.
 */
class GenerationFold {
  text = '';
  lastSeq = -1;
  completed: string | undefined;
  snapshots = 0;
  readonly problems: string[] = [];

  apply(event: EventSourceMessage, generationId: string): void {
    const payload = (JSON.parse(event.data) as { payload: GenerationPayload }).payload;
    if (payload.generationId !== generationId) return;
    if (event.event === 'ai.generation.snapshot') {
      if ((payload.seq ?? -1) < this.lastSeq) this.problems.push(`snapshot went back to seq ${payload.seq}`);
      this.text = payload.text ?? '';
      this.lastSeq = payload.seq ?? -1;
      this.snapshots++;
    } else if (event.event === 'ai.generation.delta') {
      if (payload.seq !== this.lastSeq + 1) this.problems.push(`delta seq ${payload.seq} after ${this.lastSeq}`);
      else this.text += payload.text ?? '';
      this.lastSeq = Math.max(this.lastSeq, payload.seq ?? -1);
    } else if (event.event === 'ai.generation.completed') {
      this.completed = payload.text;
    }
  }
}

describe('resuming a running generation (randomized, real HTTP + SSE)', () => {
  let server: TestApp;
  beforeAll(async () => {
    server = await startTestApp({
      AI_OFFLINE_TOKENS_PER_SECOND: '300',
      AI_FLUSH_MS: '20',
      AI_DEFAULT_MAX_TOKENS: '90',
      MAX_CONNECTIONS_PER_USER: '64',
    });
  });
  afterAll(async () => {
    await server.close();
  });

  it('ends with the same text whether the client got deltas or a snapshot, over 40 seeds', async () => {
    let snapshotTrials = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const random = seededRandom(seed);
      const userId = `writer${seed}`;
      const token = await server.token(userId);
      let stream: StreamReader = await openStream(server.url, { token });
      // An anchor event gives the client a resume point from before the generation started.
      const anchor = await server.publish({ topic: `user:${userId}` });
      await stream.waitFor((events) => published(events).some((event) => event.id === anchor.id));
      // Odd seeds are away from before the generation starts (its first tokens may well arrive
      // before the POST is answered) and come back mid-generation, so the replay starts at seq 0
      // and is compacted into a snapshot; even seeds drop at random points.
      if (seed % 2 === 1) {
        stream.close();
        await stream.ended;
      }
      const response = await fetch(`${server.url}/api/ai/generations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: `It was a truth universally acknowledged (${seed})` }),
      });
      expect(response.status).toBe(202);
      const { generationId } = (await response.json()) as { generationId: string };
      const fold = new GenerationFold();
      let lastId = anchor.id;
      let dropAfterMs = seed % 2 === 1 ? 0 : randomInt(random, 0, 150);
      for (let round = 0; round < 20 && fold.completed === undefined; round++) {
        await new Promise((resolve) => setTimeout(resolve, dropAfterMs));
        stream.close();
        await stream.ended;
        for (const event of published(stream.events)) {
          fold.apply(event, generationId);
          lastId = event.id ?? lastId;
        }
        if (fold.completed !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, randomInt(random, 20, 120)));
        stream = await openStream(server.url, { token, lastEventId: lastId });
        dropAfterMs = randomInt(random, 10, 200);
        if (round === 19 || random() < 0.3) {
          await stream.waitFor((events) => events.some((event) => event.event === 'ai.generation.completed'), 15_000);
        }
      }
      if (fold.completed === undefined) {
        await stream.waitFor((events) => events.some((event) => event.event === 'ai.generation.completed'), 15_000);
        for (const event of published(stream.events)) fold.apply(event, generationId);
      }
      stream.close();
      expect(fold.problems, `seed ${seed}`).toEqual([]);
      expect(fold.completed, `seed ${seed}`).toBeDefined();
      expect(fold.text, `seed ${seed}`).toBe(fold.completed);
      if (fold.snapshots > 0) snapshotTrials++;
    }
    // The snapshot path was really taken, not only the delta path.
    expect(snapshotTrials).toBeGreaterThan(5);
  }, 240_000);
});
