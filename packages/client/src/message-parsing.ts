/**
 * @module Incoming frames, checked and typed, so the controller never touches unparsed data.
 * Published events carry the `{topic, type, ts, payload}` envelope; control events
 * (`connection.established`, `heartbeat`, `stream.reset`, `stream.resumed`, `auth.expiring`,
 * `auth.expired`) a bare JSON object. Unknown control names are ignored (a newer server).
 */
import type { ControlEvents } from '@infinitescribe/protocol';
import type { AnyPublishedEvent } from './client-events.js';
import { SSEClientError } from './errors.js';
import { isRecord, type TransportMessage } from './transport.js';

/**
 * The envelope of a published frame with its id, whatever its type (the app's own types are
 * delivered like built-in ones); an error when the data is not an envelope. Payloads are not
 * re-validated: the server checked them against its catalogue on publish, and the schemas (zod)
 * would outweigh the whole client.
 */
export function parseEnvelope(id: string, data: string): AnyPublishedEvent | SSEClientError {
  let envelope: unknown;
  try {
    envelope = JSON.parse(data);
  } catch (cause) {
    return new SSEClientError('invalid_event', `event ${id} has no JSON data`, { cause });
  }
  if (!isRecord(envelope) || typeof envelope['type'] !== 'string' || !('payload' in envelope)) {
    return new SSEClientError('invalid_event', `event ${id} is not an envelope`);
  }
  return { ...envelope, id } as AnyPublishedEvent;
}

/** One callback per control event the controller acts on. */
export interface ControlCallbacks {
  established(info: ControlEvents['connection.established']): void;
  heartbeat(): void;
  reset(reset: ControlEvents['stream.reset']): void;
  resumed(resumed: ControlEvents['stream.resumed']): void;
  expiring(connectionId: string): void;
  expired(): void;
  invalid(error: SSEClientError): void;
}

/** Parses `message` (a frame without id) and calls the matching callback. */
export function deliverControl(message: TransportMessage, callbacks: ControlCallbacks): void {
  const invalid = () =>
    callbacks.invalid(new SSEClientError('invalid_event', `malformed "${message.event}" control event`));
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    data = undefined;
  }
  const fields = isRecord(data) ? data : {};
  switch (message.event) {
    case 'connection.established': {
      const { connectionId, instanceId, topics, lastEventId } = fields;
      if (typeof connectionId !== 'string' || connectionId === '') return invalid();
      return callbacks.established({
        connectionId,
        instanceId: typeof instanceId === 'string' ? instanceId : '',
        topics: Array.isArray(topics) ? topics.filter((topic): topic is string => typeof topic === 'string') : [],
        ...(typeof lastEventId === 'string' && lastEventId !== '' ? { lastEventId } : {}),
      });
    }
    case 'heartbeat':
      return callbacks.heartbeat();
    case 'stream.reset': {
      const { reason, since } = fields;
      if (reason !== 'unknown_id' && reason !== 'gap') return invalid();
      return callbacks.reset(typeof since === 'string' ? { reason, since } : { reason });
    }
    case 'stream.resumed': {
      const { replayed, complete } = fields;
      if (typeof replayed !== 'number' || typeof complete !== 'boolean') return invalid();
      return callbacks.resumed({ replayed, complete });
    }
    case 'auth.expiring': {
      const { connectionId } = fields;
      if (typeof connectionId !== 'string' || connectionId === '') return invalid();
      return callbacks.expiring(connectionId);
    }
    case 'auth.expired':
      return callbacks.expired();
    default:
      return undefined;
  }
}
