/**
 * @module `SSEProvider`: puts one SSE client (and the generation and task stores fed by it) in
 * React context. It creates the client once, connects it in an effect and closes it on unmount,
 * like TanStack's `QueryClientProvider` mounts its client.
 */
import {
  createHttpStateLoaders,
  createSSEClient,
  GenerationStore,
  TaskStore,
  type BuiltInEvents,
  type EventMap,
  type FetchLike,
  type GetToken,
  type SSEClient,
  type SSEClientOptions,
  type StateLoaders,
} from '@infinitescribe/client';
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { defaultFrameScheduler, type FrameScheduler } from './frame-scheduler.js';

/** What the hooks share: the client, the stores it feeds, and how to reload state. */
export interface SSEContextValue {
  client: SSEClient;
  generations: GenerationStore;
  tasks: TaskStore;
  /** Absent when the provider was given a client and no loaders: lost state is then not reloaded. */
  loaders: Partial<StateLoaders>;
  scheduleFrame: FrameScheduler;
  /** The server and credentials of a provider built from `options` (for `@infinitescribe/react/chat`). */
  access?: { url: string; getToken: GetToken; fetch?: FetchLike };
}

const SSEContext = createContext<SSEContextValue | null>(null);

interface SSEProviderCommonProps {
  children?: ReactNode;
  /**
   * How hooks reload state after lost events. Default: authenticated GETs built from `options`
   * (`url`, `getToken`, `fetch`); none when a `client` is given (pass them then).
   */
  loaders?: Partial<StateLoaders>;
  /** When `useGeneration` re-renders. Default: once per animation frame. */
  scheduleFrame?: FrameScheduler;
}

/**
 * Props of {@link SSEProvider}: either ready-made `client` (of any event map) or the `options` to
 * create one.
 * With `options`, the provider owns the client: created once (later changes of `options` are
 * ignored; remount with a new `key` to switch users), connected on mount, closed on unmount.
 * With `client`, it is connected on mount and left open on unmount (its owner closes it).
 */
export type SSEProviderProps<TEvents extends EventMap = BuiltInEvents> = SSEProviderCommonProps &
  ({ client: SSEClient<TEvents>; options?: never } | { options: SSEClientOptions; client?: never });

/**
 * Provides an SSE client to the hooks below it.
 * @example
 * <SSEProvider key={userId} options={{ url: '', getToken }}>
 *   <App />
 * </SSEProvider>
 */
export function SSEProvider<TEvents extends EventMap = BuiltInEvents>(props: SSEProviderProps<TEvents>): ReactNode {
  const [value] = useState<SSEContextValue & { isOwned: boolean }>(() => {
    const isOwned = props.client === undefined;
    // The hooks read the client through the built-in map; `useSSEClient<TEvents>` types it back.
    const client = props.client
      ? (props.client as SSEClient)
      : createSSEClient({ ...props.options, autoConnect: false });
    const defaultLoaders: Partial<StateLoaders> = props.options
      ? createHttpStateLoaders({
          url: props.options.url,
          getToken: props.options.getToken,
          ...(props.options.fetch ? { fetch: props.options.fetch } : {}),
        })
      : {};
    return {
      client,
      isOwned,
      generations: new GenerationStore(),
      tasks: new TaskStore(),
      loaders: { ...defaultLoaders, ...props.loaders },
      scheduleFrame: props.scheduleFrame ?? defaultFrameScheduler,
      ...(props.options
        ? {
            access: {
              url: props.options.url,
              getToken: props.options.getToken,
              ...(props.options.fetch ? { fetch: props.options.fetch } : {}),
            },
          }
        : {}),
    };
  });

  useEffect(() => {
    // Stores first, so no event of the first connection is missed.
    const detachGenerations = value.generations.attach(value.client);
    const detachTasks = value.tasks.attach(value.client);
    value.client.connect();
    return () => {
      detachGenerations();
      detachTasks();
      if (value.isOwned) value.client.close();
    };
  }, [value]);

  return <SSEContext.Provider value={value}>{props.children}</SSEContext.Provider>;
}

/**
 * The context of the nearest {@link SSEProvider}, for the hooks of this package.
 * @throws when there is no provider above.
 */
export function useSSEContext(): SSEContextValue {
  const value = useContext(SSEContext);
  if (!value) {
    throw new Error(
      '@infinitescribe/react: no SSE client here. Wrap your app in <SSEProvider options={{ url, getToken }}> ' +
        '(or <SSEProvider client={client}>) before using useSSEClient, useSSEConnection, useEventSubscription, ' +
        'useGeneration or useTaskProgress.',
    );
  }
  return value;
}

/**
 * The client of the nearest {@link SSEProvider}, typed by the app's own event map when given.
 * @throws when there is no provider above, with a message saying how to add one.
 * @example
 * const client = useSSEClient();
 * const retry = () => client.reconnect();
 * const comments = useSSEClient<AppEvents>(); // comments.on('comment.added', …) is typed
 */
export function useSSEClient<TEvents extends EventMap = BuiltInEvents>(): SSEClient<TEvents> {
  // One client serves every map: the map only types what `on` accepts and hands over.
  return useSSEContext().client as unknown as SSEClient<TEvents>;
}
