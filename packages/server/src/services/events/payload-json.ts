import { InvalidEventError } from '../../core/errors.js';

/**
 * Deepest nesting of objects and arrays a payload may have (the payload itself is level 1).
 * Real payloads nest a handful of levels; past a few thousand, JSON.stringify overflows the stack,
 * and an event that cannot be serialised must be refused before it gets an id, not found unsendable
 * on the way out to every stream and resume that crosses it.
 */
export const MAX_PAYLOAD_DEPTH = 64;

/**
 * Checks that `payload` is plain JSON data within {@link MAX_PAYLOAD_DEPTH}: no number JSON cannot
 * represent (NaN and ±Infinity, which JSON.stringify would silently turn into null; `1e400` in a
 * request body parses to Infinity), no BigInt, no cycle (a cycle nests without end). Iterative, so
 * a hostile depth cannot overflow the stack here either.
 * @throws InvalidEventError naming the problem.
 */
export function assertJsonPayload(payload: unknown, what = 'payload'): void {
  const stack: { value: unknown; depth: number }[] = [{ value: payload, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth } = item;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new InvalidEventError(`${what} holds ${value}, which JSON cannot represent`);
    } else if (typeof value === 'bigint') {
      throw new InvalidEventError(`${what} holds a BigInt, which JSON cannot represent`);
    } else if (typeof value === 'object' && value !== null) {
      if (depth > MAX_PAYLOAD_DEPTH) {
        throw new InvalidEventError(
          `${what} nests deeper than ${MAX_PAYLOAD_DEPTH} levels of objects and arrays (or refers to itself)`,
        );
      }
      const children = Array.isArray(value) ? value : Object.values(value);
      for (const child of children) stack.push({ value: child, depth: depth + 1 });
    }
  }
}

/**
 * The payload's JSON, computed once per event before it gets an id: the bus, the store and every
 * frame reuse these bytes. `undefined` has no JSON form and is kept as `null`.
 * @throws InvalidEventError when the payload is not plain JSON data (see {@link assertJsonPayload})
 *   or cannot be serialised for another reason (a throwing `toJSON`).
 */
export function serialisePayload(payload: unknown): string {
  assertJsonPayload(payload);
  try {
    return JSON.stringify(payload) ?? 'null';
  } catch (error) {
    throw new InvalidEventError(
      `payload cannot be serialised: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
