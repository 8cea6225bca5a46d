import type { EventRecord } from '../../core/event-record.js';
import type { BusListener, BusLogger, Unsubscribe } from './event-bus.js';

/** The local listeners of one topic, sharing one subscription to it. */
export interface TopicListenerGroup {
  listeners: Set<BusListener>;
}

/**
 * Adds `listener` to `group` and resolves, once `ready` has, with its Unsubscribe; if `ready`
 * rejects, the listener leaves again and the rejection is the caller's. Each call wraps the
 * listener, so the same function subscribed twice counts twice. The last listener out calls
 * `lastOut(group)`, which ends the shared subscription if the group is still the topic's.
 */
export async function joinTopic<G extends TopicListenerGroup>(
  group: G,
  listener: BusListener,
  ready: Promise<unknown>,
  lastOut: (group: G) => Promise<void>,
): Promise<Unsubscribe> {
  const own: BusListener = (event) => listener(event);
  group.listeners.add(own);
  try {
    await ready;
  } catch (error) {
    group.listeners.delete(own);
    throw error;
  }
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    group.listeners.delete(own);
    if (group.listeners.size === 0) await lastOut(group);
  };
}

/**
 * Hands `record` to each listener. One that throws is logged and neither keeps the record from the
 * others nor fails the caller: the record is published already (a caller told "failed" would
 * publish it again).
 */
export function notifyListeners(
  listeners: Iterable<BusListener>,
  record: EventRecord,
  logger: BusLogger | undefined,
): void {
  for (const listener of listeners) {
    try {
      listener(record);
    } catch (error) {
      logger?.warn({ err: error, topic: record.topic }, 'a bus listener threw');
    }
  }
}
