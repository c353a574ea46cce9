#!/usr/bin/env node
/**
 * Builds `batch` into one file, run by `dist/daemon/cli/batch.cjs` (the `batch` command), after
 * `tsc` has built dist/:
 *   - dist/daemon/cli/batch.bundle.cjs: the CLI and what it imports (commander, zod, the client) in
 *     one CommonJS file. Node reads one file instead of about a hundred modules, and CommonJS skips
 *     the ES module loader; each verb's code still runs only when that verb does. zod's message
 *     translations (locales/index.js: 64 modules, about a third of zod) are left out: zod loads
 *     English by itself and nothing here selects another language.
 *     Node built-ins that only rare paths use (child_process: commander's executable subcommands;
 *     https: an https:// server) are required on first use instead of at start.
 *   - dist/daemon/cli/batch.yaml.cjs: the YAML library (a quarter of the CLI's code), in a file of
 *     its own that the bundle requires when it reads a client.yaml: a run without one does not read
 *     or decode it.
 *   - dist/daemon/cli/batch.bundle.cache: V8's compiled code for it, made by one run of `batch
 *     enqueue` against a closed port (the path of every verb: options, session, client, schemas, a
 *     request), so a start does not compile that code again. V8 refuses the cache of another Node
 *     version; the file then runs without it.
 *   - dist/daemon/cli/batch.replies.json: what `batch --help`, `-h`, `help`, `--version`, `-V` and
 *     a bare `batch` print (to a pipe: 80 columns) and exit with, recorded from the bundle, so that
 *     batch.cjs prints them without loading it.
 *
 *   node scripts/bundle-cli.mjs      (after tsc; `npm run build` runs both)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dir = join(root, 'dist/daemon/cli');
const entry = join(dir, 'main.js');
const bundle = join(dir, 'batch.bundle.cjs');
const cache = join(dir, 'batch.bundle.cache');
const YAML_FILE = 'batch.yaml.cjs';
const yamlBundle = join(dir, YAML_FILE);
const replies = join(dir, 'batch.replies.json');

/** The command lines that name no verb: batch.cjs answers them from the recording. */
const RECORDED = [[], ['--help'], ['-h'], ['help'], ['--version'], ['-V']];
/** Closed on any machine (tcpmux): the cache run's request fails at once, as for a stopped daemon. */
const CLOSED_PORT_URL = 'http://127.0.0.1:1';

/** `yaml`, required from the file beside the bundle (batch.cjs's `require`, in the same folder). */
const yamlBeside = {
  name: 'yaml-beside',
  setup(build) {
    build.onResolve({ filter: /^yaml$/ }, () => ({ path: `./${YAML_FILE}`, external: true }));
  },
};

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

/**
 * Built-ins required on first use: a module whose properties are getters that require the real one.
 * Their names come from this Node (the one that runs the build and, as a rule, the CLI).
 */
const LAZY_BUILTINS = ['child_process', 'https'];
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    build.onResolve({ filter }, (args) =>
      args.namespace === 'lazy-builtin'
        ? undefined
        : { path: args.path.replace(/^node:/, ''), namespace: 'lazy-builtin' },
    );
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const names = Object.keys(createRequire(import.meta.url)(`node:${args.path}`));
      const getters = names.map(
        (n) => `${JSON.stringify(n)}: { get: () => real()[${JSON.stringify(n)}], enumerable: true }`,
      );
      return {
        contents: `let loaded; const real = () => (loaded ??= require(${JSON.stringify(`node:${args.path}`)}));\nmodule.exports = Object.defineProperties({}, {${getters.join(',\n')}});\n`,
        loader: 'js',
      };
    });
  },
};

/**
 * esbuild's settings for the one-file build of `entryPoint` (scripts/bench-first-hour.mjs builds its
 * floor, zod alone, with the same).
 */
export function bundleSettings(entryPoint, outfile) {
  return {
    entryPoints: [entryPoint],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [withoutZodLocales, lazyBuiltins, yamlBeside],
    // The modules find package.json and cli-table3 from their own URL: the bundle sits beside main.js.
    define: { 'import.meta.url': '__batch_module_url' },
    // One function expression, so batch.cjs compiles the file as it is (with the cache) and calls it.
    banner: {
      js: "(function (exports, require, module, __filename, __dirname) { 'use strict'; const __batch_module_url = require('node:url').pathToFileURL(__filename).href;",
    },
    footer: { js: '})' },
  };
}

async function main() {
  if (!existsSync(entry)) throw new Error(`${entry} missing: run tsc first`);
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    // Without esbuild, `batch` loads the modules (slower to start, the same behaviour).
    rmSync(bundle, { force: true });
    rmSync(yamlBundle, { force: true });
    rmSync(cache, { force: true });
    rmSync(replies, { force: true });
    process.stderr.write('bundle-cli: esbuild not installed; batch will load its modules\n');
    return;
  }
  await esbuild.build(bundleSettings(entry, bundle));
  await esbuild.build({
    entryPoints: [createRequire(import.meta.url).resolve('yaml')],
    outfile: yamlBundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  if (readFileSync(bundle).some((byte) => byte > 0x7f))
    throw new Error(`${bundle} is not ASCII: batch.cjs reads it as latin1`);
  rmSync(cache, { force: true });
  rmSync(replies, { force: true });
  // A HOME of its own: no client.yaml or saved token of whoever builds changes what runs.
  const home = mkdtempSync(join(tmpdir(), 'batch-build-'));
  try {
    const env = { PATH: process.env.PATH, HOME: home };
    writeCodeCache(env);
    recordReplies(env);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A closed port and no BATCH_* settings: the run compiles the path every verb takes. */
function writeCodeCache(env) {
  const run = spawnSync(process.execPath, [join(dir, 'batch.cjs'), 'enqueue', '--', 'true'], {
    env: { ...env, BATCH_MANAGER_URL: CLOSED_PORT_URL, BATCH_WRITE_CODE_CACHE: cache },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  // 5: the server is unreachable, as it should be.
  if (run.status !== 5 || !existsSync(cache))
    throw new Error(`batch enqueue exited ${run.status} while making the code cache: ${run.stderr}`);
}

/** Each command line of RECORDED, run by the bundle with its output on pipes (80 columns). */
function recordReplies(env) {
  const recorded = RECORDED.map((args) => {
    const run = spawnSync(process.execPath, [join(dir, 'batch.cjs'), ...args], { env, encoding: 'utf8' });
    if (run.status === null)
      throw new Error(`batch ${args.join(' ')} did not exit while recording its reply`);
    return { args, stdout: run.stdout, stderr: run.stderr, code: run.status };
  });
  writeFileSync(replies, `${JSON.stringify({ width: 80, replies: recorded })}\n`);
}

// Run as a script (not when imported for bundleSettings).
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === import.meta.filename) {
  main().catch((error) => {
    process.stderr.write(`bundle-cli: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
