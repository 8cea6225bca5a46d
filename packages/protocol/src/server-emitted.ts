/**
 * Event types the server alone publishes: the outcome and progress of the jobs it runs. A client
 * or service that could publish them could stop someone else's generation or forge its result,
 * so `POST /api/events` refuses them with 403 `forbidden_type`, whatever the token's scope.
 * Prefixes, not a list: a type added under them later is covered, and a host cannot register a
 * custom type that looks like one.
 */
export const SERVER_EMITTED_TYPE_PREFIXES = ['ai.generation.', 'task.'] as const;

/**
 * Whether `type` is published by the server only.
 * @example isServerEmittedType('task.completed') === true; isServerEmittedType('notification') === false
 */
export function isServerEmittedType(type: string): boolean {
  return SERVER_EMITTED_TYPE_PREFIXES.some((prefix) => type.startsWith(prefix));
}
