import { createSSEClient, type SSEClient } from '@infinitescribe/client';

/** What the page does with the events; your UI code. */
export interface RealtimeUi {
  showNotification(title: string, level: string): void;
  appendGenerationText(generationId: string, text: string): void;
  showConnectionState(state: string): void;
  /** Events were lost for good (`stream.reset`): reload whatever the page shows from the API. */
  reloadEverything(): void;
}

/**
 * Connects the page to the stream. `getAccessToken` is your login's: the client calls it before
 * every attempt, and with `forceRefresh: true` when the server asks for a fresh token.
 */
export function connectRealtime(
  baseUrl: string,
  getAccessToken: (options: { forceRefresh: boolean }) => Promise<string>,
  ui: RealtimeUi,
): SSEClient {
  const client = createSSEClient({ url: baseUrl, getToken: getAccessToken });
  client.on('notification', ({ payload }) => ui.showNotification(payload.title, payload.level));
  client.on('ai.generation.delta', ({ payload }) => ui.appendGenerationText(payload.generationId, payload.text));
  client.on('reset', () => ui.reloadEverything());
  client.subscribe(() => ui.showConnectionState(client.getSnapshot().state));
  return client; // client.close() on logout
}
