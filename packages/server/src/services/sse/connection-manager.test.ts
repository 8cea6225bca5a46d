import type { FastifyBaseLogger } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import { MemoryEventBus } from '../../adapters/bus/memory-event-bus.js';
import { createLogger } from '../../adapters/observability/logger.js';
import { Metrics } from '../../adapters/observability/metrics.js';
import type { EventDraft, EventRecord } from '../../core/event-record.js';
import type { SSEConnection } from './connection.js';
import { ConnectionManager } from './connection-manager.js';

function draft(topic: string): EventDraft {
  return {
    topic,
    type: 'notification',
    payload: { title: 'x', level: 'info' },
    ts: new Date().toISOString(),
    critical: false,
  };
}

/** What the manager uses of a stream, recording what it is handed. */
function fakeStream(id: string, topics: string[]): SSEConnection & { received: number[] } {
  const received: number[] = [];
  const stream = {
    id,
    topics,
    isClosed: false,
    nextHeartbeatAt: 0,
    received,
    deliver: (record: EventRecord) => received.push(record.id),
  };
  return stream as unknown as SSEConnection & { received: number[] };
}

describe('ConnectionManager.registerAtHead', () => {
  const managers: ConnectionManager[] = [];
  afterEach(() => {
    for (const manager of managers.splice(0)) manager.stop();
  });

  function manager(bus: EventBus): ConnectionManager {
    const created = new ConnectionManager({
      bus,
      metrics: new Metrics({ defaultMetrics: false }),
      logger: createLogger({ level: 'silent' }) as FastifyBaseLogger,
      maxConnectionsPerUser: 10,
      maxConnectionsPerIp: 10,
      heartbeatMs: 60_000,
    });
    managers.push(created);
    return created;
  }

  it('subscribes a fresh stream at the in-process bus’s head at once: everything after it arrives, nothing before', async () => {
    const bus = new MemoryEventBus({ maxEvents: 100, maxAgeMs: 60_000 });
    await bus.start({ idFloor: 0, coveredFrom: 0 });
    const connections = manager(bus);
    const before = await bus.publish(draft('user:a'));
    const stream = fakeStream('c1', ['user:a', 'doc:new']);
    // Published in the same turn as the registration, before any promise of it could settle.
    const head = connections.registerAtHead(stream);
    const after = [bus.publish(draft('doc:new')), bus.publish(draft('user:a'))];
    expect(head).toBe(before.id);
    expect(connections.stats()).toMatchObject({ connections: 1, topics: 2 });
    expect(stream.received).toEqual((await Promise.all(after)).map((record) => record.id));
    await bus.close();
  });

  it('registers nothing on a bus that needs a round trip for its head, nor for a stream that has ended', async () => {
    const bus = new MemoryEventBus({ maxEvents: 100, maxAgeMs: 60_000 });
    await bus.start({ idFloor: 0, coveredFrom: 0 });
    const remote: EventBus = Object.assign(Object.create(bus) as EventBus, { headNow: undefined });
    const viaRemote = manager(remote);
    expect(viaRemote.registerAtHead(fakeStream('c1', ['user:a']))).toBeUndefined();
    expect(viaRemote.stats()).toMatchObject({ connections: 0, topics: 0 });

    const local = manager(bus);
    const ended = Object.assign(fakeStream('c2', ['user:a']), { isClosed: true });
    expect(local.registerAtHead(ended)).toBeUndefined();
    expect(local.stats()).toMatchObject({ connections: 0, topics: 0 });
    await bus.close();
  });
});
