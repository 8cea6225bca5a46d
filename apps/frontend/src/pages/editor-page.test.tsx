// @vitest-environment jsdom
import { SSEProvider } from '@infinitescribe/react';
import { FakeSSEClient, ManualFrames } from '@infinitescribe/react/testing';
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ToastProvider } from '../components/toasts.js';
import type { ApiClient } from '../lib/api-client.js';
import { EditorPage } from './editor-page.js';

const ID = 'g1';

/** An API whose answers the test releases by hand. */
function fakeApi() {
  const calls: { path: string; body: unknown }[] = [];
  let release: ((body: unknown) => void) | undefined;
  const api: ApiClient = {
    get: vi.fn(async () => ({ kind: 'offline', label: 'Offline demo provider', model: 'offline-markov-2' })),
    post: vi.fn((path: string, body?: unknown) => {
      calls.push({ path, body });
      if (path === '/api/ai/generations') return new Promise((resolve) => (release = resolve));
      return Promise.resolve({});
    }),
  };
  return { api, calls, start: (body: unknown) => release?.(body) };
}

function setup() {
  localStorage.clear();
  localStorage.setItem('infinitescribe:document:u1', 'It was');
  const client = new FakeSSEClient();
  const frames = new ManualFrames();
  const server = fakeApi();
  render(
    <ToastProvider>
      <SSEProvider client={client} scheduleFrame={frames.schedule}>
        <EditorPage api={server.api} userId="u1" />
      </SSEProvider>
    </ToastProvider>,
  );
  const delta = (seq: number, text: string) =>
    act(() => {
      client.publish('ai.generation.delta', { generationId: ID, seq, text });
      frames.flush();
    });
  const publish = (fn: () => void) =>
    act(() => {
      fn();
      frames.flush();
    });
  return { client, frames, server, delta, publish };
}

describe('EditorPage', () => {
  beforeEach(() => {
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => setTimeout(() => callback(0), 0));
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it('labels the offline demo model', async () => {
    setup();
    expect(await screen.findByTestId('provider-notice')).toHaveProperty(
      'textContent',
      expect.stringContaining('Offline demo model — set AI_BASE_URL for a real model'),
    );
  });

  it('posts the document once per click, streams the text in place with a caret, and stops', async () => {
    const { server, delta, publish, client } = setup();
    const button = screen.getByTestId('continue-button');
    fireEvent.click(button);
    fireEvent.click(button);
    expect(server.calls).toEqual([{ path: '/api/ai/generations', body: { prompt: 'It was' } }]);
    expect(screen.getByTestId('generation-status').dataset.status).toBe('starting');

    await act(async () => server.start({ generationId: ID }));
    const stop = screen.getByTestId('stop-button');
    expect(stop).toHaveProperty('disabled', false);
    publish(() => client.publish('ai.generation.started', { generationId: ID }));
    delta(0, ' a truth');
    delta(1, ' universally');
    const streamed = screen.getByTestId('streamed-text');
    expect(streamed.textContent).toBe(' a truth universally');
    expect(streamed.getAttribute('aria-live')).toBe('polite');
    expect(screen.getByTestId('typing-caret')).toBeTruthy();
    expect(screen.getByTestId('editor-preview').textContent).toBe('It was a truth universally');

    fireEvent.click(stop);
    expect(server.calls.at(-1)).toEqual({ path: `/api/ai/generations/${ID}/cancel`, body: undefined });
    publish(() => client.publish('ai.generation.cancelled', { generationId: ID }));

    const editor = screen.getByTestId('editor') as HTMLTextAreaElement;
    expect(editor.value).toBe('It was a truth universally');
    expect(screen.getByTestId('generation-status').textContent).toBe('Stopped: kept 3 words.');
    expect(server.calls.filter((call) => call.path === '/api/ai/generations')).toHaveLength(1);
  });

  it('appends the completed text, offers Undo, and stops on Escape', async () => {
    const { server, delta, publish, client } = setup();
    fireEvent.click(screen.getByTestId('continue-button'));
    await act(async () => server.start({ generationId: ID }));
    delta(0, ' a');
    fireEvent.keyDown(screen.getByTestId('stop-button'), { key: 'Escape' });
    expect(server.calls.at(-1)?.path).toBe(`/api/ai/generations/${ID}/cancel`);
    publish(() => client.publish('ai.generation.completed', { generationId: ID, text: ' a truth.' }));
    const editor = screen.getByTestId('editor') as HTMLTextAreaElement;
    expect(editor.value).toBe('It was a truth.');
    fireEvent.click(screen.getByTestId('undo-button'));
    expect((screen.getByTestId('editor') as HTMLTextAreaElement).value).toBe('It was');
  });

  it('shows a toast and keeps the editor usable when the request fails', async () => {
    const { server } = setup();
    vi.mocked(server.api.post).mockRejectedValueOnce(new Error('rate limited'));
    fireEvent.click(screen.getByTestId('continue-button'));
    expect(await screen.findByRole('alert')).toHaveProperty('textContent', expect.stringContaining('rate limited'));
    expect(screen.getByTestId('editor')).toBeTruthy();
    expect(screen.getByTestId('continue-button')).toHaveProperty('disabled', false);
  });
});
