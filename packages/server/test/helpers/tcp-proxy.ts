import net from 'node:net';
import { Transform } from 'node:stream';

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
  /**
   * The next `count` requests reach the server, but their connections die (both sides) when the
   * server's answer starts: the request was handled, and the client never hears so. Returns the
   * first bytes of each answer cut, as they arrive.
   */
  dropAnswers(count: number): Buffer[];
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1:<random port> forwarding to `targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let isCut = false;
  let answersToDrop = 0;
  let droppedAnswers: Buffer[] = [];
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
    // A request armed by dropAnswers (on a new or a kept-alive connection) has its answer cut.
    let dropInto: Buffer[] | undefined;
    client.on('data', () => {
      if (dropInto || answersToDrop === 0) return;
      answersToDrop--;
      dropInto = droppedAnswers;
    });
    const gate = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        if (!dropInto) return done(null, chunk);
        dropInto.push(chunk);
        end();
        done();
      },
    });
    client.pipe(upstream);
    upstream.pipe(gate).pipe(client);
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
    dropAnswers(count) {
      answersToDrop = count;
      droppedAnswers = [];
      return droppedAnswers;
    },
    close() {
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
