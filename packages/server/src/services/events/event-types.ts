/**
 * The open catalogue: the built-in event types of packages/protocol plus the host's own, each with
 * a zod schema that every publish (HTTP and in-process) is validated against. One catalogue per
 * plugin instance, so two apps in one process can register different types.
 */
import {
  CONTROL_EVENT_TYPES,
  EVENT_TYPES,
  SERVER_EMITTED_TYPE_PREFIXES,
  isEventType,
  type EventType,
} from '@infinitescribe/protocol';
import { validateEventPayload, type PayloadValidation } from '@infinitescribe/protocol/schemas';
import { z } from 'zod';
import { JOURNAL_EVENT_SCHEMAS } from '../../core/journal-events.js';

/** A host's own event type: its name, payload schema and how it is published by default. */
export interface EventTypeDefinition<TName extends string = string, TPayload = unknown> {
  readonly name: TName;
  readonly schema: z.ZodType<TPayload>;
  /** Publishes that do not say are critical (stored before they are acknowledged) when true. */
  readonly critical: boolean;
  /** One line for /docs. */
  readonly description: string | undefined;
}

/** The payload map of a list of definitions: what `app.realtime.publish` and the typed client take. */
export type EventMapOf<TDefinitions extends readonly EventTypeDefinition[]> = {
  [TDefinition in TDefinitions[number] as TDefinition['name']]: TDefinition extends EventTypeDefinition<
    string,
    infer TPayload
  >
    ? TPayload
    : never;
};

/** Names an event type may have: what an SSE `event:` line and a client's handler map carry safely. */
const TYPE_NAME = /^[A-Za-z][A-Za-z0-9]*(?:[._:-][A-Za-z0-9]+)*$/;
const TYPE_NAME_MAX_LENGTH = 64;
/** Prefixes that belong to the server: its job events, and the stream's control events. */
const RESERVED_PREFIXES = [...SERVER_EMITTED_TYPE_PREFIXES, 'journal.', 'stream.', 'connection.', 'auth.'];

/**
 * Declares an event type of the host's own.
 * @example defineEventType('comment.added', z.object({ docId: z.string(), text: z.string() }), { critical: false })
 */
export function defineEventType<TName extends string, TSchema extends z.ZodType>(
  name: TName,
  schema: TSchema,
  options: { critical?: boolean; description?: string } = {},
): EventTypeDefinition<TName, z.output<TSchema>> {
  return Object.freeze({
    name,
    schema: schema as z.ZodType<z.output<TSchema>>,
    critical: options.critical ?? false,
    description: options.description,
  });
}

/** Why `name` cannot be a custom type, or undefined when it can. */
function problemWithName(name: unknown): string | undefined {
  if (typeof name !== 'string' || !TYPE_NAME.test(name) || name.length > TYPE_NAME_MAX_LENGTH) {
    return `event type name ${JSON.stringify(name)} must be 1–${TYPE_NAME_MAX_LENGTH} letters and digits, joined by . _ : or -`;
  }
  if (isEventType(name)) return `event type "${name}" is built in; a custom type may not shadow it`;
  if ((CONTROL_EVENT_TYPES as readonly string[]).includes(name) || Object.hasOwn(JOURNAL_EVENT_SCHEMAS, name)) {
    return `event type "${name}" is the server's own`;
  }
  const prefix = RESERVED_PREFIXES.find((reserved) => name.startsWith(reserved));
  if (prefix) return `event type "${name}" uses the server's prefix "${prefix}"`;
  return undefined;
}

/** The types one server validates publishes against. */
export class EventCatalog {
  private readonly custom = new Map<string, EventTypeDefinition>();

  /** @throws Error naming every definition that is refused (bad or taken name, duplicate). */
  constructor(definitions: readonly EventTypeDefinition[] = []) {
    const problems: string[] = [];
    for (const definition of definitions) {
      const problem = problemWithName(definition.name);
      if (problem) problems.push(problem);
      else if (this.custom.has(definition.name)) problems.push(`event type "${definition.name}" is defined twice`);
      else this.custom.set(definition.name, definition);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  }

  /** Every type a publish may name, built-in first. */
  get types(): string[] {
    return [...EVENT_TYPES, ...this.custom.keys()];
  }

  /** The host's own types. */
  get customTypes(): readonly EventTypeDefinition[] {
    return [...this.custom.values()];
  }

  /** Whether a publish of `type` that does not say is critical. */
  criticalByDefault(type: string): boolean {
    return this.custom.get(type)?.critical ?? false;
  }

  /** Checks `payload` against the schema of `type`, built-in or custom. */
  validate(type: string, payload: unknown): PayloadValidation | { ok: true; type: string; payload: unknown } {
    const definition = this.custom.get(type);
    if (!definition) {
      if (isEventType(type)) return validateEventPayload(type, payload);
      return { ok: false, message: `unknown event type "${type}"; known types: ${this.types.join(', ')}` };
    }
    const result = definition.schema.safeParse(payload);
    return result.success
      ? { ok: true, type, payload: result.data }
      : { ok: false, message: `payload of "${type}" is invalid: ${z.prettifyError(result.error)}` };
  }
}

/** Whether `type` is one of the built-in catalogue (as opposed to a host's own). */
export function isBuiltInType(type: string): type is EventType {
  return isEventType(type);
}
