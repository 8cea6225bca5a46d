import net from 'node:net';
import type { FastifyInstance, FastifyListenOptions } from 'fastify';

/** Options of {@link listenOnSockets}. */
export interface ListenSocketsOptions {
  port: number;
  host: string;
  /** Listen queue of each socket (the kernel caps it at `net.core.somaxconn`). */
  backlog?: number;
  /**
   * Listening sockets on the port, 1 to 64. Default: {@link DEFAULT_LISTEN_SOCKETS} on Linux, 1
   * elsewhere (spreading connections over several sockets of a port needs Linux's SO_REUSEPORT).
   */
  sockets?: number;
}

/** Listening sockets per port on Linux by default: up to this many connections accepted per event-loop turn. */
export const DEFAULT_LISTEN_SOCKETS = 8;

/**
 * Starts `app` listening on `sockets` listening sockets of one port, which the kernel
 * (SO_REUSEPORT) shares the incoming connections among; all of them feed the one HTTP server.
 * Returns the address Fastify reports.
 *
 * Why: libuv accepts one connection per listening socket per event-loop turn (libuv #3696). When
 * thousands connect at once (the clients of a killed instance reconnecting), each connection
 * then costs a whole turn of the server, with its own Redis round trips (the turn's lease and
 * hot-log batches, core/turn-batch.ts, hold one stream each): the connections wait in the
 * kernel's listen queue while the process is busy with turns of one. With 8 sockets, a turn
 * takes up to 8, and their Redis work goes out together: in `npm run bench -- --scenario=storm`,
 * 10,000 streams resumed at 1.3–2× as many per CPU-second of the server, and 99 % of them within
 * 4.3–5.0 s of the kill instead of 6.0–6.6 s.
 */
export async function listenOnSockets(app: FastifyInstance, options: ListenSocketsOptions): Promise<string> {
  const sockets = options.sockets ?? (process.platform === 'linux' ? DEFAULT_LISTEN_SOCKETS : 1);
  if (!Number.isInteger(sockets) || sockets < 1 || sockets > 64) {
    throw new RangeError(`listen sockets must be an integer from 1 to 64, got ${sockets}`);
  }
  const { host, backlog } = options;
  // Fastify hands its listen options to Node's server.listen, reusePort included.
  const listenOptions: FastifyListenOptions & { reusePort?: boolean } = {
    port: options.port,
    host,
    ...(backlog === undefined ? {} : { backlog }),
    ...(sockets > 1 ? { reusePort: true } : {}),
  };
  const address = await app.listen(listenOptions);
  if (sockets === 1) return address;
  const server = app.server;
  const { port } = server.address() as net.AddressInfo;
  const extras: net.Server[] = [];
  // The other sockets stop taking connections when the HTTP server stops (app.close()), or a
  // closing instance would go on accepting them until its last connection ended.
  const close = server.close.bind(server);
  server.close = (callback) => {
    for (const extra of extras) extra.close();
    return close(callback);
  };
  try {
    for (let index = 1; index < sockets; index++) {
      // noDelay as Node's HTTP server sets it on the connections it accepts itself.
      const extra = net.createServer({ noDelay: true }, (socket) => server.emit('connection', socket));
      extras.push(extra);
      await new Promise<void>((resolve, reject) => {
        extra.once('error', reject);
        extra.listen({ port, host, backlog, reusePort: true }, () => {
          extra.off('error', reject);
          resolve();
        });
      });
    }
  } catch (error) {
    await app.close();
    throw error;
  }
  return address;
}
