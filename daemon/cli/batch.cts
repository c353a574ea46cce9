#!/usr/bin/env node
/**
 * The `batch` command. It runs the CLI built into one file (dist/daemon/cli/batch.bundle.cjs, made
 * by scripts/bundle-cli.mjs after tsc), with V8's code cache made at build time: that starts in
 * about two thirds of the time the CLI's modules take (docs/performance.md). Without that file, or
 * when tsc has rebuilt main.js since (the bundle would be older code), it loads the modules.
 *
 * BATCH_WRITE_CODE_CACHE=FILE writes V8's code for the bundle to FILE at exit (the build's one run).
 */
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');
const vm = process.getBuiltinModule('node:vm');

type BundleMain = (
  exports: object,
  require: NodeJS.Require,
  module: { exports: object },
  filename: string,
  dirname: string,
) => void;

const MAIN = path.join(__dirname, 'main.js');
const BUNDLE = path.join(__dirname, 'batch.bundle.cjs');
const CACHE = path.join(__dirname, 'batch.bundle.cache');

function readIfThere(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/** The bundle's source, if it is there and no older than main.js. */
function currentBundle(): string | undefined {
  try {
    if (fs.statSync(BUNDLE).mtimeMs < fs.statSync(MAIN).mtimeMs) return undefined;
    return fs.readFileSync(BUNDLE, 'utf8');
  } catch {
    return undefined;
  }
}

function runBundle(source: string): void {
  const writeCache = process.env.BATCH_WRITE_CODE_CACHE;
  const script = new vm.Script(source, {
    filename: BUNDLE,
    cachedData: writeCache === undefined ? readIfThere(CACHE) : undefined,
  });
  if (writeCache !== undefined) {
    delete process.env.BATCH_WRITE_CODE_CACHE;
    process.once('exit', () => fs.writeFileSync(writeCache, script.createCachedData()));
  }
  const bundleMain = script.runInThisContext() as BundleMain;
  const module = { exports: {} };
  bundleMain(module.exports, require, module, BUNDLE, __dirname);
}

const source = currentBundle();
if (source !== undefined) runBundle(source);
else
  import('./main.ts').catch((error: unknown) => {
    process.stderr.write(`batch: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
