import type { FastifyInstance } from 'fastify';
import type { ConversationView, ConversationsPage, RunningGenerationsResponse } from '@infinitescribe/protocol';
import type { Authenticator } from '../services/auth/authenticator.js';
import type { ConversationService } from '../services/conversations/conversation-service.js';
import { conversationIdParams, conversationsQuery, runningGenerationsQuery } from './api-schemas.js';
import { parseInput } from './parse-input.js';

/** Options of {@link registerConversationRoutes}. */
export interface ConversationRoutesOptions {
  authenticator: Authenticator;
  conversations: ConversationService;
}

/**
 * docs/http-api.md, "Conversations": `GET /api/ai/conversations` (the user's, most recent first,
 * paginated), `GET /api/ai/conversations/:id` (turns, and the generation still answering),
 * `DELETE /api/ai/conversations/:id`, and `GET /api/ai/generations?status=running`. Everything is
 * the caller's own: another user's conversation is 404, like one that does not exist.
 */
export function registerConversationRoutes(app: FastifyInstance, options: ConversationRoutesOptions): void {
  const { authenticator, conversations } = options;

  app.get('/api/ai/conversations', async (request): Promise<ConversationsPage> => {
    const principal = await authenticator.authenticate(request);
    const { limit, cursor } = parseInput(conversationsQuery, request.query);
    return conversations.list(principal.userId, { limit, ...(cursor === undefined ? {} : { cursor }) });
  });

  app.get('/api/ai/conversations/:id', async (request): Promise<ConversationView> => {
    const principal = await authenticator.authenticate(request);
    const { id } = parseInput(conversationIdParams, request.params);
    return conversations.get(principal.userId, id);
  });

  app.delete('/api/ai/conversations/:id', async (request, reply): Promise<void> => {
    const principal = await authenticator.authenticate(request);
    const { id } = parseInput(conversationIdParams, request.params);
    await conversations.delete(principal.userId, id);
    reply.code(204);
  });

  app.get('/api/ai/generations', async (request): Promise<RunningGenerationsResponse> => {
    const principal = await authenticator.authenticate(request);
    parseInput(runningGenerationsQuery, request.query);
    return { generations: await conversations.running(principal.userId) };
  });
}
