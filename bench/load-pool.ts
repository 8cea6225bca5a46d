import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Histogram, nowMs } from './histogram.js';
import type { LoadCommand, LoadReply, LoadStats } from './ipc.js';
import { forkTs, stopChild } from './processes.js';

/** A command before the channel gives it an id. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Command = WithoutId<LoadCommand>;

/** Merged view of the load generators' stats. */
export interface PoolStats extends Omit<LoadStats, 'latency'> {
  latency: Histogram;
}

/** Merged result of opening streams over every generator. */
export interface PoolOpenResult {
  established: number;
  failed: number;
  failures: Record<string, number>;
  connect: Histogram;
  elapsedMs: number;
}

const GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));

/** One forked load generator and its request/reply channel. */
class Generator {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: LoadReply) => void; reject: (error: Error) => void }>();

  constructor(readonly child: ChildProcess) {
    child.on('message', (reply: LoadReply) => {
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.waiting.delete(reply.id);
      if (reply.type === 'error') waiter.reject(new Error(`load generator: ${reply.message}`));
      else waiter.resolve(reply);
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`load generator exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  call<T extends LoadReply['type']>(
    command: Command,
    expect: T,
    timeoutMs: number,
  ): Promise<Extract<LoadReply, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`load generator: no reply to ${command.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.type === expect) resolve(reply as Extract<LoadReply, { type: T }>);
          else reject(new Error(`load generator: expected ${expect}, got ${reply.type}`));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ ...command, id });
    });
  }

  /** This generator's clock minus ours, from the IPC ping with the shortest round trip. */
  async clockOffset(): Promise<number> {
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < 20; i++) {
      const sentAt = nowMs();
      const pong = await this.call({ type: 'ping' }, 'pong', 5_000);
      const back = nowMs();
      if (back - sentAt < best.rtt) best = { rtt: back - sentAt, offset: pong.now - (sentAt + back) / 2 };
    }
    return best.offset;
  }
}

/**
 * The load-generator processes of one server's run. One process holds up to ~10,000 client sockets
 * (the fd limit is 20,000 per process), so larger runs spread over several.
 */
export class LoadPool {
  private constructor(private readonly generators: Generator[]) {}

  static async start(options: {
    processes: number;
    baseUrl: string;
    streamPath: string;
    secret: string;
    establishedOnHead?: boolean;
  }): Promise<LoadPool> {
    const generators: Generator[] = [];
    const pool = new LoadPool(generators);
    try {
      for (let i = 0; i < options.processes; i++) generators.push(new Generator(forkTs(GENERATOR)));
      await Promise.all(
        generators.map(async (generator, i) => {
          const clockOffsetMs = await generator.clockOffset();
          await generator.call(
            {
              type: 'init',
              baseUrl: options.baseUrl,
              streamPath: options.streamPath,
              secret: options.secret,
              generator: i,
              clockOffsetMs,
              ...(options.establishedOnHead === true ? { establishedOnHead: true } : {}),
            },
            'ready',
            120_000,
          );
        }),
      );
      return pool;
    } catch (error) {
      await pool.stop();
      throw error;
    }
  }

  /** Opens `count` streams at `ratePerSec` in total, split evenly over the generators. */
  async open(count: number, ratePerSec: number, timeoutMs: number): Promise<PoolOpenResult> {
    const n = this.generators.length;
    const results = await Promise.all(
      this.generators.map((generator, i) => {
        const share = Math.floor(count / n) + (i < count % n ? 1 : 0);
        const command = { type: 'open', count: share, ratePerSec: (ratePerSec * share) / count, timeoutMs } as const;
        return generator.call(command, 'opened', timeoutMs + 10_000);
      }),
    );
    const merged: PoolOpenResult = { established: 0, failed: 0, failures: {}, connect: new Histogram(), elapsedMs: 0 };
    for (const { result } of results) {
      merged.established += result.established;
      merged.failed += result.failed;
      for (const [reason, times] of Object.entries(result.failures)) {
        merged.failures[reason] = (merged.failures[reason] ?? 0) + times;
      }
      merged.connect.merge(result.connect);
      merged.elapsedMs = Math.max(merged.elapsedMs, result.elapsedMs);
    }
    return merged;
  }

  async reset(): Promise<void> {
    await Promise.all(this.generators.map((generator) => generator.call({ type: 'reset' }, 'reset', 10_000)));
  }

  async stats(): Promise<PoolStats> {
    const replies = await Promise.all(
      this.generators.map((generator) => generator.call({ type: 'stats' }, 'stats', 10_000)),
    );
    const merged: PoolStats = {
      open: 0,
      received: 0,
      minPerStream: Infinity,
      maxPerStream: 0,
      disconnects: 0,
      orderErrors: 0,
      latency: new Histogram(),
      lastReceivedAt: 0,
      cpuMs: 0,
    };
    for (const { stats } of replies) {
      merged.open += stats.open;
      merged.received += stats.received;
      if (stats.open > 0) merged.minPerStream = Math.min(merged.minPerStream, stats.minPerStream);
      merged.maxPerStream = Math.max(merged.maxPerStream, stats.maxPerStream);
      merged.disconnects += stats.disconnects;
      merged.orderErrors += stats.orderErrors;
      merged.latency.merge(stats.latency);
      merged.lastReceivedAt = Math.max(merged.lastReceivedAt, stats.lastReceivedAt);
      merged.cpuMs += stats.cpuMs;
    }
    if (merged.open === 0) merged.minPerStream = 0;
    return merged;
  }

  async closeAll(): Promise<number> {
    const replies = await Promise.all(
      this.generators.map((generator) => generator.call({ type: 'closeAll' }, 'closed', 30_000)),
    );
    return replies.reduce((total, reply) => total + reply.closed, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.generators.map((generator) => stopChild(generator.child, 5_000)));
  }
}
