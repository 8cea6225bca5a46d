import { describe, expect, it } from 'vitest';
import { CONNECTION_TRANSITIONS, canTransition, type ConnectionState } from './connection-state.js';

describe('connection state machine', () => {
  it('leaves closed only by connecting', () => {
    const states = Object.keys(CONNECTION_TRANSITIONS) as ConnectionState[];
    expect(states.filter((to) => canTransition('closed', to))).toEqual(['connecting']);
  });

  it('can always be closed and always be reconnected by hand', () => {
    for (const from of Object.keys(CONNECTION_TRANSITIONS) as ConnectionState[]) {
      expect(canTransition(from, 'connecting')).toBe(true);
      if (from !== 'closed') expect(canTransition(from, 'closed')).toBe(true);
    }
  });

  it('does not jump from offline straight to open or fallback', () => {
    expect(canTransition('offline', 'open')).toBe(false);
    expect(canTransition('offline', 'fallback')).toBe(false);
    expect(canTransition('open', 'fallback')).toBe(false);
  });
});
