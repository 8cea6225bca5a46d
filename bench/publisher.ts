import { Agent, request } from 'node:http';
import { signDevToken } from '../packages/server/src/adapters/auth/dev-token.js';
import { nowMs } from './histogram.js';

/** The token every scenario's publisher uses on our server: `events:publish` on `broadcast`. */
export function publisherToken(secret: string): Promise<string> {
  return signDevToken(secret, {
    userId: 'bench-publisher',
    topics: ['broadcast'],
    scope: 'events:publish',
    expiresIn: 3600,
  });
}

/** What a paced publishing run did. */
export interface PublishReport {
  /** Requests sent / answered 2xx / failed (non-2xx or socket error). */
  sent: number;
  accepted: number;
  failed: number;
  /** Response status (or `error`) → count, for the failures. */
  statuses: Record<string, number>;
  startedAt: number;
  endedAt: number;
}

/**
 * Publishes `notification` events over keep-alive HTTP — the same method for both servers. The
 * title carries the send time (`b<ms since epoch>`), which the load generator subtracts from the
 * receive time to get the delivery latency.
 */
export class Publisher {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly url: URL;

  constructor(
    baseUrl: string,
    /** `critical`: the events are critical (stored before they are visible: 201 once stored). */
    private readonly target: { path: string; token: string; critical?: boolean; headers?: Record<string, string> },
  ) {
    this.url = new URL(baseUrl);
  }

  /** Sends one event; resolves with the status code (0 on a socket error). */
  publish(retry = true): Promise<number> {
    const body = JSON.stringify({
      topic: 'broadcast',
      type: 'notification',
      payload: { title: `b${nowMs().toFixed(3)}`, level: 'info' },
      ...(this.target.critical ? { critical: true } : {}),
    });
    return new Promise((resolve) => {
      const req = request(
        {
          host: this.url.hostname,
          port: Number(this.url.port),
          path: this.target.path,
          method: 'POST',
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.target.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...this.target.headers,
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', () => resolve(0));
        },
      );
      req.on('error', () => {
        // A kept-alive socket the server closed meanwhile: one retry on a fresh one.
        if (retry && req.reusedSocket) this.publish(false).then(resolve, () => resolve(0));
        else resolve(0);
      });
      req.end(body);
    });
  }

  /**
   * Publishes `ratePerSec` events per second for `durationMs` (at most `maxInFlight` requests
   * outstanding; if the server cannot keep up, fewer are sent). Bounded: stops sending at
   * `durationMs` + 5 s and waits at most 10 s more for answers.
   */
  async run(ratePerSec: number, durationMs: number, maxInFlight = 64): Promise<PublishReport> {
    const total = Math.max(1, Math.round((ratePerSec * durationMs) / 1000));
    const report: PublishReport = { sent: 0, accepted: 0, failed: 0, statuses: {}, startedAt: nowMs(), endedAt: 0 };
    const hardStop = report.startedAt + durationMs + 5_000;
    let inFlight = 0;
    await new Promise<void>((resolve) => {
      let done = false;
      const finishIfDone = () => {
        if (!done && inFlight === 0 && (report.sent >= total || nowMs() >= hardStop)) {
          done = true;
          resolve();
        }
      };
      const tick = () => {
        const elapsed = nowMs() - report.startedAt;
        const due = Math.min(total, Math.floor((elapsed * ratePerSec) / 1000) + 1);
        while (report.sent < due && inFlight < maxInFlight && nowMs() < hardStop) {
          report.sent++;
          inFlight++;
          this.publish().then((status) => {
            inFlight--;
            if (status >= 200 && status < 300) report.accepted++;
            else {
              report.failed++;
              const key = status === 0 ? 'error' : String(status);
              report.statuses[key] = (report.statuses[key] ?? 0) + 1;
            }
            finishIfDone();
          });
        }
        if (report.sent < total && nowMs() < hardStop) {
          const nextDue = (report.sent * 1000) / ratePerSec - elapsed;
          setTimeout(tick, inFlight >= maxInFlight ? 1 : Math.max(0, nextDue));
        } else {
          finishIfDone();
        }
      };
      tick();
      setTimeout(() => {
        if (!done) {
          done = true;
          resolve();
        }
      }, durationMs + 15_000).unref();
    });
    report.endedAt = nowMs();
    return report;
  }

  close(): void {
    this.agent.destroy();
  }
}
