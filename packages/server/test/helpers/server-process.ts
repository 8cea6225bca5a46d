import type { ChildProcess } from 'node:child_process';
import { spawnTracked } from './child-process.js';
import { TEST_JWT_SECRET } from './test-app.js';

const MAIN = new URL('../../../../apps/backend/src/main.ts', import.meta.url).pathname;

/** A real server process (src/main.ts), as an operator runs it. */
export interface ServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote, for assertions and for debugging a failure. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` to the process by PID and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `src/main.ts` on 127.0.0.1:<free port> with test defaults plus `env`; resolves once it listens. */
export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = spawnTracked(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      JWT_SECRET: TEST_JWT_SECRET,
      PUBLISH_RATE_MAX: '1000000',
      PUBLISH_TOPIC_RATE_MAX: '1000000',
      ...env,
    },
  });
  const { child, exited, output } = server;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never left running unowned: the caller gets no handle to stop it by.
      void server.stop('SIGKILL');
      reject(new Error(`server did not start:\n${output()}`));
    }, 60_000);
    const onData = () => {
      const match = /READY (http:\/\/\S+)/.exec(output());
      if (!match?.[1]) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      resolve(match[1]);
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${output()}`));
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('no pid');
  return {
    url,
    pid,
    child,
    output,
    exited,
    stop: (signal = 'SIGTERM') => server.stop(signal),
  };
}
