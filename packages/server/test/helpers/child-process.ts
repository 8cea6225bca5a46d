import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Node arguments that run a TypeScript entry from the sources: tsx, and the workspace packages'
 * source export condition (without it `@infinitescribe/*` resolves to the packages' dist/ build).
 */
export const TS_SOURCE_ARGS = ['--conditions=@infinitescribe/source', '--import', 'tsx'] as const;

/** A child process a test started, with what it printed and a way to stop it by its PID. */
export interface TrackedChild {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` by PID (unless it already exited) and waits for the exit. */
  stop(signal: NodeJS.Signals): Promise<number | string>;
}

/** Spawns `command` with piped output collected for assertions and failure messages. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): TrackedChild {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let gone = false;
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      gone = true;
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return {
    child,
    output: () => output,
    hasExited: () => gone,
    exited,
    async stop(signal) {
      if (!gone && child.pid !== undefined) process.kill(child.pid, signal);
      return exited;
    },
  };
}

/**
 * Resolves with the first match of `pattern` in what `tracked` printed; rejects if the process
 * exits first or nothing matches within `timeoutMs` (the process is left running: stop it).
 */
export async function waitForOutput(
  tracked: TrackedChild,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(tracked.output());
    if (match) return match;
    if (tracked.hasExited()) throw new Error(`exited before printing ${pattern}:\n${tracked.output()}`);
    if (Date.now() > deadline) throw new Error(`printed no ${pattern} in ${timeoutMs} ms:\n${tracked.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
