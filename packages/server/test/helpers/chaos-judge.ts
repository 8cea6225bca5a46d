import { isWellFormedEventId, type ControlEvents, type StreamResetReason } from '@infinitescribe/protocol';

/**
 * The verdict of a chaos run (issue 11), as a pure function of what happened: every answer the
 * publishers got and every frame every client read. It knows nothing of processes or sockets, so
 * its unit test can feed it histories that break each rule.
 */

/** One publish and the answer it got. */
export interface PublishRecord {
  /** Unique per publish (the notification's title): how a received event is matched to its publish. */
  marker: string;
  topic: string;
  critical: boolean;
  /** The instance it was sent to. */
  instance: string;
  /** HTTP status; undefined when no answer came (refused, reset, timed out: outcome unknown). */
  status?: number;
  /** The acknowledged id (2xx). */
  id?: string;
  /** The error code of an error answer. */
  code?: string;
  /** Why no answer came. */
  error?: string;
  sentAt: number;
  answeredAt: number;
}

/** A frame a client read: a published event (it has an id) or a control event. */
export type ReceivedFrame =
  | { kind: 'event'; at: number; id: string; type: string; topic: string; marker?: string }
  | { kind: 'control'; at: number; type: string; data: Record<string, unknown> };

/** One attempt of a client to open a stream, and what it read until it ended. */
export interface ConnectionRecord {
  instance: string;
  /** The `Last-Event-ID` it sent; undefined on a fresh start. */
  lastEventId?: string;
  openedAt: number;
  /** HTTP status; undefined when the request failed before an answer. */
  status?: number;
  /** Why the attempt failed or the stream ended, from the client's side. */
  error?: string;
  frames: ReceivedFrame[];
  endedAt?: number;
  /** Ended by the harness itself (stall, final resume, end of the run), not by the server or a fault. */
  closedByHarness: boolean;
}

/** Everything one auto-reconnecting client went through. */
export interface ClientHistory {
  name: string;
  /** The topics it is subscribed to for the whole run. */
  topics: readonly string[];
  connections: ConnectionRecord[];
}

/** A fault the run injected, from its start until the system was whole again. */
export interface FaultRecord {
  name: string;
  startedAt: number;
  endedAt: number;
}

/** What a chaos run recorded. */
export interface ChaosHistory {
  publishes: readonly PublishRecord[];
  clients: readonly ClientHistory[];
  faults: readonly FaultRecord[];
}

/** The promises of the HTTP API (docs/http-api.md) a run is judged on; each violation names one. */
export const CHAOS_RULES = {
  malformed_id: 'every id has the shape of the HTTP API (docs/http-api.md) (1–64 of [0-9A-Za-z._-])',
  order: 'ids strictly increase on each client stream, across its reconnects',
  duplicate: 'no client receives an id twice',
  shared_id: 'an id names one event: never two different events, across everything received or acknowledged',
  one_event_two_ids: 'an event has one id: what was acknowledged is what is delivered',
  foreign_topic: 'a client receives only the topics it subscribed to',
  critical_lost: 'every critical event answered 201 reaches every client subscribed to its topic',
  refused_delivered: 'an event answered with an error (503, 429, ...) is delivered to no one',
  untold_loss:
    'a lost event is told by stream.reset {gap}: before the client passes over it, and after it was published',
  loss_reported_complete: 'the resume that told a loss reports complete: false',
  liveness: 'every disconnected client is resumed, within the bound',
} as const;

export type ChaosRule = keyof typeof CHAOS_RULES;

/** One broken promise, with the evidence. */
export interface Violation {
  rule: ChaosRule;
  client?: string;
  id?: string;
  marker?: string;
  detail: string;
}

/** How long clients took to be resumed after the disconnects a fault caused. */
export interface ReconnectStats {
  fault: string;
  /** Streams that ended while this fault was the latest one. */
  disconnects: number;
  /** Of those, the ones resumed (a stream with `stream.resumed`, or established fresh). */
  resumed: number;
  p50Ms?: number;
  maxMs?: number;
}

