import { randomBytes } from 'node:crypto';
import { LoadPool } from './load-pool.js';
import { runCleanups, startOurServer, type Cleanups } from './processes.js';

const cleanups: Cleanups = [];
const secret = randomBytes(32).toString('hex');
const n = Number(process.argv[2] ?? 2000);
try {
  const server = await startOurServer({ secret, cleanups });
  const pool = await LoadPool.start({ processes: 1, baseUrl: server.baseUrl, streamPath: '/api/sse/stream?topics=broadcast', secret, maxStreams: n * 2 });
  cleanups.push(() => pool.stop());
  for (const round of [0, 1]) {
    const r = await pool.open(n, 2000, 60_000);
    const s = r.connect.summary();
    console.log(`round ${round}: ${r.established} est, ${r.failed} failed, p50 ${s.p50.toFixed(1)} p99 ${s.p99.toFixed(1)} ms`);
    await pool.closeAll();
    await new Promise((res) => setTimeout(res, 1500));
  }
} finally {
  await runCleanups(cleanups);
}
