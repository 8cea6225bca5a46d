/**
 * Type tests (checked by `tsc -p packages/react`, not run): the hooks are typed by the protocol's
 * event catalogue.
 */
import type { EnvelopeWithId, SSEClientError } from '@infinitescribe/client';
import { expectTypeOf } from 'vitest';
import { useEventSubscription } from './use-event-subscription.js';
import { useGeneration } from './use-generation.js';
import { useSSEConnection } from './use-sse-connection.js';
import { useTaskProgress } from './use-task-progress.js';

export function typeTests(): void {
  useEventSubscription('notification', (event) => {
    expectTypeOf(event).toEqualTypeOf<EnvelopeWithId<'notification'>>();
    expectTypeOf(event.payload.level).toEqualTypeOf<'info' | 'success' | 'warning' | 'error'>();
  });
  useEventSubscription(
    'ai.generation.delta',
    (event) => expectTypeOf(event.payload.seq).toBeNumber(),
    (event) => event.payload.generationId === 'g1',
  );
  useEventSubscription('error', (error) => expectTypeOf(error).toEqualTypeOf<SSEClientError>());
  useEventSubscription('*', (event) => expectTypeOf(event).toEqualTypeOf<EnvelopeWithId>());
  // @ts-expect-error not an event of the catalogue
  useEventSubscription('ai.generation.deltas', () => undefined);
  // @ts-expect-error notification payloads have no seq
  useEventSubscription('notification', (event) => event.payload.seq);

  const connection = useSSEConnection();
  if (connection.state === 'reconnecting') {
    expectTypeOf(connection.reason).toEqualTypeOf<
      | 'transport_closed'
      | 'network_error'
      | 'server_error'
      | 'too_many_connections'
      | 'heartbeat_timeout'
      | 'first_byte_timeout'
      | 'token_error'
      | 'token_refresh'
      | 'auth_expired'
      | 'online'
    >();
  }
  expectTypeOf(connection.retryInSeconds).toEqualTypeOf<number | undefined>();

  const generation = useGeneration('g1');
  expectTypeOf(generation.text).toBeString();
  expectTypeOf(generation.status).toEqualTypeOf<
    'idle' | 'pending' | 'running' | 'completed' | 'failed' | 'cancelled'
  >();
  expectTypeOf(useTaskProgress(null).percent).toBeNumber();
}
