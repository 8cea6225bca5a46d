import { ID_SLOTS } from '../../core/event-id.js';

/**
 * Lua scripts of the Redis bus (see redis-bus-keys.ts for the key layout). Each one runs
 * atomically inside Redis, so id assignment, append, trimming and PUBLISH are one step, and a read
 * sees one consistent state of the logs and their trim watermarks.
 *
 * Ids are Lua numbers (doubles): exact up to 2^53, which is the id space's limit anyway. They are
 * always formatted with `%.0f`, because Lua's tostring would switch to exponent notation. A stream
 * entry id is `<event id>-0`, so XRANGE by event id needs no lookup. Time comes from Redis's TIME,
 * one clock for every instance.
 */

const PRELUDE = `
local function fmt(n) return string.format('%.0f', n) end
local function num(v) if v then return tonumber(v) or 0 end return 0 end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function entry_id(entry) return tonumber(string.match(entry[1], '^(%d+)')) end
-- The newest entry older than the age cut (ids are >= their publish time * 1000, so an id below
-- the cut is certainly older than the age limit), or 0.
local function newest_aged(log_key, age_cut)
  if age_cut <= 0 then return 0 end
  local aged = redis.call('XREVRANGE', log_key, '(' .. fmt(age_cut) .. '-0', '-', 'COUNT', 1)
  if aged[1] then return entry_id(aged[1]) end
  return 0
end
-- Returns the id counter (raised to the caller's floor) and the coverage floor. A missing epoch
-- means Redis lost its data since the bus started; a counter below 'confirmed' (an id this
-- caller saw Redis issue) means Redis lost its latest writes (a failover to a replica that had
-- not received them: replication is asynchronous). Either way every id a client may hold (the
-- old counter, the caller's highest known id, anything issued before now) is declared not covered
-- (a reader at or above the coverage has no gap, hence the + 1), the counter jumps past all of
-- them, so ids never go backwards and every id from before the loss gets an honest gap, and a loss
-- notice {"lost":coverage} goes to every instance (lost_channel): their live streams may have
-- missed what was lost.
local function ensure_epoch(seq_key, epoch_key, floor, now, confirmed, lost_channel)
  local stored = num(redis.call('GET', seq_key))
  local seq = math.max(stored, floor)
  local epoch = redis.call('GET', epoch_key)
  if epoch and stored >= confirmed then return seq, tonumber(epoch) end
  local coverage = math.max(seq, confirmed, now * 1000) + 1
  if epoch then coverage = math.max(coverage, tonumber(epoch)) end
  redis.call('SET', epoch_key, fmt(coverage))
  redis.call('SET', seq_key, fmt(coverage))
  redis.call('PUBLISH', lost_channel, '{"lost":' .. fmt(coverage) .. '}')
  return coverage, coverage
end
`;

/**
 * start. KEYS: seq, epoch. ARGV: idFloor, coveredFrom.
 * Raises the counter to idFloor (never lowers it); creates the epoch if missing (a fresh Redis:
 * coverage starts at coveredFrom, as the port defines it). Returns {seq, epoch, created}.
 */
export const START_SCRIPT = `${PRELUDE}
local seq = num(redis.call('GET', KEYS[1]))
local id_floor = tonumber(ARGV[1])
local created = 0
local epoch = redis.call('GET', KEYS[2])
if epoch then
  epoch = tonumber(epoch)
else
  epoch = math.max(tonumber(ARGV[2]), seq)
  redis.call('SET', KEYS[2], fmt(epoch))
  created = 1
end
if id_floor > seq then
  seq = id_floor
  redis.call('SET', KEYS[1], fmt(seq))
end
return { fmt(seq), fmt(epoch), created }
`;

/**
 * publish. KEYS: seq, epoch, log, trim, idle, active, dropped.
 * ARGV: topic, floor, maxEvents, maxAgeMs, draft JSON (an object without id), channel, confirmed,
 * loss channel (see ensure_epoch), residue.
 * 1. id = max(counter + 1, caller's floor + 1, TIME in ms * 1000), after a loss check (ensure_epoch),
 *    rounded up to the counter's residue modulo ID_SLOTS (0, or the partition's: event-id.ts);
 * 2. XADD `<id>-0` with the record JSON (id first) and store the counter;
 * 3. a topic new to the trim hash inherits its watermark (from `idle`, else the `dropped` floor);
 * 4. trim exactly by count and by age, recording the highest trimmed id as the watermark;
 * 5. mark the topic active (for the idle sweep) and PUBLISH the record. Returns the id.
 */
