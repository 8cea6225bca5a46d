/**
 * @module @infinitescribe/react/chat: the Vercel AI SDK's `useChat` on InfiniteScribe generations.
 * Each chat turn is a generation that runs on the server whatever happens to the page; its answer
 * streams over the realtime connection, so a reload resumes it where it was, a server restart
 * continues it, and `stop()` cancels it on the server. Turns are kept per user as conversations,
 * so another tab or device lists and reopens them. Needs `ai` (v5+) and `@ai-sdk/react`.
 * @example
 * import { useChat } from '@ai-sdk/react';
 * import { conversationMessages, useConversationsApi, useGenerationChatTransport } from '@infinitescribe/react/chat';
 *
 * function Chat({ chatId, stored }: { chatId: string; stored?: ConversationView }) {
 *   const transport = useGenerationChatTransport();
 *   const { messages, sendMessage, stop, status } = useChat({
 *     id: chatId,
 *     transport,
 *     messages: stored ? conversationMessages(stored) : [],
 *     resume: true, // a reload mid-answer picks it up where it was
 *   });
 * }
 */
export { GenerationChatTransport, toGenerationMessages } from './generation-chat-transport.js';
export type { ChatGenerationOptions, GenerationChatTransportOptions } from './generation-chat-transport.js';
export { answerMetadataOf, conversationMessages, createConversationsApi, withOpenedText } from './conversations-api.js';
export type { AnswerMetadata, ConversationsApi } from './conversations-api.js';
export { ApiError } from './authorized-fetch.js';
export type { ServerAccess } from './authorized-fetch.js';
export { useConversationsApi, useGenerationChatTransport } from './use-generation-chat-transport.js';
export type { UseGenerationChatTransportOptions } from './use-generation-chat-transport.js';
export type {
  ConversationSummary,
  ConversationTurn,
  ConversationView,
  ConversationsPage,
  RunningGeneration,
} from '@infinitescribe/protocol';
