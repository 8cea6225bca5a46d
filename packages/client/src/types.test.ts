import type { EnvelopeWithId, EventPayload, PublishedEvent } from '@infinitescribe/protocol';
import { describe, expectTypeOf, it } from 'vitest';
import { createSSEClient } from './index.js';
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

describe('app event maps', () => {
  type AppEvents = { 'comment.added': { docId: string; text: string } };
  interface AppEventsInterface {
    'doc.renamed': { docId: string; title: string };
  }

  it('types an app event end to end, and keeps the built-in catalogue', () => {
    const check = (subject: SSEClient<AppEvents>) => {
      subject.on('comment.added', (event) => {
        expectTypeOf(event).toEqualTypeOf<{
          id: string;
          topic: string;
          type: 'comment.added';
          ts: string;
          payload: { docId: string; text: string };
        }>();
        expectTypeOf(event.payload.text).toEqualTypeOf<string>();
      });
      subject.on('notification', (event) => expectTypeOf(event.payload.title).toEqualTypeOf<string>());
      subject.on('*', (event) => {
        if (event.type === 'comment.added') expectTypeOf(event.payload.docId).toEqualTypeOf<string>();
      });
      // @ts-expect-error: a comment has no `title`
      subject.on('comment.added', (event) => event.payload.title);
      // @ts-expect-error: not in the app's map nor the catalogue
      subject.on('comment.removed', () => undefined);
    };
    expectTypeOf(check).toBeFunction();
    expectTypeOf(createSSEClient<AppEvents>).returns.toEqualTypeOf<SSEClient<AppEvents>>();
  });

  it('accepts an interface as the map, and the default client knows only the catalogue', () => {
    const check = (typed: SSEClient<AppEventsInterface>, plain: SSEClient) => {
      typed.on('doc.renamed', (event) => expectTypeOf(event.payload.title).toEqualTypeOf<string>());
      // @ts-expect-error: the default map is the built-in catalogue
      plain.on('comment.added', () => undefined);
    };
    expectTypeOf(check).toBeFunction();
    expectTypeOf<PublishedEvent<AppEvents, 'comment.added'>['payload']>().toEqualTypeOf<AppEvents['comment.added']>();
  });

  it('lets a typed client feed code written for the default client', () => {
    const attach = (client: SSEClient) => client;
    const check = (typed: SSEClient<AppEvents>) => attach(typed);
    expectTypeOf(check).toBeFunction();
  });
});
