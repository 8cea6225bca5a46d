import type { ConversationView, ConversationsPage, RunningGenerationsResponse } from '@infinitescribe/protocol';
import type { Authenticator } from '../services/auth/authenticator.js';
import type { ConversationService } from '../services/conversations/conversation-service.js';
import {
  conversationIdParams,
  conversationView,
  conversationsPage,
  conversationsQuery,
  runningGenerations,
  runningGenerationsQuery,
} from './api-schemas.js';
import {
  AUTH_ERRORS,
  JOB_BY_ID_ERRORS,
  JOB_CANCEL_ERRORS,
  USER_AUTH,
  defineRoute,
  type RouteDefinition,
} from './route-definition.js';

/** Options of {@link conversationRoutes}. */
export interface ConversationRoutesOptions {
  authenticator: Authenticator;
  conversations: ConversationService;
}

/**
 * docs/http-api.md, "Conversations": the user's chat conversations (most recent first, paginated),
 * one with its turns and the generation still answering, deleting one, and the user's running
 * generations. Everything is the caller's own: another user's conversation is 404, like one that
 * does not exist.
 */
export function conversationRoutes(options: ConversationRoutesOptions): RouteDefinition[] {
  const { authenticator, conversations } = options;
  const authenticate = authenticator.authenticate.bind(authenticator);
  return [
    defineRoute({
      method: 'GET',
      url: '/api/ai/generations',
      operationId: 'listRunningGenerations',
      tag: 'ai',
      summary: 'Your generations still running',
      description:
        'Every generation of yours that is running now (chat turns or not), oldest first, with its text so far ' +
        'and the conversation it answers: a new tab or device finds what to resume. Only `status=running`.',
      credentials: USER_AUTH,
      authenticate,
      query: runningGenerationsQuery,
      answers: { 200: { description: 'The running generations.', schema: runningGenerations } },
      errors: [...AUTH_ERRORS, 'invalid_request', 'store_unavailable'],
      handler: async ({ principal }): Promise<RunningGenerationsResponse> => ({
        generations: await conversations.running(principal.userId),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/ai/conversations',
      operationId: 'listConversations',
      tag: 'ai',
      summary: 'Your chat conversations, the most recently active first',
      description:
        'Conversations are made of generations started with a `conversationId` (one turn each), kept ' +
        'CONVERSATION_RETENTION_MS after their last turn. Paginated: pass `nextCursor` as `cursor`.',
      credentials: USER_AUTH,
      authenticate,
      query: conversationsQuery,
      answers: { 200: { description: 'One page of conversations.', schema: conversationsPage } },
      errors: [...AUTH_ERRORS, 'invalid_request', 'store_unavailable'],
      handler: ({ principal, query }): Promise<ConversationsPage> =>
        conversations.list(principal.userId, {
          limit: query.limit,
          ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
        }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/ai/conversations/:id',
      operationId: 'getConversation',
      tag: 'ai',
      summary: 'A conversation with its turns (owner only)',
      description:
        'Turns oldest first: the user message and the answer (the text so far while it runs). ' +
        '`runningGenerationId` names the generation still answering, to resume its stream.',
      credentials: USER_AUTH,
      authenticate,
      params: conversationIdParams,
      answers: { 200: { description: 'The conversation.', schema: conversationView } },
      errors: [...JOB_BY_ID_ERRORS, 'store_unavailable'],
      handler: ({ principal, params }): Promise<ConversationView> => conversations.get(principal.userId, params.id),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/ai/conversations/:id',
      operationId: 'deleteConversation',
      tag: 'ai',
      summary: 'Delete a conversation (owner only); its running answer is cancelled',
      credentials: USER_AUTH,
      authenticate,
      params: conversationIdParams,
      answers: { 204: { description: 'Deleted.' } },
      errors: [...JOB_CANCEL_ERRORS, 'store_unavailable'],
      handler: async ({ principal, params, reply }): Promise<void> => {
        await conversations.delete(principal.userId, params.id);
        reply.code(204);
      },
    }),
  ];
}
