import net from 'node:net';

/** A TCP proxy that can black-hole chosen connections while keeping their sockets open. */
export interface FreezableProxy {
  port: number;
  /**
   * Stops forwarding, both ways, on every connection whose client sent `marker` (now or later, for
   * new connections too), without closing anything: what a middlebox that silently drops a flow
   * does. Neither end notices until it expects an answer.
   */
  freeze(marker: string): void;
  /** Forgets the marker and resets the frozen connections (as a middlebox forgetting the flow). */
  thaw(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** The first bytes the client sent, where a Redis client's CLIENT SETNAME shows. */
  head: string;
  frozen: boolean;
}

const HEAD_BYTES = 4_096;

/** Starts a proxy on 127.0.0.1:<random port> forwarding to `targetPort`. */
export async function startFreezableProxy(targetPort: number): Promise<FreezableProxy> {
  const pairs = new Set<Pair>();
  let marker: string | undefined;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    const pair: Pair = { client, upstream, head: '', frozen: false };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk: Buffer) => {
      if (pair.head.length < HEAD_BYTES) pair.head += chunk.toString('latin1');
      if (marker !== undefined && pair.head.includes(marker)) pair.frozen = true;
      if (!pair.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.frozen) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    freeze(match) {
      marker = match;
      for (const pair of pairs) if (pair.head.includes(match)) pair.frozen = true;
    },
    thaw() {
      marker = undefined;
      for (const pair of [...pairs]) {
        if (!pair.frozen) continue;
        pairs.delete(pair);
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
