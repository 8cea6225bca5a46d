/**
 * @module A tiny framework-free store of immutable snapshots by key (a generation id, a task id),
 * with per-key listeners and de-duplicated reloads. The generation and task stores fold events
 * into it; React reads it through `useSyncExternalStore`. Snapshots are replaced, never mutated,
 * so `get(key)` returns the same object until that key changes, as `useSyncExternalStore` needs.
 */

/** What every snapshot of a {@link KeyedStore} has. */
export interface KeyedSnapshot {
  /** True once the key is finished (no event can change it any more, but a reload may). */
  readonly isTerminal: boolean;
}

/** Options of {@link KeyedStore}. */
export interface KeyedStoreOptions<TSnapshot extends KeyedSnapshot> {
  /** The snapshot of a key nothing is known about yet. */
  initial: (key: string) => TSnapshot;
  /** Finished keys kept at most (oldest unwatched ones are forgotten first). Default `200`. */
  maxFinished?: number;
}

/** Keyed snapshots with listeners; see the module comment. */
export class KeyedStore<TSnapshot extends KeyedSnapshot> {
  private readonly snapshots = new Map<string, TSnapshot>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly reloads = new Map<string, Promise<void>>();
  private readonly initial: (key: string) => TSnapshot;
  private readonly maxFinished: number;

  constructor(options: KeyedStoreOptions<TSnapshot>) {
    this.initial = options.initial;
    this.maxFinished = options.maxFinished ?? 200;
  }

  /** The snapshot of `key`; the initial one (created once, then stable) when nothing is known. */
  get(key: string): TSnapshot {
    let snapshot = this.snapshots.get(key);
    if (!snapshot) {
      snapshot = this.initial(key);
      this.snapshots.set(key, snapshot);
    }
    return snapshot;
  }

  /** Whether anything was recorded for `key` (an event, a reload, or a read). */
  has(key: string): boolean {
    return this.snapshots.has(key);
  }

  /** Every key currently held. */
  keys(): string[] {
    return [...this.snapshots.keys()];
  }

  /** Calls `listener` after every change of `key`; returns the unsubscribe. */
  subscribe(key: string, listener: () => void): () => void {
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  /** Replaces the snapshot of `key` with `update(current)`; notifies only when it changed. */
  update(key: string, update: (current: TSnapshot) => TSnapshot): void {
    const current = this.get(key);
    const next = update(current);
    if (next === current) return;
    // Re-inserting moves the key to the end, so Map order is "least recently changed first".
    this.snapshots.delete(key);
    this.snapshots.set(key, next);
    if (next.isTerminal && !current.isTerminal) this.evict();
    const set = this.listeners.get(key);
    if (set) for (const listener of [...set]) listener();
  }

  /**
   * Runs `load` for `key` unless a load of it is already running (several hooks watching one key
   * cause one request). Resolves when it is done; rejects with the load's error.
   */
  reload(key: string, load: () => Promise<void>): Promise<void> {
    const running = this.reloads.get(key);
    if (running) return running;
    const promise = load().finally(() => this.reloads.delete(key));
    this.reloads.set(key, promise);
    return promise;
  }

  private evict(): void {
    let finished = 0;
    for (const snapshot of this.snapshots.values()) if (snapshot.isTerminal) finished++;
    for (const [key, snapshot] of this.snapshots) {
      if (finished <= this.maxFinished) return;
      if (!snapshot.isTerminal || this.listeners.has(key)) continue;
      this.snapshots.delete(key);
      finished--;
    }
  }
}
