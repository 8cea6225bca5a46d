/**
 * The Redis key layout of the bus (prefix `is` by default; every key carries the hash tag `{is}`):
 *   {is}:seq            string  highest id issued (the id counter)
 *   {is}:epoch          string  coverage floor of this key set: readers from below it get a gap.
 *                               Created at the first start; if it is missing later, Redis lost its
 *                               data and the next script to run re-creates it (see redis-scripts.ts)
 *   {is}:log:<topic>    stream  the topic's hot log; entry id `<event id>-0`, field `r` = record JSON
 *   {is}:trim           hash    topic -> highest id trimmed from its log (its gap watermark)
 *   {is}:active         zset    topic -> last publish time (ms), for the idle sweep
 *   {is}:idle           zset    topic -> watermark, for topics whose log aged out and was deleted
 *   {is}:dropped        string  watermark of idle topics folded away (bounded memory), a floor for
 *                               every topic Redis no longer knows
 *   {is}:gaps           hash    topic -> gap mark set at a rejoin after an outage: readers from below
 *                               it get a gap, yet the log's entries below it stay readable
 *   {is}:slots          hash    id slot (1–99) -> "<bus id>|<lease expiry, ms>": the residue of the id
 *                               space an instance may use while Redis is unreachable (redis-id-slot.ts)
 *   {is}:ch:<topic>     pub/sub channel carrying the record JSON
 *   {is}:probe:<id>     pub/sub channel of one instance's self-addressed probe (bus-probe.ts)
 *   {is}:tick           pub/sub channel of the counter's ticks, when the bus is one partition of
 *                       several (partition-barrier.ts, TICK_SCRIPT)
 *   {is}:lost           pub/sub channel of loss notices: a script found that Redis lost writes (its
 *                       data, or its latest writes at a failover) and raised the epoch past them;
 *                       every instance tells its live streams (redis-scripts.ts, ensure_epoch)
 *
 * Why one hash tag for everything, and what it costs on Redis Cluster: see redis-event-bus.ts.
 */
import { keySlot } from '../redis/key-slot.js';

const CLUSTER_SLOTS = 16_384;

/**
 * The key prefix of partition `index` of `count`: `<prefix>.p<index>` and the first suffix that puts
 * its hash tag in the index-th of `count` equal slot ranges. Stable: the same inputs, the same prefix.
 */
export function partitionKeyPrefix(prefix: string, index: number, count: number): string {
  const from = Math.floor((index * CLUSTER_SLOTS) / count);
  const to = Math.floor(((index + 1) * CLUSTER_SLOTS) / count);
  for (let suffix = 0; ; suffix++) {
    const candidate = `${prefix}.p${index}-${suffix}`;
    const slot = keySlot(`{${candidate}}`);
    if (slot >= from && slot < to) return candidate;
  }
}

/**
 * The key of the id slot leases of a deployment's bus run with `partitions` partitions (`prefix`'s
 * own for one, partition 0's for several: the one that leases the instance's slot). Instances run
 * with different numbers would be two buses under different keys: RedisEventBus.start looks for the
 * others' leases.
 */
export function layoutSlotsKey(prefix: string, partitions: number): string {
  return redisBusKeys(partitions === 1 ? prefix : partitionKeyPrefix(prefix, 0, partitions)).slots;
}

/** The keys of one deployment (one prefix). */
export interface RedisBusKeys {
  seq: string;
  epoch: string;
  trim: string;
  idle: string;
  active: string;
  dropped: string;
  gaps: string;
  slots: string;
  logPrefix: string;
  channelPrefix: string;
  /** Channels of the self-addressed probes, one per instance (never a topic channel). */
  probePrefix: string;
  /** Channel of the loss notices (never a topic channel). */
  lostChannel: string;
  /** Channel of the counter's ticks (never a topic channel). */
  tickChannel: string;
  /** Matches every key of the prefix (for SCAN). */
  pattern: string;
}

export function redisBusKeys(prefix: string): RedisBusKeys {
  if (!/^[A-Za-z0-9_.:-]+$/.test(prefix)) {
    throw new Error(`invalid Redis key prefix "${prefix}": use letters, digits and _ . : - (no braces)`);
  }
  const tag = `{${prefix}}`;
  return {
    seq: `${tag}:seq`,
    epoch: `${tag}:epoch`,
    trim: `${tag}:trim`,
    idle: `${tag}:idle`,
    active: `${tag}:active`,
    dropped: `${tag}:dropped`,
    gaps: `${tag}:gaps`,
    slots: `${tag}:slots`,
    logPrefix: `${tag}:log:`,
    channelPrefix: `${tag}:ch:`,
    probePrefix: `${tag}:probe:`,
    lostChannel: `${tag}:lost`,
    tickChannel: `${tag}:tick`,
    pattern: `${tag}:*`,
  };
}
