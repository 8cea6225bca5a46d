/**
 * The id space. An id is an integer, `max(previous + 1, now_ms * IDS_PER_MS)`: strictly increasing
 * in publish order, and time-seeded so that a restart that lost the counter (process, Redis) still
 * issues ids above every id handed out before it, as long as the clock does not run backwards.
 * The store's highest id is a second floor for that case. On the wire it is plain decimal,
 * well inside the API's 64 characters of [0-9A-Za-z._-]; clients treat it as opaque.
 *
 * With Redis, ids are split by their residue modulo {@link ID_SLOTS} (their last two decimal
 * digits), so that an id names one event cluster-wide in every failure mode: Redis's counter issues
 * only ids ≡ 0, and an instance cut off from Redis issues only ids ≡ its slot (1–99, leased in
 * Redis while it was connected: see redis-id-slot.ts). Two instances cut off at once, and the ones
 * still on Redis, can never issue the same id. The in-process bus (one process) uses every residue.
 */
export const IDS_PER_MS = 1000;

/**
 * Residue classes of the Redis id space: 0 is Redis's counter, 1…ID_SLOTS-1 are instances' slots.
 * A bus split into partitions (docs/sharding-the-bus.md) gives each partition's counter its own
 * residue, 0…partitions-1, and instances the rest.
 */
export const ID_SLOTS = 100;

/** Most partitions one bus may have: the residues above are left for instances cut off from Redis. */
export const MAX_BUS_PARTITIONS = 16;

/** Whether `id` came from one of Redis's `counters` (residues below it), not from an instance alone. */
export function isRedisIssued(id: number, counters = 1): boolean {
  return id % ID_SLOTS < counters;
}

/** Largest id we accept: beyond Number.MAX_SAFE_INTEGER an id would lose precision. */
const MAX_ID = Number.MAX_SAFE_INTEGER;

const DECIMAL_ID = /^(?:0|[1-9][0-9]{0,15})$/;

/** The next id after `previous` at time `nowMs`. */
export function nextEventId(previous: number, nowMs: number): number {
  return Math.max(previous + 1, Math.floor(nowMs) * IDS_PER_MS);
}

/** The next id after `previous` at time `nowMs` that is ≡ `slot` (mod {@link ID_SLOTS}). */
export function nextEventIdInSlot(previous: number, nowMs: number, slot: number): number {
  const next = nextEventId(previous, nowMs);
  return next + ((slot - (next % ID_SLOTS) + ID_SLOTS) % ID_SLOTS);
}

/** The id floor a fresh counter starts from at `nowMs` (the first id issued is above it). */
export function idFloorAt(nowMs: number): number {
  return Math.floor(nowMs) * IDS_PER_MS - 1;
}

/** Wire form of an id. */
export function formatEventId(id: number): string {
  return String(id);
}

/** Parses a wire id; `undefined` when it is not one of ours (malformed). */
export function parseEventId(raw: string): number | undefined {
  if (!DECIMAL_ID.test(raw)) return undefined;
  const id = Number(raw);
  return id <= MAX_ID ? id : undefined;
}
