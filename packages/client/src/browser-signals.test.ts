import { afterEach, describe, expect, it, vi } from 'vitest';
import { browserSignals, type BrowserSignal } from './browser-signals.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('browserSignals', () => {
  it('is null without a window (Node, workers)', () => {
    expect(browserSignals()).toBeNull();
  });

  it('reports online/offline from window and visibility from document, and unsubscribes', () => {
    const window = new EventTarget();
    const document = Object.assign(new EventTarget(), { visibilityState: 'visible' });
    const navigator = { onLine: false };
    vi.stubGlobal('window', window);
    vi.stubGlobal('document', document);
    vi.stubGlobal('navigator', navigator);
    const signals = browserSignals();
    expect(signals?.isOnline()).toBe(false);
    navigator.onLine = true;
    expect(signals?.isOnline()).toBe(true);

    const seen: BrowserSignal[] = [];
    const unsubscribe = signals?.subscribe((signal) => seen.push(signal));
    window.dispatchEvent(new Event('offline'));
    window.dispatchEvent(new Event('online'));
    document.visibilityState = 'hidden';
    document.dispatchEvent(new Event('visibilitychange'));
    document.visibilityState = 'visible';
    document.dispatchEvent(new Event('visibilitychange'));
    unsubscribe?.();
    window.dispatchEvent(new Event('offline'));
    expect(seen).toEqual(['offline', 'online', 'hidden', 'visible']);
  });
});
