import type { Redis } from 'ioredis';
import { withTimeout } from '../../core/with-timeout.js';

/** How long a clean QUIT may take before the socket is dropped anyway. */
const QUIT_TIMEOUT_MS = 1_000;

/**
 * Closes a Redis client: QUIT when it is connected (so pending replies arrive), bounded, because a
 * Redis that does not answer must not hold up shutdown; then the socket is dropped in any case.
 */
export async function quitRedis(client: Redis): Promise<void> {
  try {
    if (client.status === 'ready') await withTimeout(client.quit(), QUIT_TIMEOUT_MS, 'QUIT unanswered');
  } catch {
    // Closing anyway.
  } finally {
    client.disconnect();
  }
}
