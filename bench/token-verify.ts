import { randomBytes } from 'node:crypto';
import { createJwtVerifier, DEFAULT_TOKEN_CACHE_ENTRIES } from '../packages/server/src/adapters/auth/jwt-verifier.js';
import { freshStreamTokens } from './stream-tokens.js';

/**
 * `npx tsx --conditions=@infinitescribe/source bench/token-verify.ts [N]` — the token check of
 * every stream open, alone and in process: the HS256 verifier with its default cache (10,000
 * entries) given 5,000 tokens it never saw, then the same tokens a second and a third time; then
 * N (20,000 by default: a reconnect storm's, more than the cache holds) the same way; each also
 * with the cache off. Prints µs of CPU per verification, so a change to the verifier or its cache
 * shows without the noise of a network benchmark (where it is a few per cent of a connect).
 */

const N = Number(process.argv[2] ?? 20_000);

async function round(verify: (token: string) => Promise<unknown>, tokens: readonly string[]): Promise<number> {
  const before = process.cpuUsage();
  for (const token of tokens) await verify(token);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / tokens.length;
}

/** CPU µs per token of three rounds over the same `n` new tokens, on a new verifier. */
async function trial(secret: string, next: () => string, n: number, cacheMaxEntries: number): Promise<number[]> {
  const verifier = createJwtVerifier({ jwt: { kind: 'secret', secret }, maxLifetimeMs: 86_400_000, cacheMaxEntries });
  const verify = (token: string) => verifier.verify(token);
  const tokens = Array.from({ length: n }, next);
  return [await round(verify, tokens), await round(verify, tokens), await round(verify, tokens)];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const secret = randomBytes(24).toString('hex');
  const next = freshStreamTokens(secret, 0);
  // JIT warm-up of every path (new, noted, cached, uncached) before anything is counted.
  for (const entries of [DEFAULT_TOKEN_CACHE_ENTRIES, 0]) await trial(secret, next, 5_000, entries);
  const rows: string[] = [];
  for (const n of [5_000, N]) {
    for (const cacheMaxEntries of [DEFAULT_TOKEN_CACHE_ENTRIES, 0]) {
      // Five trials, the median of each round: the machine's noise is larger than what is measured.
      const trials: number[][] = [];
      for (let i = 0; i < 5; i++) trials.push(await trial(secret, next, n, cacheMaxEntries));
      const cells = [0, 1, 2].map((r) => median(trials.map((t) => t[r] ?? NaN)).toFixed(2));
      rows.push(
        `| ${n.toLocaleString('en-US')} | ${cacheMaxEntries === 0 ? 'off' : cacheMaxEntries.toLocaleString('en-US')} | ` +
          `${cells.join(' | ')} |`,
      );
    }
  }
  console.log(
    `## Token verification, µs of CPU per token, median of 5 trials (node ${process.version})\n\n` +
      '| tokens | cache entries | never seen | seen once | seen twice |\n| ---: | --- | ---: | ---: | ---: |\n' +
      rows.join('\n'),
  );
}

await main();
