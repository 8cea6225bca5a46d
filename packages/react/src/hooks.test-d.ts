/**
 * Type tests (checked by `tsc -p packages/react`, not run): the hooks are typed by the protocol's
 * event catalogue, and by the app's own event map when given.
 */
import { createSSEClient, type EnvelopeWithId, type SSEClientError } from '@infinitescribe/client';
import { expectTypeOf } from 'vitest';
import { SSEProvider, useSSEClient } from './sse-provider.js';
import { FakeSSEClient } from '@infinitescribe/client/testing';
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

  // The app's own event types, end to end (docs/client-integration.md).
  type AppEvents = { 'comment.added': { docId: string; text: string } };
  useEventSubscription<AppEvents, 'comment.added'>('comment.added', (event) => event.payload.text);
  useEventSubscription<AppEvents, 'comment.added'>('comment.added', (event) => {
    expectTypeOf(event).toEqualTypeOf<{
      id: string;
      topic: string;
      type: 'comment.added';
      ts: string;
      payload: { docId: string; text: string };
    }>();
  });
  // @ts-expect-error a comment has no title
  useEventSubscription<AppEvents, 'comment.added'>('comment.added', (event) => event.payload.title);
  // @ts-expect-error without the app's map, a custom type is unknown
  useEventSubscription('comment.added', () => undefined);
  // The built-in catalogue stays available under an app map.
  useEventSubscription<AppEvents, 'notification'>('notification', (event) => event.payload.level);
  const comments = useSSEClient<AppEvents>();
  comments.on('comment.added', (event) => expectTypeOf(event.payload.docId).toBeString());
  // @ts-expect-error not in the map
  comments.on('comment.removed', () => undefined);
  const fake = new FakeSSEClient<AppEvents>();
  fake.publish('comment.added', { docId: '42', text: 'hi' });
  // @ts-expect-error the payload must match the map
  fake.publish('comment.added', { docId: '42' });
  // The provider takes a client of any event map.
  SSEProvider<AppEvents>({ client: fake });
  SSEProvider({ client: createSSEClient<AppEvents>({ url: '', getToken: async () => 'token' }) });

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
