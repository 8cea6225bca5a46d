import type { EventBus } from '../../src/adapters/bus/event-bus.js';

/** `bus` with `before` run ahead of each call of `method` (it may wait, or throw to fail the call). */
function before<TMethod extends 'read' | 'publish'>(
  bus: EventBus,
  method: TMethod,
  hook: () => Promise<void>,
): EventBus {
  return new Proxy(bus, {
    get(target, property, receiver) {
      if (property === method) {
        return async (...args: Parameters<EventBus[TMethod]>) => {
          await hook();
          return (target[method] as (...callArgs: Parameters<EventBus[TMethod]>) => unknown)(...args);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * The real bus with a network-like delay before each hot-log read, as a remote bus (Redis) has.
 * It widens the window between "subscribed" and "log read" so that events published inside it
 * reach a resuming connection both live and in the replay: the seam must deduplicate them.
 */
export function withReadLatency(bus: EventBus, delayMs: number): EventBus {
  return beforeRead(bus, () => new Promise((resolve) => setTimeout(resolve, delayMs)));
}

/** The real bus with `hook` run before each hot-log read (a delay, or a gate the test opens). */
export function beforeRead(bus: EventBus, hook: () => Promise<void>): EventBus {
  return before(bus, 'read', hook);
}

/**
 * The real bus with `hook` run before each publish: a delay keeps a publish in flight (so that a
 * duplicate request arrives meanwhile), a throw fails it as a Redis error would.
 */
export function beforePublish(bus: EventBus, hook: () => Promise<void>): EventBus {
  return before(bus, 'publish', hook);
}
