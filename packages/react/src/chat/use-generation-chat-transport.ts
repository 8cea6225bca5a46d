import { useMemo } from 'react';
import { useSSEContext } from '../sse-provider.js';
import type { ServerAccess } from './authorized-fetch.js';
import { createConversationsApi, type ConversationsApi } from './conversations-api.js';
import { GenerationChatTransport, type ChatGenerationOptions } from './generation-chat-transport.js';

/** Options of {@link useGenerationChatTransport}. */
export interface UseGenerationChatTransportOptions {
  /** Sent with every turn (system prompt, model, temperature, token limit). Read when the transport is made. */
  request?: ChatGenerationOptions | ((chatId: string) => ChatGenerationOptions);
  /** Default: the `url`, `getToken` and `fetch` of the nearest `SSEProvider`'s `options`. */
  access?: ServerAccess;
}

/**
 * A {@link GenerationChatTransport} on the nearest `SSEProvider`: its answers come from the
 * provider's stream and generation store. One per provider (stable across renders).
 * @example
 * const transport = useGenerationChatTransport({ request: { system: 'Be concise.' } });
 * const chat = useChat({ id: chatId, messages, transport, resume: true });
 */
export function useGenerationChatTransport(options: UseGenerationChatTransportOptions = {}): GenerationChatTransport {
  const context = useSSEContext();
  const access = accessOf(options.access ?? context.access);
  // Made once per provider: useChat keeps the transport it was first given.
  return useMemo(
    () =>
      new GenerationChatTransport({
        ...access,
        generations: context.generations,
        ...(options.request ? { request: options.request } : {}),
      }),
    [context.generations],
  );
}

/**
 * The conversations API on the nearest `SSEProvider`'s server and credentials.
 * @example const { conversations } = await useConversationsApi().list();
 */
export function useConversationsApi(access?: ServerAccess): ConversationsApi {
  const context = useSSEContext();
  const resolved = accessOf(access ?? context.access);
  return useMemo(() => createConversationsApi(resolved), [context]);
}

function accessOf(access: ServerAccess | undefined): ServerAccess {
  if (!access) {
    throw new Error(
      '@infinitescribe/react/chat: no server to send chat turns to. Give the SSEProvider `options` ({ url, getToken }), ' +
        'or pass `access: { url, getToken }`.',
    );
  }
  return access;
}
