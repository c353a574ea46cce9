#!/usr/bin/env node
/**
 * Builds `batch` into one file, run by `dist/daemon/cli/batch.cjs` (the `batch` command), after
 * `tsc` has built dist/:
 *   - dist/daemon/cli/batch.bundle.cjs: the CLI and what it imports (commander, zod, the client) in
 *     one CommonJS file. Node reads one file instead of about a hundred modules, and CommonJS skips
 *     the ES module loader; each verb's code still runs only when that verb does. zod's message
 *     translations (locales/index.js: 64 modules, about a third of zod) are left out: zod loads
 *     English by itself and nothing here selects another language.
 *   - dist/daemon/cli/batch.bundle.cache: V8's compiled code for it, made by one `batch --help` run,
 *     so a start does not compile the file again. V8 refuses the cache of another Node version; the
 *     file then runs without it.
 *
 *   node scripts/bundle-cli.mjs      (after tsc; `npm run build` runs both)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dir = join(root, 'dist/daemon/cli');
const entry = join(dir, 'main.js');
const bundle = join(dir, 'batch.bundle.cjs');
const cache = join(dir, 'batch.bundle.cache');

/** zod's locales index, read as an empty module (its `locales` namespace is never used here). */
const withoutZodLocales = {
  name: 'without-zod-locales',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'empty' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

async function main() {
  if (!existsSync(entry)) throw new Error(`${entry} missing: run tsc first`);
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    // Without esbuild, `batch` loads the modules (slower to start, the same behaviour).
    rmSync(bundle, { force: true });
    rmSync(cache, { force: true });
    process.stderr.write('bundle-cli: esbuild not installed; batch will load its modules\n');
    return;
  }
  await esbuild.build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [withoutZodLocales],
    // The modules find package.json and cli-table3 from their own URL: the bundle sits beside main.js.
    define: { 'import.meta.url': '__batch_module_url' },
    // One function expression, so batch.cjs compiles the file as it is (with the cache) and calls it.
    banner: {
      js: "(function (exports, require, module, __filename, __dirname) { 'use strict'; const __batch_module_url = require('node:url').pathToFileURL(__filename).href;",
    },
    footer: { js: '})' },
  });
  rmSync(cache, { force: true });
  const run = spawnSync(process.execPath, [join(dir, 'batch.cjs'), '--help'], {
    env: { ...process.env, BATCH_WRITE_CODE_CACHE: cache },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`batch --help exited ${run.status} while making the code cache`);
}

main().catch((error) => {
  process.stderr.write(`bundle-cli: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
