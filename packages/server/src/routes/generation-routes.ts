import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../services/auth/authenticator.js';
import { AppError } from '../core/errors.js';
import { generationRequestAllowing, idParams } from './api-schemas.js';
import { parseInput } from './parse-input.js';
import type { ProviderInfo as WireProviderInfo } from '@infinitescribe/protocol';
import type { ProviderInfo } from '../adapters/ai/ai-provider.js';
import type { GenerationService, GenerationView } from '../services/generations/generation-service.js';
import type { ConversationService } from '../services/conversations/conversation-service.js';

/** Answer of `GET /api/ai/provider` (the protocol's `ProviderInfo`, with this server's provider kinds). */
export type ProviderView = ProviderInfo & Pick<WireProviderInfo, 'models'>;

/** Options of {@link registerGenerationRoutes}. */
export interface GenerationRoutesOptions {
  authenticator: Authenticator;
  generations: GenerationService;
  /** Records requests with a `conversationId` as turns. */
  conversations: ConversationService;
}

/**
 * docs/http-api.md, "AI generations": `POST /api/ai/generations` → 202 `{generationId}`,
 * `POST /api/ai/generations/:id/cancel` → 202, `GET /api/ai/generations/:id` → status and text so
 * far; plus `GET /api/ai/provider`, which says which provider (the offline demo provider or a
 * model) and which models a request may name. All
 * need a Bearer token (or the cookie); a generation is visible to its owner only (others get 404).
 */
export function registerGenerationRoutes(app: FastifyInstance, options: GenerationRoutesOptions): void {
  const { authenticator, generations, conversations } = options;
  const generationRequest = generationRequestAllowing(generations.models);

  app.post('/api/ai/generations', async (request, reply): Promise<{ generationId: string }> => {
    const principal = await authenticator.authenticate(request);
    if (request.body === undefined) throw new AppError('invalid_request', 'body must be a JSON object');
    const { prompt, messages, conversationId, ...options } = parseInput(generationRequest, request.body);
    // The original form is a conversation of one user message.
    const conversation = messages ?? [{ role: 'user' as const, content: prompt ?? '' }];
    const generationId = await generations.create(principal.userId, { ...options, messages: conversation });
    if (conversationId !== undefined) {
      // After the start (the turn needs the id). A turn the store refused leaves the generation
      // running and answered: the client streams it all the same; only its listing is missing.
      await conversations
        .recordTurn(principal.userId, conversationId, generationId, conversation)
        .catch((error: unknown) => {
          request.log.warn(
            { err: error, generationId, conversationId },
            'generation started, but its turn was not recorded',
          );
        });
    }
    reply.code(202);
    return { generationId };
  });

  app.post('/api/ai/generations/:id/cancel', async (request, reply): Promise<{ generationId: string }> => {
    const principal = await authenticator.authenticate(request);
    const { id } = parseInput(idParams, request.params);
    await generations.cancel(principal.userId, id);
    reply.code(202);
    return { generationId: id };
  });

  app.get('/api/ai/generations/:id', async (request): Promise<GenerationView> => {
    const principal = await authenticator.authenticate(request);
    const { id } = parseInput(idParams, request.params);
    return generations.get(principal.userId, id);
  });

  app.get('/api/ai/provider', async (request): Promise<ProviderView & WireProviderInfo> => {
    await authenticator.authenticate(request);
    return { ...generations.provider.info, models: [...generations.models] };
  });
}
