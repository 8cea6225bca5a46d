/**
 * @module Resume bookkeeping: the last event id (kept per tab, so a page reload resumes where the
 * tab stood) and a window of recently delivered ids for dedupe. Ids are opaque strings that the
 * client compares only for equality, never for order.
 */

/**
 * The subset of the Web Storage API the client uses; `sessionStorage` fits, and so does any object
 * with these three methods.
 * @example createSSEClient({ url, getToken, storage: window.localStorage }) // shared by all tabs
 */
export interface ResumeStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * `sessionStorage` when the page has a usable one (per tab, survives reloads), else `null`.
 * Reading `sessionStorage` throws in sandboxed iframes and some privacy modes, hence the probe.
 */
export function defaultResumeStorage(): ResumeStorage | null {
  try {
    const storage = (globalThis as { sessionStorage?: ResumeStorage }).sessionStorage;
    if (!storage) return null;
    const probe = '__infinitescribe_probe__';
    storage.setItem(probe, probe);
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

/**
 * The resume point: the last event id, mirrored to a storage when one is given. A storage that
 * throws (quota, privacy mode) degrades to memory only; delivery never fails because of it.
 */
export class ResumePoint {
  private current: string | null;

  constructor(
    private readonly storage: ResumeStorage | null,
    private readonly key: string,
  ) {
    this.current = this.read();
  }

  /** The last event id, or null before the first event. */
  get(): string | null {
    return this.current;
  }

  /** Moves the resume point to `id`. */
  set(id: string): void {
    if (id === this.current) return;
    this.current = id;
    try {
      this.storage?.setItem(this.key, id);
    } catch {
      // Memory still holds the id; only a reload of this tab would lose it.
    }
  }

  private read(): string | null {
    try {
      const stored = this.storage?.getItem(this.key);
      return stored ? stored : null;
    } catch {
      return null;
    }
  }
}

/**
 * A bounded window of recently delivered ids: a replayed event whose id is still in the window is
 * a duplicate. Oldest ids leave first (insertion order), so memory stays at `size` ids.
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly size: number) {}

  /** Records `id`; false if it was already in the window (a duplicate). */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.size) {
      const oldest = this.ids.values().next();
      if (!oldest.done) this.ids.delete(oldest.value);
    }
    return true;
  }

  /** Whether `id` was delivered recently. */
  has(id: string): boolean {
    return this.ids.has(id);
  }
}
