import net from 'node:net';

/** A stream opened over a bare socket: cheap enough to hold thousands, and fully under control. */
export interface RawStream {
  socket: net.Socket;
  /** Resolves once `connection.established` has arrived. */
  established: Promise<void>;
  /** Published-event ids seen so far (scanned from `id:` lines). */
  ids: string[];
  /** Event names seen so far (scanned from `event:` lines), control events included. */
  eventNames: string[];
  /** Resolves when the socket is closed, by either side. */
  closed: Promise<void>;
}

/**
 * Opens `GET <path>` with a Bearer token on a raw socket to 127.0.0.1:`port`, resuming from
 * `lastEventId` when given. With `read: false` the socket is paused after its first bytes
 * (`socket.resume()` reads on).
 */
export function openRawStream(
  port: number,
  path: string,
  token: string,
  options: { read?: boolean; lastEventId?: string } = {},
): RawStream {
  const socket = net.connect({ host: '127.0.0.1', port });
  const resumeHeader = options.lastEventId === undefined ? '' : `Last-Event-ID: ${options.lastEventId}\r\n`;
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n${resumeHeader}\r\n`,
  );
  const ids: string[] = [];
  const eventNames: string[] = [];
  let buffer = '';
  let resolveEstablished: () => void = () => undefined;
  let rejectEstablished: (error: Error) => void = () => undefined;
  const established = new Promise<void>((resolve, reject) => {
    resolveEstablished = resolve;
    rejectEstablished = reject;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.once('close', () => rejectEstablished(new Error('closed before connection.established')));
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.includes('event: connection.established')) resolveEstablished();
    let end = buffer.lastIndexOf('\n');
    if (end === -1) return;
    for (const line of buffer.slice(0, end).split('\n')) {
      if (line.startsWith('id: ')) ids.push(line.slice(4));
      else if (line.startsWith('event: ')) eventNames.push(line.slice(7).trim());
    }
    buffer = buffer.slice(end + 1);
    end = -1;
  });
  if (options.read === false) {
    // Never read: the kernel buffers fill, then the server's write buffer does.
    socket.once('data', () => socket.pause());
  }
  established.catch(() => undefined);
  return { socket, established, ids, eventNames, closed };
}
