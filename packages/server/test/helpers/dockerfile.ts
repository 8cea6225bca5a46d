/**
 * @module The repository's Dockerfile read as instructions (Docker does not run in CI): what
 * deploy-files.test.ts checks and packaging.test.ts replays.
 */
import { readFileSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { npmEnvironment, REPO_ROOT, run } from './packed-packages.js';

const DOCKERFILE = path.join(REPO_ROOT, 'Dockerfile');

export interface DockerInstruction {
  keyword: string;
  args: string;
}

/** One build stage: `FROM <from> AS <name>` and its instructions. */
export interface DockerStage {
  name: string;
  from: string;
  instructions: DockerInstruction[];
}

/** The Dockerfile as instructions: continuation lines joined, comments dropped. */
export function dockerInstructions(): DockerInstruction[] {
  return readFileSync(DOCKERFILE, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** The build stages, in order (instructions before the first FROM, such as ARG, left out). */
export function dockerStages(): DockerStage[] {
  const stages: DockerStage[] = [];
  for (const instruction of dockerInstructions()) {
    if (instruction.keyword === 'FROM') {
      const [from = '', , name = ''] = instruction.args.split(/\s+/);
      stages.push({ name, from, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** The final stage's environment and command, laid out by {@link replayRuntimeStage}. */
export interface ReplayedImage {
  env: Record<string, string>;
  command: string[];
}

/**
 * Lays out what the final stage puts in /app, in `dir`: a `COPY --from=<stage> /app ./` by
 * replaying that stage (its COPYs from the build context, its `npm` RUNs, its base stages first),
 * a `COPY --from=build /app/<path> <path>` from the workspace, which must be built already (the
 * build stage runs `npm run build`, which would reinstall everything). Returns its ENV and CMD.
 */
export async function replayRuntimeStage(dir: string): Promise<ReplayedImage> {
  const stages = dockerStages();
  const runtime = stages.at(-1);
  if (!runtime) throw new Error('no stages');
  const image: ReplayedImage = { env: {}, command: [] };
  for (const { keyword, args } of runtime.instructions) {
    const [flag = '', source = '', target = ''] = args.split(/\s+/);
    if (keyword === 'ENV') {
      for (const pair of args.split(/\s+/)) {
        const [name = '', value = ''] = pair.split('=');
        image.env[name] = value;
      }
    } else if (keyword === 'CMD') {
      image.command = JSON.parse(args) as string[];
    } else if (keyword === 'COPY' && flag === '--from=build' && source.startsWith('/app/')) {
      await cp(path.join(REPO_ROOT, source.slice('/app/'.length)), path.join(dir, target), { recursive: true });
    } else if (keyword === 'COPY' && flag.startsWith('--from=') && source === '/app' && target === './') {
      await replayStage(stages, flag.slice('--from='.length), dir);
    } else if (keyword === 'COPY') {
      throw new Error(`cannot replay COPY ${args}`);
    }
  }
  return image;
}

async function replayStage(stages: readonly DockerStage[], name: string, dir: string): Promise<void> {
  const stage = stages.find((candidate) => candidate.name === name);
  if (!stage) return; // a base image: nothing of its own in /app
  await replayStage(stages, stage.from, dir);
  for (const { keyword, args } of stage.instructions) {
    if (keyword === 'COPY') {
      const parts = args.split(/\s+/);
      const target = path.join(dir, parts.at(-1) ?? '');
      for (const source of parts.slice(0, -1)) {
        if (source.startsWith('--')) throw new Error(`cannot replay COPY ${args}`);
        await mkdir(target, { recursive: true });
        await cp(path.join(REPO_ROOT, source), path.join(target, path.basename(source)), { recursive: true });
      }
    } else if (keyword === 'RUN') {
      if (!/^npm /.test(args)) throw new Error(`cannot replay RUN ${args}`);
      await run('sh', ['-c', args], { cwd: dir, env: npmEnvironment() });
    }
  }
}
