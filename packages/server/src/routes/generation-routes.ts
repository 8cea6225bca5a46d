import type { Authenticator } from '../services/auth/authenticator.js';
import { generationCreated, generationRequestAllowing, generationView, idParams, providerInfo } from './api-schemas.js';
import type { GenerationCreated, GenerationView, ProviderInfo as WireProviderInfo } from '@infinitescribe/protocol';
import type { ProviderInfo } from '../adapters/ai/ai-provider.js';
import type { GenerationService } from '../services/generations/generation-service.js';
import type { ConversationService } from '../services/conversations/conversation-service.js';
import {
  AUTH_ERRORS,
  JOB_BY_ID_ERRORS,
  JOB_CANCEL_ERRORS,
  JOB_START_ERRORS,
  USER_AUTH,
  defineRoute,
  type RouteDefinition,
} from './route-definition.js';

/** Answer of `GET /api/ai/provider` (the protocol's `ProviderInfo`, with this server's provider kinds). */
export type ProviderView = ProviderInfo & Pick<WireProviderInfo, 'models'>;

/** Options of {@link generationRoutes}. */
export interface GenerationRoutesOptions {
  authenticator: Authenticator;
  generations: GenerationService;
  /** Records requests with a `conversationId` as turns. */
  conversations: ConversationService;
}

/**
 * docs/http-api.md, "AI generations": start, read and cancel a generation, and which provider
 * (the offline demo provider or a model) and models a request may name. All need a Bearer token
 * (or the cookie); a generation is visible to its owner only (others get 404).
 */
export function generationRoutes(options: GenerationRoutesOptions): RouteDefinition[] {
  const { authenticator, generations, conversations } = options;
  const authenticate = authenticator.authenticate.bind(authenticator);
  return [
    defineRoute({
      method: 'POST',
      url: '/api/ai/generations',
      operationId: 'startGeneration',
      tag: 'ai',
      summary: 'Start an AI generation',
      description:
        'Runs server-side, independent of any connection; `ai.generation.*` events follow on ' +
        '`user:<sub>`. A conversation (`messages`, `system`, `temperature`, `model`) or one `prompt`. ' +
        'At most AI_MAX_CONCURRENT_PER_USER running per user.',
      credentials: USER_AUTH,
      authenticate,
      body: {
        // The wire schema (packages/protocol) with this server's model allow-list.
        schema: generationRequestAllowing(generations.models),
        example: {
          system: 'You are a concise writing assistant.',
          messages: [{ role: 'user', content: 'Write an opening line about the sea.' }],
          maxTokens: 40,
          conversationId: 'chat-sea-1',
        },
      },
      answers: { 202: { description: 'Started.', schema: generationCreated } },
      errors: JOB_START_ERRORS,
      handler: async ({ request: http, principal, body, reply }): Promise<GenerationCreated> => {
        const { prompt, messages, conversationId, ...request } = body;
        // The original form is a conversation of one user message.
        const conversation = messages ?? [{ role: 'user' as const, content: prompt ?? '' }];
        const generationId = await generations.create(principal.userId, { ...request, messages: conversation });
        if (conversationId !== undefined) {
          // After the start (the turn needs the id). A turn the store refused leaves the generation
          // running and answered: the client streams it all the same; only its listing is missing.
          await conversations
            .recordTurn(principal.userId, conversationId, generationId, conversation)
            .catch((error: unknown) => {
              http.log.warn(
                { err: error, generationId, conversationId },
                'generation started, but its turn was not recorded',
              );
            });
        }
        reply.code(202);
        return { generationId };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/ai/generations/:id',
      operationId: 'getGeneration',
      tag: 'ai',
      summary: 'Where a generation stands (owner only)',
      credentials: USER_AUTH,
      authenticate,
      params: idParams,
      answers: { 200: { description: 'Status and text so far.', schema: generationView } },
      errors: JOB_BY_ID_ERRORS,
      handler: ({ principal, params }): Promise<GenerationView> => generations.get(principal.userId, params.id),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/ai/generations/:id/cancel',
      operationId: 'cancelGeneration',
      tag: 'ai',
      summary: 'Cancel a generation (aborts the provider request)',
      credentials: USER_AUTH,
      authenticate,
      params: idParams,
      answers: { 202: { description: 'Cancelled, or already finished.', schema: generationCreated } },
      errors: JOB_CANCEL_ERRORS,
      handler: async ({ principal, params, reply }): Promise<{ generationId: string }> => {
        await generations.cancel(principal.userId, params.id);
        reply.code(202);
        return { generationId: params.id };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/ai/provider',
      operationId: 'getProvider',
      tag: 'ai',
      summary: 'Which AI provider this server uses',
      credentials: USER_AUTH,
      authenticate,
      answers: { 200: { description: 'The provider.', schema: providerInfo } },
      errors: [...AUTH_ERRORS],
      handler: async (): Promise<ProviderView & WireProviderInfo> => ({
        ...generations.provider.info,
        models: [...generations.models],
      }),
    }),
  ];
}
