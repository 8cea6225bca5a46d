/**
 * `node scripts/copy-assets.js <project>...`: after `tsc -b`, copies each project's non-TypeScript
 * run-time files (the store's SQL migrations, the offline provider's corpus) from src/ to dist/,
 * beside the compiled modules that find them with `new URL('./…', import.meta.url)`. tsc copies
 * only what it compiles.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

for (const project of process.argv.slice(2)) {
  const src = join(project, 'src');
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || /\.tsx?$/.test(entry.name)) continue;
    const from = join(entry.parentPath, entry.name);
    const to = join(project, 'dist', relative(src, from));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
  }
}
