import net from 'node:net';

/** A TCP proxy in front of a server, whose connections a test can cut at will. */
export interface TcpProxy {
  port: number;
  /** Destroys every proxied connection (both sides), as a crashing middlebox would. */
  dropAll(): void;
  /**
   * Cuts the server off: drops every connection and resets each new one at once, until
   * {@link TcpProxy.restore}. The client sees a dead network path, not a server that answers.
   */
  cut(): void;
  /** Forwards new connections again after {@link TcpProxy.cut}. */
  restore(): void;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1:<random port> forwarding to `targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let isCut = false;
  const server = net.createServer((client) => {
    if (isCut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  const dropAll = () => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port: address.port,
    dropAll,
    cut() {
      isCut = true;
      dropAll();
    },
    restore() {
      isCut = false;
    },
    close() {
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
