import type { EventType } from './events.js';
import type { EnvelopeWithId } from './envelope.js';
import type { StreamResetReason } from './control-events.js';

/** Body of `POST /api/events`. */
export interface PublishRequest {
  topic: string;
  type: EventType;
  payload: unknown;
  critical?: boolean;
}

/** Answer of `POST /api/events` (202, or 201 once a critical event is stored). */
export interface PublishResponse {
  id: string;
}

/** Answer of `GET /api/sse/poll`. */
export interface PollResponse {
  events: EnvelopeWithId[];
  lastEventId: string | null;
  reset?: { reason: StreamResetReason; since?: string };
}

/** Status of a generation as `GET /api/ai/generations/:id` reports it. */
export type GenerationStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** Answer of `GET /api/ai/generations/:id`. */
export interface GenerationView {
  generationId: string;
  status: GenerationStatus;
  /** Text so far (all of it once completed). */
  text: string;
  /**
   * Seq of the last delta included in `text` (`-1` before the first), so a client lines the
   * deltas that follow up with the text exactly instead of guessing.
   */
  seq: number;
  /** Why it failed. */
  error?: string;
}

/** Status of a task as `GET /api/tasks/:id` reports it. */
export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** Answer of `GET /api/tasks/:id`. */
export interface TaskView {
  taskId: string;
  kind: string;
  status: TaskStatus;
  /** The current stage (the last one reached). */
  stage: string;
  stageIndex: number;
  stageCount: number;
  /** 0–100, never decreasing. */
  percent: number;
  /** Latest progress message. */
  message?: string;
  /** `task.completed` result. */
  result?: unknown;
  /** Why it failed. */
  error?: string;
}

/** One entry of `GET /api/tasks/kinds`. */
export interface TaskKindInfo {
  kind: string;
  description: string;
  /** The stages (of a run with the default input, when they depend on it). */
  stages: string[];
  /** JSON Schema of `input`. */
  input: Record<string, unknown>;
}

/** Answer of `GET /api/tasks/kinds`. */
export interface TaskKindsResponse {
  kinds: TaskKindInfo[];
}

/** Answer of `GET /api/ai/provider`: which provider writes (`offline` is the demo Markov chain). */
export interface ProviderInfo {
  /** `offline`, `openai-compatible`, `openai`, `azure-openai`, `anthropic` or `google`. */
  kind: string;
  /** Human label, e.g. "Offline demo provider (no AI model)". */
  label: string;
  /** The model of a request that names none. */
  model: string;
  /** Every model a request may name as `model` (`model` first). */
  models: string[];
}

/** Answer of `POST /api/ai/generations` (202). */
export interface GenerationCreated {
  generationId: string;
}

/** Answer of `POST /api/tasks` (202). */
export interface TaskCreated {
  taskId: string;
}

/** Most messages one generation request may carry (system, user and assistant turns together). */
export const MAX_GENERATION_MESSAGES = 200;
/**
 * Most characters of input one generation request may carry: `prompt`, or `system` plus every
 * message's `content`. A request is journalled (stored, and kept in the hot log) so that another
 * start can continue it, so its size is bounded like any event's.
 */
export const MAX_GENERATION_INPUT_CHARS = 64_000;
/** Largest `maxTokens` a request may ask for. */
export const MAX_GENERATION_TOKENS = 32_768;
/** Longest `model` name. */
export const MAX_MODEL_NAME_CHARS = 200;

/** One turn of a conversation sent to `POST /api/ai/generations`. */
export interface GenerationMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Body of `POST /api/ai/generations`: `prompt` (one user message) or `messages`, not both. Limits:
 * `MAX_GENERATION_MESSAGES`, `MAX_GENERATION_INPUT_CHARS`, `MAX_GENERATION_TOKENS`.
 */
export interface GenerationRequest {
  prompt?: string | undefined;
  messages?: GenerationMessage[] | undefined;
  system?: string | undefined;
  /** 0–2. */
  temperature?: number | undefined;
  /** One of the server's allowed models (`GET /api/ai/provider` `models`). */
  model?: string | undefined;
  maxTokens?: number | undefined;
  documentId?: string | undefined;
  /**
   * Records the request as a turn of this conversation of the user's (created on its first turn),
   * listed by `GET /api/ai/conversations`; see `CONVERSATION_ID_PATTERN`.
   */
  conversationId?: string | undefined;
}

/** Answer of `POST /api/auth/dev-token`. */
export interface DevTokenResponse {
  accessToken: string;
  expiresIn: number;
}

/** Answer of `POST /api/sse/ticket`. */
export interface TicketResponse {
  ticket: string;
  expiresIn: number;
}

/** Header names and query parameters of the stream endpoint. */
export const LAST_EVENT_ID_HEADER = 'last-event-id';
export const ACCESS_TOKEN_COOKIE = 'access_token';
export const STREAM_PATH = '/api/sse/stream';
export const POLL_PATH = '/api/sse/poll';

/**
 * A conversation id: chosen by the client (e.g. `useChat`'s chat id), unique per user. 1–128
 * characters of `[0-9A-Za-z._:-]`.
 */
export const CONVERSATION_ID_PATTERN = /^[0-9A-Za-z._:-]{1,128}$/;
/** Most conversations one page of `GET /api/ai/conversations` holds. */
export const MAX_CONVERSATIONS_PAGE = 100;

/** One conversation in `GET /api/ai/conversations`, the most recently active first. */
export interface ConversationSummary {
  conversationId: string;
  /** The first user message, shortened. */
  title: string;
  /** ISO times: when its first turn and its last turn were sent. */
  createdAt: string;
  updatedAt: string;
  /** How many turns (a user message and its answer) it holds. */
  turnCount: number;
  /** The generation answering its last turn, while it runs (resume it with its id). */
  runningGenerationId?: string;
}

/** Answer of `GET /api/ai/conversations`. */
export interface ConversationsPage {
  conversations: ConversationSummary[];
  /** Pass as `?cursor=` for the next (older) page; absent on the last page. */
  nextCursor?: string;
}

/** One turn of a conversation: the user message and the generation that answers it. */
export interface ConversationTurn {
  generationId: string;
  /** The user message the turn sent (the last `user` message of its request). */
  prompt: string;
  status: GenerationStatus;
  /** The answer: all of it once settled, the text so far while running. */
  text: string;
  error?: string;
  createdAt: string;
}

/** Answer of `GET /api/ai/conversations/:id`. */
export interface ConversationView extends Omit<ConversationSummary, 'turnCount'> {
  /** Oldest first. */
  turns: ConversationTurn[];
}

/** One entry of `GET /api/ai/generations?status=running`. */
export interface RunningGeneration {
  generationId: string;
  status: 'running';
  /** Text so far. */
  text: string;
  /** The conversation whose turn it answers, if any. */
  conversationId?: string;
}

/** Answer of `GET /api/ai/generations?status=running`. */
export interface RunningGenerationsResponse {
  generations: RunningGeneration[];
}
