import { randomFillSync } from 'node:crypto';

/** Ids made from one fill of the random pool. */
const IDS_PER_FILL = 256;
const pool = Buffer.alloc(16 * IDS_PER_FILL);
let nextInPool = IDS_PER_FILL;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The id being written; copied out as one flat string. */
const text = Buffer.alloc(36);

/**
 * A new stream's id: a random UUID (version 4), as one flat string.
 *
 * Written here rather than by `crypto.randomUUID()`, which builds its result by concatenating 20
 * pieces: V8 keeps such a string as a tree of some 15 cons strings (about 300 bytes) for as long
 * as it lives (a stream's whole life), and flattening it made more garbage. During a connect
 * burst every byte a new stream allocates is work for the young-generation collector, whose pauses
 * are the connect tail (bench/connect-alloc.ts). The bytes come from the same source as
 * randomUUID's: the CSPRNG, drawn ahead in a pool.
 */
export function newConnectionId(): string {
  if (nextInPool === IDS_PER_FILL) {
    randomFillSync(pool);
    nextInPool = 0;
  }
  const at = 16 * nextInPool++;
  let out = 0;
  for (let index = 0; index < 16; index++) {
    let byte = pool[at + index] as number;
    // The version (4) and the variant (RFC 9562), set as randomUUID sets them.
    if (index === 6) byte = (byte & 0x0f) | 0x40;
    else if (index === 8) byte = (byte & 0x3f) | 0x80;
    if (index === 4 || index === 6 || index === 8 || index === 10) text[out++] = 0x2d; // '-'
    text[out++] = HEX[byte >> 4] as number;
    text[out++] = HEX[byte & 0x0f] as number;
  }
  return text.toString('latin1');
}