export const PUBLISH_SCRIPT = `${PRELUDE}
local seq_key, epoch_key, log_key, trim_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local idle_key, active_key, dropped_key = KEYS[5], KEYS[6], KEYS[7]
local topic, floor = ARGV[1], tonumber(ARGV[2])
local max_events, max_age, draft, channel = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local now = now_ms()
local seq = ensure_epoch(seq_key, epoch_key, floor, now, tonumber(ARGV[7]), ARGV[8])
local id = math.max(seq + 1, now * 1000)
id = id + (tonumber(ARGV[9]) - id % ${ID_SLOTS}) % ${ID_SLOTS}
if id > 9007199254740991 then return redis.error_reply('ERR event id space exhausted (2^53)') end
local id_str = fmt(id)
local record = '{"id":' .. id_str .. ',' .. string.sub(draft, 2)
redis.call('XADD', log_key, id_str .. '-0', 'r', record)
redis.call('SET', seq_key, id_str)
if redis.call('HEXISTS', trim_key, topic) == 0 then
  local base = redis.call('ZSCORE', idle_key, topic)
  if base then redis.call('ZREM', idle_key, topic) else base = redis.call('GET', dropped_key) end
  redis.call('HSET', trim_key, topic, fmt(num(base)))
end
local cut = 0
local len = redis.call('XLEN', log_key)
if len > max_events then
  local over = redis.call('XRANGE', log_key, '-', '+', 'COUNT', len - max_events)
  cut = entry_id(over[#over])
end
cut = math.max(cut, newest_aged(log_key, (now - max_age) * 1000))
if cut > 0 then
  redis.call('XTRIM', log_key, 'MINID', fmt(cut) .. '-1')
  if cut > num(redis.call('HGET', trim_key, topic)) then redis.call('HSET', trim_key, topic, fmt(cut)) end
end
redis.call('ZADD', active_key, now, topic)
redis.call('PUBLISH', channel, record)
return id_str
`;

/**
 * read, for several readers at once (the bus batches the reads of one event-loop turn).
 * KEYS: seq, epoch, trim, idle, dropped, gaps, then one log key per topic.
 * ARGV: floor, limit, maxAgeMs, confirmed, loss channel (see ensure_epoch), then per topic (same
 * order as their log keys) the topic and the lowest id its readers stand at.
 * A reader from below a topic's gap mark (REJOIN_SCRIPT) gets a gap, and still every entry the log
 * holds above the watermark. Age trimming is applied virtually (entries past the age limit count
 * as trimmed), so the script only writes after a loss (ensure_epoch). Returns {seq
 * (raised to the floor), the counter itself (every id issued so far is at or below it, every later
 * one above), per topic {coverage, oldest id still held or '', the newest limit+1 entries after
 * max(lowest id, watermark), newest first, as entry id then record JSON}}. The newest limit+1
 * entries after a higher id are the first of those above it, so one read serves every reader of
 * the topic.
 */
export const READ_SCRIPT = `${PRELUDE}
local now = now_ms()
local seq, epoch = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[1]), now, tonumber(ARGV[4]), ARGV[5])
local limit, max_age = tonumber(ARGV[2]), tonumber(ARGV[3])
local dropped = num(redis.call('GET', KEYS[5]))
local age_cut = (now - max_age) * 1000
local out = { fmt(seq), fmt(num(redis.call('GET', KEYS[1]))) }
for i = 6, #ARGV, 2 do
  local topic, after, log_key = ARGV[i], tonumber(ARGV[i + 1]), KEYS[6 + (i - 4) / 2]
  local wm = redis.call('HGET', KEYS[3], topic)
  if not wm then wm = redis.call('ZSCORE', KEYS[4], topic) end
  if wm then wm = tonumber(wm) else wm = dropped end
  wm = math.max(wm, newest_aged(log_key, age_cut))
  local first_from = '-'
  if wm > 0 then first_from = '(' .. fmt(wm) .. '-0' end
  local first = redis.call('XRANGE', log_key, first_from, '+', 'COUNT', 1)
  local oldest = ''
  if first[1] then oldest = fmt(entry_id(first[1])) end
  local from = math.max(after, wm)
  local entries = redis.call('XREVRANGE', log_key, '+', '(' .. fmt(from) .. '-0', 'COUNT', limit + 1)
  local records = {}
  for j, entry in ipairs(entries) do
    records[2 * j - 1] = entry[1]
    records[2 * j] = entry[2][2]
  end
  local gap = num(redis.call('HGET', KEYS[6], topic))
  out[#out + 1] = { fmt(math.max(epoch, wm, gap)), oldest, records }
end
return out
`;

