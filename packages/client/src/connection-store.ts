/**
 * @module The store half of the client: the current snapshot, replaced (never mutated) on every
 * change and kept identical otherwise, plus the listeners of React's `useSyncExternalStore`.
 * Transitions are checked against {@link CONNECTION_TRANSITIONS}.
 */
import {
  canTransition,
  type ConnectionDetails,
  type ConnectionReasons,
  type ConnectionSnapshot,
  type ConnectionState,
  type ConnectionStatus,
} from './connection-state.js';
import { SSEClientError } from './errors.js';

/** Holds the snapshot and notifies listeners of each change. */
export class ConnectionStore {
  private snapshot: ConnectionSnapshot;
  private readonly listeners = new Set<() => void>();

  constructor(
    initial: ConnectionSnapshot,
    private readonly onIllegalTransition: (error: SSEClientError) => void,
  ) {
    this.snapshot = initial;
  }

  getSnapshot = (): ConnectionSnapshot => this.snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /**
   * Enters `state` for `reason`. State-specific details not given (retry time, connection id,
   * error) are cleared: they belonged to the state being left.
   */
  transition<TState extends ConnectionState>(
    state: TState,
    reason: ConnectionReasons[TState],
    details: Pick<ConnectionDetails, 'attempt' | 'lastEventId' | 'transport'> & Partial<ConnectionDetails>,
  ): void {
    const from = this.snapshot.state;
    if (!canTransition(from, state)) {
      // Reported, not thrown: a thrown error here would strand timers and transports half-way.
      this.onIllegalTransition(
        new SSEClientError('internal_error', `illegal transition ${from} → ${state} (${reason})`),
      );
    }
    this.publish({ ...details, ...({ state, reason } as ConnectionStatus) });
  }

  /** Changes details without changing state. */
  patch(details: Partial<ConnectionDetails>): void {
    this.publish({ ...this.snapshot, ...details });
  }

  private publish(next: ConnectionSnapshot): void {
    // Optional fields that are undefined are dropped, so equal states compare equal.
    const clean = Object.fromEntries(
      Object.entries(next).filter(([, value]) => value !== undefined),
    ) as ConnectionSnapshot;
    if (shallowEqual(clean, this.snapshot)) return;
    this.snapshot = clean;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        // A listener's bug must not break the state machine mid-transition; it still surfaces.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

function shallowEqual(a: object, b: object): boolean {
  const entries = Object.entries(a);
  if (entries.length !== Object.keys(b).length) return false;
  return entries.every(([key, value]) => Object.is(value, (b as Record<string, unknown>)[key]));
}
