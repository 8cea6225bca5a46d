import { z } from 'zod';
import {
  MAX_GENERATION_INPUT_CHARS,
  MAX_GENERATION_MESSAGES,
  MAX_GENERATION_TOKENS,
  MAX_MODEL_NAME_CHARS,
  CONVERSATION_ID_PATTERN,
  type GenerationMessage,
  type GenerationRequest,
} from './http.js';

const notBlank = (text: string) => text.trim() !== '';

export const GENERATION_MESSAGE_SCHEMA = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().refine(notBlank, { message: 'content must not be blank' }),
});

/** The input characters of a request, counted as {@link MAX_GENERATION_INPUT_CHARS} counts them. */
function inputChars(request: { prompt?: unknown; system?: unknown; messages?: unknown }): number {
  const length = (value: unknown) => (typeof value === 'string' ? value.length : 0);
  let total = length(request.prompt) + length(request.system);
  if (Array.isArray(request.messages)) {
    for (const message of request.messages as unknown[]) {
      total += length((message as { content?: unknown } | null)?.content);
    }
  }
  return total;
}

// The checks across fields run `when` other fields failed too (zod skips object refinements after
// any issue by default), so one answer names every problem of a request.
const always = () => true;

/**
 * Body of `POST /api/ai/generations`: `prompt` (one user message, the original form) or `messages`
 * (a conversation), with an optional system prompt, temperature, model and token limit. The
 * route adds the check of `model` against the operator's allow-list.
 */
export const GENERATION_REQUEST_SCHEMA = z
  .strictObject({
    prompt: z.string().refine(notBlank, { message: 'prompt must not be blank' }).optional().meta({
      description: 'The original form: the same as `messages: [{"role": "user", "content": prompt}]`.',
    }),
    messages: z
      .array(GENERATION_MESSAGE_SCHEMA)
      .min(1)
      .max(MAX_GENERATION_MESSAGES)
      .optional()
      .meta({
        description: `The conversation, oldest first; at least one \`user\` message; at most ${MAX_GENERATION_MESSAGES}.`,
      }),
    system: z.string().refine(notBlank, { message: 'system must not be blank' }).optional().meta({
      description: 'System prompt (instructions, style, document context), sent before the messages.',
    }),
    temperature: z.number().min(0).max(2).optional().meta({
      description:
        'Sampling temperature, 0–2 (the model’s default when absent; some models accept only their default).',
    }),
    model: z.string().min(1).max(MAX_MODEL_NAME_CHARS).optional().meta({
      description: 'One of `GET /api/ai/provider` `models` (AI_MODEL and AI_MODELS); default AI_MODEL.',
    }),
    maxTokens: z.number().int().min(1).max(MAX_GENERATION_TOKENS).optional().meta({
      description: 'Default AI_DEFAULT_MAX_TOKENS.',
    }),
    documentId: z.string().min(1).max(128).optional().meta({ description: 'Echoed in `ai.generation.started`.' }),
    conversationId: z
      .string()
      .regex(CONVERSATION_ID_PATTERN, 'conversationId must be 1–128 characters of [0-9A-Za-z._:-]')
      .optional()
      .meta({
        description:
          'Records the request as a turn of this conversation of yours (created on its first turn); ' +
          'see `GET /api/ai/conversations`. The turn is its last `user` message and the answer.',
      }),
  })
  .refine((request) => (request.prompt === undefined) !== (request.messages === undefined), {
    message: 'send either prompt or messages (one of them, not both)',
    when: always,
  })
  .refine(
    (request) =>
      !Array.isArray(request.messages) ||
      (request.messages as unknown[]).some((message) => (message as { role?: unknown } | null)?.role === 'user'),
    { message: 'messages must hold at least one user message', path: ['messages'], when: always },
  )
  .refine((request) => inputChars(request) <= MAX_GENERATION_INPUT_CHARS, {
    message: `the input (prompt, or system and every message's content) is over ${MAX_GENERATION_INPUT_CHARS} characters`,
    when: always,
  })
  .meta({
    description:
      `Either \`prompt\` or \`messages\`. At most ${MAX_GENERATION_MESSAGES} messages and ` +
      `${MAX_GENERATION_INPUT_CHARS} characters of input in all; every problem is named in one 400.`,
  });

/** Mutual assignability of the schema's input and the wire types (a field added on one side only fails `tsc`). */
type Same<TLeft, TRight> = [TLeft] extends [TRight] ? ([TRight] extends [TLeft] ? true : false) : false;
const _schemaIsTheWireType: [
  Same<z.input<typeof GENERATION_REQUEST_SCHEMA>, GenerationRequest>,
  Same<z.input<typeof GENERATION_MESSAGE_SCHEMA>, GenerationMessage>,
] = [true, true];
