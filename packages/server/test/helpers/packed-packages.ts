/**
 * @module The packages as a user gets them: compiled (`npm run compile`), packed with `npm pack`,
 * and installed from the tarballs into a project in a temporary folder outside the repository,
 * with the registry for everything else. No workspace links, no path mappings: what resolves
 * there is what npm would publish.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The published packages, in dependency order. */
export const PACKAGE_DIRS = ['packages/protocol', 'packages/client', 'packages/react', 'packages/server'] as const;

/** Where the consumer's own files come from besides the package READMEs (see {@link createConsumerProject}). */
const CONSUMER_FIXTURES = fileURLToPath(new URL('../fixtures/consumer/', import.meta.url));

/**
 * The environment for an npm of our own: the caller's, without what `npm test` passes down to its
 * scripts (`npm_config_local_prefix` and the like would point an install in another folder back
 * at the repository). The cache, the registry and the user's npmrc stay.
 */
export function npmEnvironment(): NodeJS.ProcessEnv {
  const kept = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_nodedir']);
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_') || kept.has(name)),
  );
}

/** Runs a command to completion; rejects with everything it printed when it fails. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${command} ${args.join(' ')} failed (${error.message}):\n${stdout}\n${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

/** `npm run compile`: the packages and the standalone host to dist/ (tsc -b skips what is up to date). */
export async function compileWorkspace(): Promise<void> {
  await run('npm', ['run', 'compile'], { cwd: REPO_ROOT, env: npmEnvironment() });
}

/** One tarball, as `npm pack --json` describes it. */
export interface PackedPackage {
  name: string;
  version: string;
  /** Absolute path of the .tgz. */
  tarball: string;
  /** Paths inside the package. */
  files: string[];
}

/** Packs the compiled packages into `destination` (run {@link compileWorkspace} first). */
export async function packPackages(destination: string): Promise<PackedPackage[]> {
  const workspaces = PACKAGE_DIRS.flatMap((dir) => ['--workspace', dir]);
  const { stdout } = await run(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', destination, ...workspaces],
    { cwd: REPO_ROOT, env: npmEnvironment() },
  );
  const packed = JSON.parse(stdout) as { name: string; version: string; filename: string; files: { path: string }[] }[];
  return packed.map((entry) => ({
    name: entry.name,
    version: entry.version,
    tarball: path.join(destination, entry.filename),
    files: entry.files.map((file) => file.path),
  }));
}

/** A fenced block of a package README marked ```` ```ts consumer=<path> ````: a file of the consumer project. */
export interface ReadmeExample {
  readme: string;
  path: string;
  body: string;
}

/** The copy-paste examples of the package READMEs. */
export async function readmeExamples(): Promise<ReadmeExample[]> {
  const examples: ReadmeExample[] = [];
  for (const dir of PACKAGE_DIRS) {
    const readme = path.join(dir, 'README.md');
    const markdown = await readFile(path.join(REPO_ROOT, readme), 'utf8');
    for (const match of markdown.matchAll(/^```\w+ consumer=(\S+)\n([\s\S]*?)^```$/gm)) {
      examples.push({ readme, path: match[1] ?? '', body: match[2] ?? '' });
    }
  }
  return examples;
}

/** Third-party packages the consumer installs itself, at the versions this repository uses. */
const CONSUMER_DEPENDENCIES = ['fastify', 'zod', 'react', 'react-dom'];
const CONSUMER_DEV_DEPENDENCIES = ['@types/node', '@types/react', '@types/react-dom'];

async function installedVersion(name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

/** A project of a user's own with the packed packages installed. */
export interface ConsumerProject {
  dir: string;
  examples: ReadmeExample[];
}

/**
 * Creates a TypeScript project in a fresh temporary folder: the README examples and the fixtures
 * of test/fixtures/consumer as its files, a tsconfig with Node's own module resolution compiling
 * them to out/, and `npm install` of the tarballs plus the third-party packages a user would add.
 * npm's cache is used (`--prefer-offline`), never an earlier install.
 */
export async function createConsumerProject(packed: readonly PackedPackage[]): Promise<ConsumerProject> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'infinitescribe-consumer-'));
  const versions = async (names: readonly string[]) =>
    Object.fromEntries(await Promise.all(names.map(async (name) => [name, await installedVersion(name)] as const)));
  const manifest = {
    name: 'consumer',
    private: true,
    type: 'module',
    dependencies: {
      ...Object.fromEntries(packed.map((entry) => [entry.name, `file:${entry.tarball}`])),
      ...(await versions(CONSUMER_DEPENDENCIES)),
    },
    devDependencies: await versions(CONSUMER_DEV_DEPENDENCIES),
  };
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM', 'DOM.Iterable'],
        jsx: 'react-jsx',
        types: ['node'],
        strict: true,
        skipLibCheck: false,
        rootDir: '.',
        outDir: 'out',
      },
      include: ['src', 'web'],
    }),
  );
  await cp(CONSUMER_FIXTURES, dir, { recursive: true });
  const examples = await readmeExamples();
  for (const example of examples) {
    await mkdir(path.dirname(path.join(dir, example.path)), { recursive: true });
    await writeFile(path.join(dir, example.path), example.body);
  }
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: dir,
    env: npmEnvironment(),
  });
  return { dir, examples };
}
