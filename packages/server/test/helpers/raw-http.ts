import net from 'node:net';

/** What came back on a raw socket: the status line, headers and body as text. */
export interface RawAnswer {
  /** Everything received, byte for byte (latin1). */
  raw: string;
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (rather than the wait running out). */
  closed: boolean;
}

/**
 * Writes `request` (bytes as given, so malformed requests are possible) to 127.0.0.1:`port` and
 * reads until the server closes the connection, or `waitMs` has passed since the last byte.
 * `then` writes more after `afterMs` (a body that trickles in, for instance).
 */
export function rawRequest(
  port: number,
  request: string,
  options: { waitMs?: number; then?: { afterMs: number; write: string } } = {},
): Promise<RawAnswer> {
  const waitMs = options.waitMs ?? 1_000;
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let raw = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const [head = '', ...rest] = raw.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
      resolve({
        raw,
        status: status === undefined ? undefined : Number(status),
        headers,
        body: rest.join('\r\n\r\n'),
        closed,
      });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), waitMs);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      raw += chunk;
      arm();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.write(request, 'latin1');
    if (options.then) {
      const { afterMs, write } = options.then;
      setTimeout(() => socket.writable && socket.write(write, 'latin1'), afterMs);
      timer = setTimeout(() => finish(false), afterMs + waitMs);
    } else arm();
  });
}
