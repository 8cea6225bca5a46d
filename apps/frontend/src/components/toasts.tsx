import type { EventPayload } from '@infinitescribe/protocol';
import { useEventSubscription } from '@infinitescribe/react';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';

/** A toast: the `notification` event's payload shape. */
export type ToastInput = EventPayload<'notification'>;

interface Toast extends ToastInput {
  id: number;
}

/** Shows a toast; returns nothing (toasts dismiss themselves). */
export type PushToast = (toast: ToastInput) => void;

const ToastContext = createContext<PushToast | null>(null);

const MAX_TOASTS = 4;
const DURATION_MS: Record<ToastInput['level'], number> = {
  info: 6_000,
  success: 5_000,
  warning: 10_000,
  error: 12_000,
};

/**
 * Each level in words (read first by screen readers) and as a glyph (for eyes that do not tell
 * the colours apart); warnings and errors interrupt (`alert`), the others wait (`status`).
 */
const LEVELS: Record<ToastInput['level'], { label: string; icon: string; role: 'alert' | 'status' }> = {
  info: { label: 'Info', icon: 'i', role: 'status' },
  success: { label: 'Success', icon: '✓', role: 'status' },
  warning: { label: 'Warning', icon: '!', role: 'alert' },
  error: { label: 'Error', icon: '✕', role: 'alert' },
};

/** Holds the toasts and renders them in a corner region; `useToast()` pushes one. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);
  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((toast) => toast.id !== id)), []);
  const push = useCallback<PushToast>((toast) => {
    const id = nextId.current++;
    setToasts((list) => [...list, { ...toast, id }].slice(-MAX_TOASTS));
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <section className="toasts" aria-label="Notifications">
        {toasts.map((toast) => (
          <ToastItem key={toast.id} toast={toast} onDismiss={dismiss} />
        ))}
      </section>
    </ToastContext.Provider>
  );
}

function ToastItem({ toast, onDismiss }: { toast: Toast; onDismiss: (id: number) => void }) {
  const [isPaused, setPaused] = useState(false);
  useEffect(() => {
    if (isPaused) return undefined;
    const timer = setTimeout(() => onDismiss(toast.id), DURATION_MS[toast.level]);
    return () => clearTimeout(timer);
  }, [isPaused, onDismiss, toast.id, toast.level]);
  const level = LEVELS[toast.level];
  return (
    <div
      className={`toast toast-${toast.level}`}
      role={level.role}
      data-testid="toast"
      onMouseEnter={() => setPaused(true)}
      onMouseLeave={() => setPaused(false)}
      onFocus={() => setPaused(true)}
      onBlur={() => setPaused(false)}
    >
      <span className="toast-icon" aria-hidden="true" data-testid="toast-icon">
        {level.icon}
      </span>
      <div className="toast-text">
        <span className="sr-only">{level.label}: </span>
        <strong>{toast.title}</strong>
        {toast.body && <p>{toast.body}</p>}
      </div>
      <button
        type="button"
        className="icon-button"
        aria-label={`Dismiss: ${toast.title}`}
        onClick={() => onDismiss(toast.id)}
      >
        ×
      </button>
    </div>
  );
}

/** Pushes toasts; must be used under {@link ToastProvider}. */
export function useToast(): PushToast {
  const push = useContext(ToastContext);
  if (!push) throw new Error('useToast() must be used inside <ToastProvider>');
  return push;
}

/** Turns `notification` events into toasts; render it once under both providers. */
export function NotificationToasts() {
  const push = useToast();
  useEventSubscription('notification', (event) => push(event.payload));
  return null;
}

/** A memoised toast helper bound to a level, for the pages. */
export function useToastHelpers() {
  const push = useToast();
  return useMemo(
    () => ({
      error: (title: string, body?: string) => push({ level: 'error', title, ...(body ? { body } : {}) }),
      info: (title: string, body?: string) => push({ level: 'info', title, ...(body ? { body } : {}) }),
      success: (title: string, body?: string) => push({ level: 'success', title, ...(body ? { body } : {}) }),
    }),
    [push],
  );
}
