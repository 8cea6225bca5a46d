import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { listenOnSockets } from '../src/plugin/listen-sockets.js';

/** Sockets in LISTEN state on 127.0.0.1:`port`, from the kernel's own table. */
function listeningSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const [, address, , state] = line.trim().split(/\s+/);
      return address === local && state === '0A';
    }).length;
}

/** A GET on a connection of its own (no keep-alive pool), so that each one is a new accept. */
function getOnNewConnection(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/who', agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe.runIf(process.platform === 'linux')('listenOnSockets', () => {
  it('opens the given number of sockets on one port, all serving the one app, and closes them with it', async () => {
    const app = Fastify();
    app.get('/who', async () => 'the app');
    await listenOnSockets(app, { port: 0, host: '127.0.0.1', sockets: 4 });
    const { port } = app.server.address() as net.AddressInfo;
    try {
      expect(listeningSockets(port)).toBe(4);
      // The kernel spreads new connections over the four: every one is answered by the app.
      const answers = await Promise.all(Array.from({ length: 64 }, () => getOnNewConnection(port)));
      expect(new Set(answers)).toEqual(new Set(['the app']));
    } finally {
      await app.close();
    }
    expect(listeningSockets(port)).toBe(0);
    expect(await refused(port)).toBe(true);
  });

  it('listens on one socket when asked, and refuses a count out of range before listening', async () => {
    const app = Fastify();
    await listenOnSockets(app, { port: 0, host: '127.0.0.1', sockets: 1 });
    const { port } = app.server.address() as net.AddressInfo;
    expect(listeningSockets(port)).toBe(1);
    await app.close();
    for (const sockets of [0, 65, 2.5]) {
      await expect(listenOnSockets(Fastify(), { port: 0, host: '127.0.0.1', sockets })).rejects.toThrow(/1 to 64/);
    }
  });
});