/** What {@link judgeChaos} found. */
export interface ChaosVerdict {
  violations: Violation[];
  reconnects: ReconnectStats[];
  /** Publishes by answer (`201`, `503 store_unavailable`, `no answer`, ...). */
  answers: Record<string, number>;
  /** Events received, over every client. */
  deliveries: number;
  /** Connection attempts, over every client. */
  connections: number;
  /** Control events read that tell a stream's state: `stream.reset {gap}`, `stream.resumed {complete: false}`, ... */
  controls: Record<string, number>;
}

/** Options of {@link judgeChaos}. */
export interface JudgeOptions {
  /** Longest acceptable time from a disconnect to the next resumed stream. */
  livenessMs: number;
  /** The servers' id order (ids are opaque on the wire); default {@link compareIds}. */
  compareIds?: (a: string, b: string) => number;
}

/**
 * Orders ids the way the server issues them: digit runs compared as numbers, the rest as text
 * (so plain decimal ids, and composite ones like `<ms>-<n>`, compare by value).
 */
export function compareIds(a: string, b: string): number {
  const left = a.match(/\d+|\D+/g) ?? [];
  const right = b.match(/\d+|\D+/g) ?? [];
  for (let index = 0; index < Math.min(left.length, right.length); index++) {
    const x = left[index] ?? '';
    const y = right[index] ?? '';
    const xDigits = /^\d/.test(x);
    const yDigits = /^\d/.test(y);
    if (xDigits !== yDigits) return xDigits ? -1 : 1;
    const order = xDigits ? compareDigits(x, y) : x < y ? -1 : x > y ? 1 : 0;
    if (order !== 0) return order;
  }
  return left.length - right.length;
}

function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+(?=\d)/, '');
  const b = y.replace(/^0+(?=\d)/, '');
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A frame with where it was read: which connection of its client. */
interface PlacedFrame {
  frame: ReceivedFrame;
  connection: number;
}

type EventFrame = Extract<ReceivedFrame, { kind: 'event' }>;

const isSuccess = (status: number | undefined) => status !== undefined && status >= 200 && status < 300;

/** Judges a chaos run: every rule of {@link CHAOS_RULES}, and the reconnect time per fault. */
export function judgeChaos(history: ChaosHistory, options: JudgeOptions): ChaosVerdict {
  const compare = options.compareIds ?? compareIds;
  const violations: Violation[] = [];
  const report = (violation: Violation) => violations.push(violation);
  const byMarker = new Map(history.publishes.map((publish) => [publish.marker, publish]));

  for (const publish of history.publishes) {
    if (publish.id !== undefined && !isWellFormedEventId(publish.id)) {
      report({
        rule: 'malformed_id',
        id: publish.id,
        marker: publish.marker,
        detail: `acknowledged ${describe(publish)}`,
      });
    }
  }
  for (const client of history.clients) judgeStream(client, compare, report);
  judgeIdentity(history, report);
  for (const client of history.clients) judgeLosses(client, history.publishes, compare, report);
  judgeRefusals(history, byMarker, report);
  const reconnects = judgeLiveness(history, options.livenessMs, report);

  const answers: Record<string, number> = {};
  for (const publish of history.publishes) {
    const key =
      publish.status === undefined ? 'no answer' : `${publish.status}${publish.code ? ` ${publish.code}` : ''}`;
    answers[key] = (answers[key] ?? 0) + 1;
  }
  return {
    violations,
    reconnects,
    answers,
    deliveries: history.clients.reduce((sum, client) => sum + eventsOf(client).length, 0),
    connections: history.clients.reduce((sum, client) => sum + client.connections.length, 0),
    controls: countControls(history.clients),
  };
}

