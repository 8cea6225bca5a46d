import type { EventBus } from '../../src/bus/event-bus.js';

/**
 * The real bus with a network-like delay before each hot-log read, as a remote bus (Redis) has.
 * It widens the window between "subscribed" and "log read" so that events published inside it
 * reach a resuming connection both live and in the replay: the seam must deduplicate them.
 */
export function withReadLatency(bus: EventBus, delayMs: number): EventBus {
  return new Proxy(bus, {
    get(target, property, receiver) {
      if (property === 'read') {
        return async (...args: Parameters<EventBus['read']>) => {
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          return target.read(...args);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