/** head. KEYS: seq, epoch. ARGV: floor, confirmed, loss channel. Returns the counter (after a loss check). */
export const HEAD_SCRIPT = `${PRELUDE}
local seq = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[1]), now_ms(), tonumber(ARGV[2]), ARGV[3])
return fmt(seq)
`;

/**
 * tick, for a bus split into partitions (partition-barrier.ts). KEYS: seq, epoch. ARGV: floor,
 * confirmed, loss channel (see ensure_epoch), target, tick channel.
 * Raises the counter to at least target and PUBLISHes its value on the tick channel: it reaches each
 * subscriber after everything this counter issued before, and every id it issues later is above
 * it. Returns the value.
 */
export const TICK_SCRIPT = `${PRELUDE}
local seq = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[1]), now_ms(), tonumber(ARGV[2]), ARGV[3])
-- Stored even when the target is not above it: seq may be the caller's floor, above the counter,
-- and the value told must be one the counter has really reached.
seq = math.max(seq, tonumber(ARGV[4]))
redis.call('SET', KEYS[1], fmt(seq))
redis.call('PUBLISH', ARGV[5], fmt(seq))
return fmt(seq)
`;

/**
 * sweep. KEYS: trim, idle, active, dropped, gaps. ARGV: log key prefix, maxAgeMs, batch,
 * maxIdleTopics. Topics with no publish for maxAgeMs get their aged entries trimmed; an emptied log
 * is deleted and its watermark (raised to its gap mark, which has no entry left to keep readable)
 * moves from the trim hash to the `idle` sorted set; a gap mark the watermark has passed is
 * deleted. Past maxIdleTopics, the idle topics with the lowest watermarks are folded into the
 * `dropped` floor (a conservative watermark for every topic Redis no longer knows). Returns how
 * many topics it looked at.
 * Log keys are derived from the topics, not declared in KEYS: fine on a single node and on a
 * Cluster, since every key shares the hash tag (same slot).
 */
export const SWEEP_SCRIPT = `${PRELUDE}
local trim_key, idle_key, active_key, dropped_key, gaps_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
local max_age = tonumber(ARGV[2])
local stale = redis.call('ZRANGEBYSCORE', active_key, '-inf', '(' .. fmt(now - max_age), 'LIMIT', 0, tonumber(ARGV[3]))
for _, topic in ipairs(stale) do
  local log_key = ARGV[1] .. topic
  local wm = num(redis.call('HGET', trim_key, topic))
  local cut = newest_aged(log_key, (now - max_age) * 1000)
  if cut > 0 then
    redis.call('XTRIM', log_key, 'MINID', fmt(cut) .. '-1')
    wm = math.max(wm, cut)
  end
  local gap = num(redis.call('HGET', gaps_key, topic))
  if redis.call('XLEN', log_key) == 0 then
    wm = math.max(wm, gap)
    redis.call('DEL', log_key)
    redis.call('ZREM', active_key, topic)
    redis.call('HDEL', trim_key, topic)
    redis.call('HDEL', gaps_key, topic)
    redis.call('ZADD', idle_key, fmt(wm), topic)
  else
    if cut > 0 then redis.call('HSET', trim_key, topic, fmt(wm)) end
    if gap > 0 and gap <= wm then redis.call('HDEL', gaps_key, topic) end
    redis.call('ZADD', active_key, now, topic)
  end
end
local excess = redis.call('ZCARD', idle_key) - tonumber(ARGV[4])
if excess > 0 then
  local popped = redis.call('ZPOPMIN', idle_key, excess)
  local top = tonumber(popped[#popped])
  if top > num(redis.call('GET', dropped_key)) then redis.call('SET', dropped_key, fmt(top)) end
end
return #stale
`;

