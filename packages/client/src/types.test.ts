import type { EnvelopeWithId, EventPayload } from '@infinitescribe/protocol';
import { describe, expectTypeOf, it } from 'vitest';
import type { ConnectionSnapshot, SSEClient, SSEClientError, SSEClientEventKey } from './index.js';

// Type tests: checked by `tsc -p packages/client` (tests live in src/); the bodies never run a client.
declare const _client: SSEClient;
/** The argument `client.on(key, handler)` passes to `handler`. */
type HandlerArgument<TKey extends SSEClientEventKey> = Parameters<Parameters<typeof _client.on<TKey>>[1]>[0];

describe('public types', () => {
  it('narrows handler arguments by event type', () => {
    expectTypeOf<HandlerArgument<'ai.generation.delta'>>().toEqualTypeOf<EnvelopeWithId<'ai.generation.delta'>>();
    expectTypeOf<EnvelopeWithId<'task.progress'>['payload']>().toEqualTypeOf<EventPayload<'task.progress'>>();
    expectTypeOf<HandlerArgument<'error'>>().toEqualTypeOf<SSEClientError>();
    expectTypeOf<HandlerArgument<'reset'>>().toEqualTypeOf<{
      reason: 'unknown_id' | 'gap';
      since?: string;
    }>();
    // '*' handlers get the union, which narrows on `type`.
    type Any = HandlerArgument<'*'>;
    expectTypeOf<Extract<Any, { type: 'notification' }>['payload']['title']>().toEqualTypeOf<string>();
  });

  it('rejects unknown keys and mismatched handlers', () => {
    const check = (subject: SSEClient) => {
      // @ts-expect-error: not a catalogue type nor a client event
      subject.on('notifications', () => undefined);
      // @ts-expect-error: a delta has no `title`
      subject.on('ai.generation.delta', (event) => event.payload.title);
      subject.on('ai.generation.delta', (event) => expectTypeOf(event.payload.seq).toEqualTypeOf<number>());
    };
    expectTypeOf(check).toBeFunction();
  });

  it('ties reasons to their state', () => {
    expectTypeOf<Extract<ConnectionSnapshot, { state: 'closed' }>['reason']>().toEqualTypeOf<
      'not_started' | 'client_closed' | 'unauthorized' | 'forbidden' | 'rejected'
    >();
    const narrow = (snapshot: ConnectionSnapshot) => {
      // @ts-expect-error: `offline` is never entered for `unauthorized`
      if (snapshot.state === 'offline' && snapshot.reason === 'unauthorized') return true;
      return false;
    };
    expectTypeOf(narrow).returns.toEqualTypeOf<boolean>();
  });
});
