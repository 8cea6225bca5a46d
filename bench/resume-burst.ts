import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { publisherToken } from './publisher.js';
import { readCpuMs, runCleanups, startOurServer, type Cleanups } from './processes.js';
import { streamTokens } from './stream-tokens.js';

/**
 * `npm run compile && npx tsx --conditions=@infinitescribe/source bench/resume-burst.ts [N]` — the
 * resume path alone, with the server as the bottleneck: one compiled server on the shared Redis
 * (its own key prefix, deleted at the end; PGlite as its store, which a resume without a gap does
 * not read), 5 events on `broadcast`, then N streams (2,000 by
 * default, each its own user and token) connected first and all sent their
 * `GET /api/sse/stream` with `Last-Event-ID` (the second event) at once. Reports the time until
 * every stream got `stream.resumed`, and the server's CPU over it: resumes per CPU-second without
 * the storm scenario's live deliveries and client backoff, so that a change to the resume path
 * shows on a busy machine too. See bench/README.md, scenario `storm`.
 */

const N = Number(process.argv[2] ?? 2_000);
const EVENTS = 5;
const REDIS_URL = 'redis://127.0.0.1:6379';

async function main(): Promise<void> {
  const secret = randomBytes(24).toString('hex');
  const prefix = `burst${randomBytes(4).toString('hex')}`;
  const cleanups: Cleanups = [() => deleteKeys(prefix)];
  try {
    const server = await startOurServer({ secret, env: { REDIS_URL, REDIS_KEY_PREFIX: prefix }, cleanups });
    const publisher = await publisherToken(secret);
    const ids: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const response = await fetch(`${server.baseUrl}/api/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'broadcast', type: 'notification', payload: { title: `e${i}`, level: 'info' } }),
      });
      ids.push(((await response.json()) as { id: string }).id);
    }
    const tokens = await streamTokens(secret, 0, N);
    const { hostname, port } = new URL(server.baseUrl);
    const sockets = await Promise.all(
      tokens.map(
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(Number(port), hostname, () => resolve(socket));
            socket.once('error', reject);
          }),
      ),
    );
    let resumed = 0;
    const allResumed = new Promise<void>((resolve) => {
      for (const socket of sockets) {
        let text = '';
        const onData = (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (!text.includes('event: stream.resumed')) return;
          socket.off('data', onData);
          if (++resumed === N) resolve();
        };
        socket.on('data', onData);
      }
    });
    const cpuBefore = readCpuMs(server.pid);
    const started = performance.now();
    sockets.forEach((socket, i) =>
      socket.write(
        `GET /api/sse/stream?topics=broadcast HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ${tokens[i]}\r\n` +
          `Last-Event-ID: ${ids[1]}\r\n\r\n`,
      ),
    );
    await allResumed;
    const wallMs = performance.now() - started;
    const cpuMs = readCpuMs(server.pid) - cpuBefore;
    for (const socket of sockets) socket.destroy();
    console.log(
      `${N} resumes (${EVENTS - 2} events replayed each) in ${wallMs.toFixed(0)} ms: ` +
        `${Math.round(N / (wallMs / 1000))} resumes/s; server CPU ${cpuMs} ms: ` +
        `${Math.round(N / (cpuMs / 1000))} resumes per CPU-second`,
    );
  } finally {
    await runCleanups(cleanups);
  }
}

/** Deletes the run's keys (SCAN MATCH + DEL, never FLUSH: Redis is shared). */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

await main();
