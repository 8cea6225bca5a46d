import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cleanups, type ServerProcess, spawnTracked, stopChild } from './processes.js';

/**
 * Nchan (nginx + libnginx-mod-nchan, C) as a third server of the core scenario: its own prefix
 * folder, configuration and pid file, on a free port of 127.0.0.1, one process (`master_process
 * off`, one event loop like Node's), stopped by its PID. `GET /stream` subscribes to the channel
 * `broadcast` as EventSource; `POST /publish` publishes the body as the `data:` of one message
 * (the event name from `X-EventSource-Event`); `/stats` is nchan_stub_status.
 */

const MODULE_PATHS = ['/usr/lib/nginx/modules/ngx_nchan_module.so', '/usr/share/nginx/modules/ngx_nchan_module.so'];
const NGINX = '/usr/sbin/nginx';

/** Whether nginx and the Nchan module are installed (`apt-get install nginx libnginx-mod-nchan`). */
export function nchanModule(): string | undefined {
  if (!existsSync(NGINX)) return undefined;
  return MODULE_PATHS.find((path) => existsSync(path));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function config(prefix: string, port: number, module: string): string {
  return `load_module ${module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 65536; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  nchan_shared_memory_size 256M;
  server {
    listen 127.0.0.1:${port} backlog=65535;
    location = /stream {
      nchan_subscriber eventsource;
      nchan_channel_id broadcast;
      nchan_subscriber_first_message newest;
    }
    location = /publish {
      nchan_publisher;
      nchan_channel_id broadcast;
      nchan_message_buffer_length 1000;
      nchan_message_timeout 60s;
    }
    location = /stats { nchan_stub_status; }
  }
}
`;
}

/** Starts Nchan; stopping it and deleting its folder are registered in `cleanups`. */
export async function startNchan(cleanups: Cleanups): Promise<ServerProcess> {
  const module = nchanModule();
  if (module === undefined) throw new Error('nginx with the Nchan module is not installed');
  const prefix = await mkdtemp(join(tmpdir(), 'sse-bench-nchan-'));
  cleanups.push(() => rm(prefix, { recursive: true, force: true }));
  const port = await freePort();
  const file = join(prefix, 'nginx.conf');
  await writeFile(file, config(prefix, port, module));
  const child = spawnTracked(NGINX, ['-p', prefix, '-c', file, '-e', join(prefix, 'error.log')], prefix);
  const lines: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
  cleanups.push(() => stopChild(child, 5_000));
  const until = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > until) throw new Error(`nginx did not start:\n${lines.join('')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (child.pid === undefined) throw new Error('nginx has no pid');
  return {
    pid: child.pid,
    diagnosticDir: prefix,
    baseUrl: `http://127.0.0.1:${port}`,
    tail: () => lines.join('').split('\n').slice(-40).join('\n'),
    stop: () => stopChild(child, 5_000),
  };
}
