import { randomUUID } from 'node:crypto';

/**
 * A new stream's id: a random UUID (v4), as one flat string.
 *
 * `crypto.randomUUID()` builds its result by concatenating 20 pieces, and V8 keeps such a result as
 * a tree of about 15 cons strings (some 300 bytes) for as long as the string lives — for a stream's
 * id, the stream's whole life. During a connect burst every live byte of a new stream is copied by
 * the young-generation GC (twice: into the survivor space, then into the old generation), and the
 * length of those pauses is the connect tail; one flat copy is a sixth of the size. The round trip
 * through a latin1 Buffer is the cheapest way to get a flat copy (no string is interned).
 */
export function newConnectionId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}
