import type { PublishRecord } from './chaos-judge.js';

/** What one publish sends: a `notification` whose title is its marker. */
export interface ChaosPublish {
  topic: string;
  critical: boolean;
  /** Extra body text, to make events big (the stalled reader's phase). */
  body?: string;
}

/** How long one publish may wait for its answer before it counts as "no answer". */
const PUBLISH_TIMEOUT_MS = 10_000;

/**
 * Publishes `event` through `instance` as the holder of `token`, and records the answer, whatever
 * it is: 201/202 with the id, an error status with its code, or no answer at all (refused, reset,
 * timed out: the outcome is unknown).
 */
export async function publishRecorded(
  instance: string,
  token: string,
  marker: string,
  event: ChaosPublish,
): Promise<PublishRecord> {
  const sentAt = Date.now();
  const base = { marker, topic: event.topic, critical: event.critical, instance, sentAt };
  try {
    const response = await fetch(new URL('/api/events', instance), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        topic: event.topic,
        type: 'notification',
        payload: { title: marker, level: 'info', ...(event.body === undefined ? {} : { body: event.body }) },
        critical: event.critical,
      }),
      signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS),
    });
    const text = await response.text();
    const answeredAt = Date.now();
    const body = parseJson(text) as { id?: unknown; error?: { code?: unknown } } | undefined;
    return {
      ...base,
      status: response.status,
      ...(typeof body?.id === 'string' ? { id: body.id } : {}),
      ...(typeof body?.error?.code === 'string' ? { code: body.error.code } : {}),
      answeredAt,
    };
  } catch (error) {
    return { ...base, error: describeError(error), answeredAt: Date.now() };
  }
}

/** Options of {@link startPublisher}. */
export interface PublisherOptions {
  /** Prefix of every marker; markers are `<name>-<n>`. */
  name: string;
  token: string;
  /** The instances' base URLs, read at every publish (round robin). */
  instances: () => readonly string[];
  /** The next event to publish. */
  next: () => ChaosPublish;
  /** Pause between publishes. */
  pauseMs: number;
}

/** A publisher running until stopped. */
export interface Publisher {
  readonly records: PublishRecord[];
  /** Stops after the publish in flight and resolves once it is answered. */
  stop(): Promise<void>;
}

/** Publishes one event after another, round robin over the instances, until stopped. */
export function startPublisher(options: PublisherOptions): Publisher {
  const records: PublishRecord[] = [];
  let running = true;
  const loop = (async () => {
    for (let count = 0; running; count++) {
      const urls = options.instances();
      const instance = urls[count % urls.length];
      if (instance === undefined) throw new Error('no instance to publish to');
      records.push(await publishRecorded(instance, options.token, `${options.name}-${count}`, options.next()));
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  })();
  return {
    records,
    async stop() {
      running = false;
      await loop;
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
}
