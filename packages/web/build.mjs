// Bundles the web client into dist/: one minified script, one stylesheet and index.html.
// `node build.mjs --analyze` also prints what each input adds to the script.
import { analyzeMetafile, build } from 'esbuild';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');

/**
 * The script may not grow past this (minified bytes) unnoticed: it is what a phone
 * downloads before it shows anything.
 */
const SCRIPT_BUDGET_BYTES = 100 * 1024;

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
const result = await build({
  entryPoints: [
    { in: path.join(root, 'src/main.tsx'), out: 'app' },
    { in: path.join(root, 'src/styles.css'), out: 'app' },
  ],
  outdir: dist,
  // Metafile paths are relative to this, whatever directory the build runs from.
  absWorkingDir: root,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['es2022', 'chrome111', 'firefox115', 'safari16.4'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: path.join(root, 'tsconfig.json'),
  metafile: true,
  write: true,
  logLevel: 'warning',
});
await copyFile(path.join(root, 'src/index.html'), path.join(dist, 'index.html'));

let scriptBytes = 0;
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (file.endsWith('.map')) continue;
  const gzipped = gzipSync(await readFile(path.join(root, file))).length;
  if (file.endsWith('.js')) scriptBytes = output.bytes;
  process.stdout.write(`${file}: ${(output.bytes / 1024).toFixed(1)} KiB (${(gzipped / 1024).toFixed(1)} KiB gzip)\n`);
}
if (process.argv.includes('--analyze')) process.stdout.write(await analyzeMetafile(result.metafile, { verbose: false }));
if (scriptBytes > SCRIPT_BUDGET_BYTES) {
  process.stderr.write(`app.js is ${scriptBytes} bytes, over its budget of ${SCRIPT_BUDGET_BYTES}: see --analyze\n`);
  process.exit(1);
}
