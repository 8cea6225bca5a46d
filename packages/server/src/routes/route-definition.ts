/**
 * A route is one definition: its URL, credentials, input schemas (zod), answers, error codes,
 * handler and documentation together. `registerRoutes` (route-registry.ts) mounts definitions on
 * Fastify and validates their input; api-docs.ts documents the same definitions, so what /docs
 * shows is what is registered and what the route accepts.
 *
 * A feature module exports a function from its services to its definitions:
 * @example
 * export function widgetRoutes({ authenticator, widgets }: WidgetServices): RouteDefinition[] {
 *   return [
 *     defineRoute({
 *       method: 'GET', url: '/api/widgets/:id', operationId: 'getWidget', tag: 'ai',
 *       summary: 'One widget', credentials: USER_AUTH, errors: JOB_BY_ID_ERRORS,
 *       authenticate: (request) => authenticator.authenticate(request),
 *       params: idParams,
 *       answers: { 200: { description: 'The widget.', schema: widgetView } },
 *       handler: ({ principal, params }) => widgets.get(principal.userId, params.id),
 *     }),
 *   ];
 * }
 */
import type { ErrorCode } from '@infinitescribe/protocol';
import type { FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { z } from 'zod';

/** How a route accepts credentials (OpenAPI security schemes of the same names). */
export type Credential = 'bearer' | 'cookie' | 'ticket' | 'metricsToken';

/** The groups /docs shows, in its order. */
export type RouteTag = 'auth' | 'stream' | 'events' | 'ai' | 'tasks' | 'operations';

/** A JSON Schema or OpenAPI object, as plain JSON. */
export type JsonObject = { [key: string]: unknown };

/** One documented answer. `schema` describes the JSON body; other content types describe themselves. */
export interface RouteAnswer {
  description: string;
  schema?: z.ZodType;
  /** A component of the document standing in for `schema` where it cannot say enough (envelopes). */
  jsonSchemaRef?: string;
  /** Non-JSON body (`text/event-stream`, Prometheus text). */
  contentType?: string;
}

/** The JSON body a route accepts. */
export interface RouteBody<TSchema extends z.ZodType> {
  schema: TSchema;
  /** Shown in /docs, and sent by the docs test: it must be accepted. */
  example: unknown;
  /**
   * What /docs shows instead of the JSON Schema of `schema`: a component the document builds from
   * the event catalogue (`ref`), or a richer schema of the route's own, as a component when named.
   */
  document?: { ref: string } | { schema: JsonObject; component?: string };
  /** The code of a 400 for a body that fails `schema` (`invalid_request` unless given). */
  invalidCode?: 'invalid_request' | 'invalid_event';
  /** An empty body is read as `{}` (then checked by `schema`) instead of refused. */
  emptyAsObject?: boolean;
}

/** What a handler gets: the request, its validated input, and who sent it. */
export interface RouteInput<TPrincipal, TParams, TQuery, TBody> {
  request: FastifyRequest;
  reply: FastifyReply;
  principal: TPrincipal;
  params: TParams;
  query: TQuery;
  body: TBody;
}

type Parsed<TSchema> = TSchema extends z.ZodType ? z.output<TSchema> : undefined;

/** One route. `url` is Fastify's (`/api/tasks/:id`); /docs shows it as `/api/tasks/{id}`. */
export interface RouteDefinition<
  TPrincipal = unknown,
  TParams extends z.ZodObject | undefined = z.ZodObject | undefined,
  TQuery extends z.ZodObject | undefined = z.ZodObject | undefined,
  TBody extends z.ZodType | undefined = z.ZodType | undefined,
> {
  method: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  url: string;
  operationId: string;
  tag: RouteTag;
  summary: string;
  description?: string;
  /** Any one of these is accepted; empty means public. Documentation: `authenticate` enforces. */
  credentials: readonly Credential[];
  /** Runs first, before any input is read: an unauthenticated request is a 401 whatever it sent. */
  authenticate?: (request: FastifyRequest) => Promise<TPrincipal>;
  params?: TParams;
  query?: TQuery;
  /** Documented only; the route's hooks read them (e.g. `Idempotency-Key`). */
  headers?: z.ZodObject;
  body?: TBody extends z.ZodType ? RouteBody<TBody> : undefined;
  answers: Readonly<Record<number, RouteAnswer>>;
  errors: readonly ErrorCode[];
  /** Fastify route options: hooks, `bodyLimit`, `exposeHeadRoute`. */
  options?: RouteShorthandOptions;
  handler: (input: RouteInput<TPrincipal, Parsed<TParams>, Parsed<TQuery>, Parsed<TBody>>) => unknown;
}

/** A route with its types inferred from its schemas (the handler's input is typed by them). */
export function defineRoute<
  TPrincipal = undefined,
  TParams extends z.ZodObject | undefined = undefined,
  TQuery extends z.ZodObject | undefined = undefined,
  TBody extends z.ZodType | undefined = undefined,
>(route: RouteDefinition<TPrincipal, TParams, TQuery, TBody>): RouteDefinition {
  return route as unknown as RouteDefinition;
}

/** A user's access token, as a Bearer header or the cookie. */
export const USER_AUTH: readonly Credential[] = ['bearer', 'cookie'];
/**
 * Every route that authenticates can also fail its authentication, or find the identity
 * provider's keys unreachable (JWKS mode: 503, retry).
 */
export const AUTH_ERRORS: readonly ErrorCode[] = ['unauthorized', 'auth_unavailable'];
/** A cookie-authenticated request that changes something, sent from another site's page. */
export const CROSS_SITE_ERRORS: readonly ErrorCode[] = ['forbidden'];
/** Starting a generation or a task: a validated body, per-user limits, a journalled start. */
export const JOB_START_ERRORS: readonly ErrorCode[] = [
  ...AUTH_ERRORS,
  ...CROSS_SITE_ERRORS,
  'invalid_json',
  'invalid_request',
  'rate_limited',
  'store_unavailable',
  'bus_unavailable',
  'shutting_down',
];
/** Reading or cancelling a generation or a task by id (another user's is `not_found` too). */
export const JOB_BY_ID_ERRORS: readonly ErrorCode[] = [...AUTH_ERRORS, 'invalid_request', 'not_found'];
/** Cancelling one: a POST, so a cookie from another site is refused too. */
export const JOB_CANCEL_ERRORS: readonly ErrorCode[] = [...JOB_BY_ID_ERRORS, ...CROSS_SITE_ERRORS];
