import type { EventDraft } from '../../src/core/event-record.js';

/** A `notification` draft on `topic`, as the bus suites publish it. */
export function notificationDraft(topic: string, title = 'x', critical = false): EventDraft {
  return { topic, type: 'notification', payload: { title, level: 'info' }, ts: new Date().toISOString(), critical };
}

/** Polls `predicate` every 5 ms until it holds; throws after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
