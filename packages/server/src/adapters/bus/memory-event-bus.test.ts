import { describe, expect, it } from 'vitest';
import { describeEventBusContract } from './event-bus.contract.js';
import { MemoryEventBus } from './memory-event-bus.js';

describeEventBusContract('memory', { create: async (limits) => new MemoryEventBus(limits) });

describe('MemoryEventBus', () => {
  it('trims events by age and reports the gap', async () => {
    let now = 1_000_000;
    const bus = new MemoryEventBus({ maxEvents: 100, maxAgeMs: 1_000 }, () => now);
    await bus.start({ idFloor: 0, coveredFrom: 0 });
    const old = await bus.publish({ topic: 't', type: 'notification', payload: {}, ts: '', critical: false });
    now += 5_000;
    const fresh = await bus.publish({ topic: 't', type: 'notification', payload: {}, ts: '', critical: false });
    const read = await bus.read(['t'], 0, 10);
    expect(read.events.map((event) => event.id)).toEqual([fresh.id]);
    expect(read.gapTopics).toEqual(['t']);
    expect((await bus.read(['t'], old.id, 10)).gapTopics).toEqual([]);
    await bus.close();
  });
});
