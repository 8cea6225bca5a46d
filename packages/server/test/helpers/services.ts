import net from 'node:net';

/** Where the real servers the adapter suites need live (DEVELOPERS.md). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function canConnect(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Whether a suite needing the server at `url` can run. Outside CI an unreachable server skips
 * the suite with a visible warning; with CI=true it is a failure, so CI can never go green
 * without having exercised the real adapter.
 */
export async function requireService(name: string, url: string): Promise<boolean> {
  if (await canConnect(url)) return true;
  return skipOutsideCi(name, `${url} is unreachable`, 'start it to run them');
}

/**
 * Skips (false, with a visible warning) a suite that lacks `name` because of `reason`; with
 * CI=true throws instead, so CI never goes green without having run it.
 */
export function skipOutsideCi(name: string, reason: string, remedy: string): false {
  if (process.env.CI === 'true') {
    throw new Error(`${name}: ${reason} and CI=true: the ${name} suite must run in CI`);
  }
  console.warn(`\n⚠️  SKIPPING ${name} tests: ${reason} (${remedy})\n`);
  return false;
}