/**
 * rejoin. KEYS: seq, epoch, trim, idle, active, dropped, gaps.
 * ARGV: floor, sender id, channel prefix, confirmed, loss channel (see ensure_epoch), then the
 * topics this instance published on while Redis
 * was unreachable (local delivery only). Those events never entered the log, and their ids
 * interleave with ids other instances issued meanwhile, so no reader from before now can be
 * resumed exactly on those topics: the counter moves to `mark` (>= every id issued so far), each
 * topic gets `mark` as its gap mark (readers from before it get a gap: stream.reset, then the
 * critical events from the store), and a gap notice `{"gap":mark,"from":sender}` is published on
 * each topic so that live subscribers on every instance can tell their streams to resume.
 * The mark is not a watermark: what the log holds below it (events other instances, or this one,
 * published in Redis before this script ran, critical ones among them, whose stored copy may not
 * have its id yet) stays readable. The topic keeps or takes its watermark in the trim hash, where
 * the idle sweep finds it. Returns mark.
 */
export const REJOIN_SCRIPT = `${PRELUDE}
local now = now_ms()
local seq = ensure_epoch(KEYS[1], KEYS[2], tonumber(ARGV[1]), now, tonumber(ARGV[4]), ARGV[5])
local mark = math.max(seq, now * 1000 - 1)
redis.call('SET', KEYS[1], fmt(mark))
local notice = '{"gap":' .. fmt(mark) .. ',"from":"' .. ARGV[2] .. '"}'
for i = 6, #ARGV do
  local topic = ARGV[i]
  if redis.call('HEXISTS', KEYS[3], topic) == 0 then
    local wm = redis.call('ZSCORE', KEYS[4], topic)
    if wm then redis.call('ZREM', KEYS[4], topic) else wm = redis.call('GET', KEYS[6]) end
    redis.call('HSET', KEYS[3], topic, fmt(num(wm)))
  end
  redis.call('HSET', KEYS[7], topic, fmt(mark))
  redis.call('ZADD', KEYS[5], now, topic)
  redis.call('PUBLISH', ARGV[3] .. topic, notice)
end
return fmt(mark)
`;

/**
 * id slot. KEYS: slots. ARGV: owner (bus id), ttlMs, preferred slot (0: none), random start, first
 * slot. Leases a residue of the id space for local ids while Redis is unreachable
 * (redis-id-slot.ts): the preferred slot if it is free, expired or the owner's already (a renewal),
 * else the first such slot from a random start. Slots are first…ID_SLOTS-1 (the residues below
 * are Redis's counters: 0, or one per partition). ttlMs 0 releases the preferred slot. Returns the
 * slot leased, or 0 when none is free.
 */
export const SLOT_SCRIPT = `${PRELUDE}
local now = now_ms()
local owner, ttl, preferred, start = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local first = tonumber(ARGV[5])
local function available(slot)
  local lease = redis.call('HGET', KEYS[1], tostring(slot))
  if not lease then return true end
  local bar = string.find(lease, '|', 1, true)
  return string.sub(lease, 1, bar - 1) == owner or tonumber(string.sub(lease, bar + 1)) <= now
end
local chosen = 0
if preferred >= first and available(preferred) then
  chosen = preferred
elseif ttl > 0 then
  for i = 0, ${ID_SLOTS} - first - 1 do
    local slot = first + (start + i) % (${ID_SLOTS} - first)
    if available(slot) then
      chosen = slot
      break
    end
  end
end
if chosen > 0 then redis.call('HSET', KEYS[1], tostring(chosen), owner .. '|' .. fmt(now + ttl)) end
return chosen
`;

/**
 * The script for a Redis Cluster: its PUBLISHes become SPUBLISH (sharded pub/sub). A script may
 * SPUBLISH only to a channel of its keys' slot; the bus's channels carry the keys' hash tag.
 */
export function shardedPubSub(script: string): string {
  const sharded = script.replaceAll("redis.call('PUBLISH',", "redis.call('SPUBLISH',");
  if (sharded === script) throw new Error('no PUBLISH in this script');
  return sharded;
}
