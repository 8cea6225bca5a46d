/**
 * @module @infinitescribe/protocol/schemas: the zod schemas of the event catalogue, for servers
 * and tools that validate. Browsers import `@infinitescribe/protocol` (types, names, grammar),
 * which has no zod at run time.
 */
export { EVENT_SCHEMAS, validateEventPayload } from './event-schemas.js';
export type { PayloadValidation } from './event-schemas.js';
export { GENERATION_MESSAGE_SCHEMA, GENERATION_REQUEST_SCHEMA } from './generation-request.js';