function countControls(clients: readonly ClientHistory[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const client of clients) {
    for (const { frame } of framesOf(client)) {
      if (frame.kind !== 'control') continue;
      let key: string;
      if (frame.type === 'stream.reset') key = `stream.reset {${(frame.data as ControlEvents['stream.reset']).reason}}`;
      else if (frame.type === 'stream.resumed')
        key = `stream.resumed {complete: ${(frame.data as ControlEvents['stream.resumed']).complete}}`;
      else continue;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}

/** The client's frames in the order it read them, across its connections. */
function framesOf(client: ClientHistory): PlacedFrame[] {
  return client.connections.flatMap((connection, index) =>
    connection.frames.map((frame) => ({ frame, connection: index })),
  );
}

function eventsOf(client: ClientHistory): EventFrame[] {
  return framesOf(client).flatMap(({ frame }) => (frame.kind === 'event' ? [frame] : []));
}

/** Shape, order, duplicates and topics of what one client received. */
function judgeStream(
  client: ClientHistory,
  compare: (a: string, b: string) => number,
  report: (violation: Violation) => void,
): void {
  const seen = new Map<string, number>();
  let previous: { id: string; connection: number } | undefined;
  for (const { frame, connection } of framesOf(client)) {
    if (frame.kind !== 'event') continue;
    const where = `connection #${connection} (${client.connections[connection]?.instance})`;
    if (!isWellFormedEventId(frame.id)) {
      report({ rule: 'malformed_id', client: client.name, id: frame.id, detail: `received on ${where}` });
    }
    if (!client.topics.includes(frame.topic)) {
      report({
        rule: 'foreign_topic',
        client: client.name,
        id: frame.id,
        detail: `${frame.topic} on ${where}; subscribed to ${client.topics.join(', ')}`,
      });
    }
    const earlier = seen.get(frame.id);
    if (earlier !== undefined) {
      report({
        rule: 'duplicate',
        client: client.name,
        id: frame.id,
        marker: frame.marker,
        detail: `received on connection #${earlier}, again on ${where}`,
      });
    } else if (previous !== undefined && compare(frame.id, previous.id) <= 0) {
      report({
        rule: 'order',
        client: client.name,
        id: frame.id,
        marker: frame.marker,
        detail: `${frame.id} on ${where} after ${previous.id} (connection #${previous.connection})`,
      });
    }
    seen.set(frame.id, connection);
    if (previous === undefined || compare(frame.id, previous.id) > 0) previous = { id: frame.id, connection };
  }
}

/** One id, one event; one event, one id: across acknowledgements and receptions. */
function judgeIdentity(history: ChaosHistory, report: (violation: Violation) => void): void {
  const eventsById = new Map<string, Map<string, string>>();
  const idsByMarker = new Map<string, Map<string, string>>();
  const note = (id: string, identity: string, marker: string | undefined, where: string) => {
    const events = eventsById.get(id) ?? new Map<string, string>();
    if (!events.has(identity)) events.set(identity, where);
    eventsById.set(id, events);
    if (marker === undefined) return;
    const ids = idsByMarker.get(marker) ?? new Map<string, string>();
    if (!ids.has(id)) ids.set(id, where);
    idsByMarker.set(marker, ids);
  };
  for (const publish of history.publishes) {
    if (publish.id === undefined) continue;
    note(
      publish.id,
      `${publish.topic} notification ${publish.marker}`,
      publish.marker,
      `acknowledged by ${publish.instance}`,
    );
  }
  for (const client of history.clients) {
    client.connections.forEach((connection, index) => {
      for (const frame of connection.frames) {
        if (frame.kind !== 'event') continue;
        const identity = `${frame.topic} ${frame.type} ${frame.marker ?? '(no marker)'}`;
        note(
          frame.id,
          identity,
          frame.marker,
          `received by ${client.name} on connection #${index} (${connection.instance})`,
        );
      }
    });
  }
  for (const [id, events] of eventsById) {
    if (events.size > 1) report({ rule: 'shared_id', id, detail: listSightings(events) });
  }
  for (const [marker, ids] of idsByMarker) {
    if (ids.size > 1) report({ rule: 'one_event_two_ids', marker, detail: listSightings(ids) });
  }
}

/** `what (where) / what (where)`: each sighting with where it was first seen. */
function listSightings(sightings: ReadonlyMap<string, string>): string {
  return [...sightings].map(([what, where]) => `${what} (${where})`).join(' / ');
}

/**
 * Every acknowledged event on a client's topics, published while it was subscribed: received, or
 * (non-critical only) told lost, twice over:
 * - before the client passed over it (read an id above it, or reached its end), a `stream.reset
 *   {gap}` with no complete resume since: the client knew its stream was not whole when it went on;
 * - at or after its publish, a `stream.reset {gap}`: the client refetched its state after the event
 *   existed (a reset read before the event was even published cannot stand for it).
 * A reset that belongs to a resume tells a loss only if that resume reports `complete: false`.
 */
function judgeLosses(
  client: ClientHistory,
  publishes: readonly PublishRecord[],
  compare: (a: string, b: string) => number,
  report: (violation: Violation) => void,
): void {
  const frames = framesOf(client);
  const firstReady = frames.find(({ frame }) => frame.kind === 'control' && frame.type === 'connection.established');
  const lastReady = Math.max(...client.connections.map((connection) => readyAt(connection) ?? -Infinity));
  if (!firstReady || lastReady === -Infinity) return; // judged by liveness
  const received = new Set(eventsOf(client).map((event) => event.id));
  const resets = frames.flatMap((placed, index) => (isReset(placed.frame, 'gap') ? [index] : []));
  const completeResumes = frames.flatMap((placed, index) => (isCompleteResume(placed.frame) ? [index] : []));
  for (const publish of publishes) {
    const id = publish.id;
    if (id === undefined || !isSuccess(publish.status) || received.has(id)) continue;
    if (!client.topics.includes(publish.topic)) continue;
    // Only what the client could have had: published once it was subscribed, answered before it
    // last caught up.
    if (publish.sentAt < firstReady.frame.at || publish.answeredAt > lastReady) continue;
    if (publish.critical) {
      report({ rule: 'critical_lost', client: client.name, id, marker: publish.marker, detail: describe(publish) });
      continue;
    }
    const found = frames.findIndex(({ frame }) => frame.kind === 'event' && compare(frame.id, id) > 0);
    const passedAt = found === -1 ? frames.length : found;
    const before = resets.filter(
      (reset) => reset < passedAt && !completeResumes.some((resumed) => resumed > reset && resumed < passedAt),
    );
    const after = resets.filter((reset) => (frames[reset]?.frame.at ?? -Infinity) >= publish.sentAt);
    const passedBy = frames[passedAt];
    const passed =
      passedBy?.frame.kind === 'event'
        ? `passed over by ${passedBy.frame.id} on connection #${passedBy.connection} (${client.connections[passedBy.connection]?.instance})`
        : 'nothing after it received';
    const missing = [
      ...(before.length === 0 ? ['no stream.reset {gap} before that, since the last complete resume'] : []),
      ...(after.length === 0 ? ['no stream.reset {gap} at or after its publish'] : []),
    ];
    if (missing.length > 0 && frames.some(({ frame }) => isReset(frame, 'unknown_id') && frame.at >= publish.sentAt)) {
      missing.push('(a stream.reset {unknown_id} came after its publish)');
    }
    const base = { client: client.name, id, marker: publish.marker };
    if (missing.length > 0) {
      report({ rule: 'untold_loss', ...base, detail: `${describe(publish)}; ${passed}; ${missing.join('; ')}` });
      continue;
    }
    const tells = (candidates: number[]) =>
      candidates.some((reset) => resumeOf(client, frames[reset] as PlacedFrame) !== true);
    if (!tells(before) || !tells(after)) {
      report({
        rule: 'loss_reported_complete',
        ...base,
        detail: `${describe(publish)}; ${passed}; its stream.reset {gap} on connection #${frames[before[0] ?? after[0] ?? 0]?.connection} was followed by stream.resumed {complete: true}`,
      });
    }
  }
}

/** The `complete` of the resume a reset belongs to (same connection, after it); undefined if none. */
function resumeOf(client: ClientHistory, reset: PlacedFrame): boolean | undefined {
  const frames = client.connections[reset.connection]?.frames ?? [];
  const resumed = frames
    .slice(frames.indexOf(reset.frame))
    .find((frame) => frame.kind === 'control' && frame.type === 'stream.resumed');
  if (resumed?.kind !== 'control') return undefined;
  return (resumed.data as ControlEvents['stream.resumed']).complete;
}

function isCompleteResume(frame: ReceivedFrame): boolean {
  return (
    frame.kind === 'control' &&
    frame.type === 'stream.resumed' &&
    (frame.data as ControlEvents['stream.resumed']).complete
  );
}

function isReset(frame: ReceivedFrame, reason: StreamResetReason): boolean {
  return (
    frame.kind === 'control' &&
    frame.type === 'stream.reset' &&
    (frame.data as ControlEvents['stream.reset']).reason === reason
  );
}

/** When the connection caught up: `stream.resumed` of a resume, `connection.established` of a fresh start. */
function readyAt(connection: ConnectionRecord): number | undefined {
  const ready = connection.lastEventId === undefined ? 'connection.established' : 'stream.resumed';
  return connection.frames.find((frame) => frame.kind === 'control' && frame.type === ready)?.at;
}

/** Events answered with an error must reach no one. */
function judgeRefusals(
  history: ChaosHistory,
  byMarker: ReadonlyMap<string, PublishRecord>,
  report: (violation: Violation) => void,
): void {
  const receivers = new Map<string, { client: string; id: string; where: string }[]>();
  for (const client of history.clients) {
    client.connections.forEach((connection, index) => {
      for (const frame of connection.frames) {
        if (frame.kind !== 'event' || frame.marker === undefined) continue;
        const publish = byMarker.get(frame.marker);
        if (!publish || publish.status === undefined || isSuccess(publish.status)) continue;
        const seen = receivers.get(frame.marker) ?? [];
        seen.push({ client: client.name, id: frame.id, where: `connection #${index} (${connection.instance})` });
        receivers.set(frame.marker, seen);
      }
    });
  }
  for (const [marker, seen] of receivers) {
    const [first] = seen;
    const publish = byMarker.get(marker);
    if (!first || !publish) continue;
    report({
      rule: 'refused_delivered',
      client: first.client,
      id: first.id,
      marker,
      detail: `${describe(publish)}; received as ${first.id} on ${first.where}, by ${new Set(seen.map((entry) => entry.client)).size} client(s) in all`,
    });
  }
}

/**
 * Every stream that ended without the harness closing it must be followed by a resumed one within
 * the bound; the times are grouped by the fault that was the latest when the stream ended.
 */
function judgeLiveness(
  history: ChaosHistory,
  livenessMs: number,
  report: (violation: Violation) => void,
): ReconnectStats[] {
  const faults = [...history.faults].sort((a, b) => a.startedAt - b.startedAt);
  const times = new Map<string, { disconnects: number; resumedMs: number[] }>();
  const bucket = (at: number) => {
    const name = faults.findLast((fault) => fault.startedAt <= at)?.name ?? 'before any fault';
    const entry = times.get(name) ?? { disconnects: 0, resumedMs: [] };
    times.set(name, entry);
    return entry;
  };
  for (const fault of faults) bucket(fault.startedAt);
  for (const client of history.clients) {
    const ready = client.connections.map(readyAt);
    if (ready.every((at) => at === undefined)) {
      report({
        rule: 'liveness',
        client: client.name,
        detail: `no stream ever opened (${client.connections.length} attempts)`,
      });
      continue;
    }
    client.connections.forEach((connection, index) => {
      if (connection.closedByHarness || ready[index] === undefined) return;
      const endedAt = connection.endedAt ?? Infinity;
      if (endedAt === Infinity) return;
      const entry = bucket(endedAt);
      entry.disconnects++;
      const next = ready.slice(index + 1).find((at) => at !== undefined);
      const waited = next === undefined ? undefined : next - endedAt;
      if (waited !== undefined) entry.resumedMs.push(waited);
      if (waited === undefined || waited > livenessMs) {
        report({
          rule: 'liveness',
          client: client.name,
          detail:
            `connection #${index} (${connection.instance}) ended (${connection.error ?? 'closed'}) and ` +
            (waited === undefined ? 'was never resumed' : `was resumed only after ${waited} ms`),
        });
      }
    });
  }
  return [...times].map(([fault, entry]) => {
    const sorted = [...entry.resumedMs].sort((a, b) => a - b);
    return {
      fault,
      disconnects: entry.disconnects,
      resumed: sorted.length,
      ...(sorted.length > 0
        ? { p50Ms: sorted[Math.floor((sorted.length - 1) / 2)], maxMs: sorted[sorted.length - 1] }
        : {}),
    };
  });
}

function describe(publish: PublishRecord): string {
  const answer =
    publish.status === undefined
      ? `no answer (${publish.error ?? 'unknown'})`
      : `${publish.status}${publish.code ? ` ${publish.code}` : ''}${publish.id ? ` id ${publish.id}` : ''}`;
  return (
    `${publish.critical ? 'critical' : 'non-critical'} ${publish.marker} on ${publish.topic} via ${publish.instance}: ` +
    `${answer} at +${publish.answeredAt - publish.sentAt} ms`
  );
}

/** The verdict as text: answers, reconnect times per fault, and each broken rule with examples. */
export function formatVerdict(verdict: ChaosVerdict, examplesPerRule = 5): string {
  const lines = [
    `publishes: ${Object.entries(verdict.answers)
      .map(([answer, count]) => `${answer} ×${count}`)
      .join(', ')}`,
    `deliveries: ${verdict.deliveries} over ${verdict.connections} connection attempts; ${Object.entries(
      verdict.controls,
    )
      .map(([control, count]) => `${control} ×${count}`)
      .join(', ')}`,
    'reconnects (from a stream ending to the next resumed one):',
    ...verdict.reconnects.map(
      (entry) =>
        `  ${entry.fault}: ${entry.resumed}/${entry.disconnects} resumed` +
        (entry.p50Ms === undefined ? '' : `, p50 ${entry.p50Ms} ms, max ${entry.maxMs} ms`),
    ),
  ];
  for (const [rule, violations] of groupByRule(verdict.violations)) {
    lines.push(`✗ ${rule} ×${violations.length}: ${CHAOS_RULES[rule]}`);
    for (const violation of violations.slice(0, examplesPerRule)) lines.push(`    ${formatViolation(violation)}`);
  }
  if (verdict.violations.length === 0) lines.push('✓ every rule held');
  return lines.join('\n');
}

/** Violations grouped by rule, in the order of {@link CHAOS_RULES}. */
export function groupByRule(violations: readonly Violation[]): [ChaosRule, Violation[]][] {
  return (Object.keys(CHAOS_RULES) as ChaosRule[]).flatMap((rule) => {
    const matching = violations.filter((violation) => violation.rule === rule);
    return matching.length > 0 ? [[rule, matching] as [ChaosRule, Violation[]]] : [];
  });
}

function formatViolation(violation: Violation): string {
  const who = [violation.client, violation.id && `id ${violation.id}`, violation.marker].filter(Boolean).join(', ');
  return `${who ? `[${who}] ` : ''}${violation.detail}`;
}
