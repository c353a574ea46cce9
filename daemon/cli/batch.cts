#!/usr/bin/env node
/**
 * The `batch` command. It runs the CLI built into one file (dist/daemon/cli/batch.bundle.cjs, made
 * by scripts/bundle-cli.mjs after tsc), with V8's code cache made at build time: that starts in
 * about two thirds of the time the CLI's modules take (docs/performance.md). Without that file, or
 * when tsc has rebuilt main.js since (the bundle would be older code), it loads the modules.
 *
 * A command line that names no verb (`batch --help`, `-h`, `help`, `--version`, `-V`, `batch`)
 * always prints the same text: the build recorded what the CLI printed for each
 * (batch.replies.json), and this file prints it back without loading the CLI, when the terminal
 * is as wide as the recording's (a pipe or a file always is).
 *
 * BATCH_WRITE_CODE_CACHE=FILE writes V8's code for the bundle to FILE at exit (the build's one run).
 */
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

type BundleMain = (
  exports: object,
  require: NodeJS.Require,
  module: { exports: object },
  filename: string,
  dirname: string,
) => void;

/** What the CLI printed for one command line, recorded by scripts/bundle-cli.mjs. */
interface Reply {
  args: string[];
  stdout: string;
  stderr: string;
  code: number;
}

const MAIN = path.join(__dirname, 'main.js');
const BUNDLE = path.join(__dirname, 'batch.bundle.cjs');
const CACHE = path.join(__dirname, 'batch.bundle.cache');
const REPLIES = path.join(__dirname, 'batch.replies.json');
const PACKAGE = path.join(__dirname, '..', '..', '..', 'package.json');

function readIfThere(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Whether `file` is there and no older than main.js (else it was built from older code). */
function isCurrent(file: string, alsoNewerThan?: string): boolean {
  try {
    const built = fs.statSync(file).mtimeMs;
    if (built < fs.statSync(MAIN).mtimeMs) return false;
    // package.json gives --version: an edited one makes the recording stale.
    return (
      alsoNewerThan === undefined ||
      built >= (fs.statSync(alsoNewerThan, { throwIfNoEntry: false })?.mtimeMs ?? 0)
    );
  } catch {
    return false;
  }
}

/** The terminal's width, if the stream is one (the help is wrapped to it), else undefined. */
function terminalWidth(fd: 1 | 2): number | undefined {
  if (!process.getBuiltinModule('node:tty').isatty(fd)) return undefined;
  return (fd === 1 ? process.stdout : process.stderr).columns;
}

/** The recorded answer to this command line, if there is one and it would print the same now. */
function recordedReply(args: string[]): Reply | undefined {
  if (args.length > 1 || !isCurrent(REPLIES, PACKAGE)) return undefined;
  let recorded: { width: number; replies: Reply[] };
  try {
    recorded = JSON.parse(fs.readFileSync(REPLIES, 'utf8')) as { width: number; replies: Reply[] };
  } catch {
    return undefined;
  }
  const reply = recorded.replies.find((r) => r.args.length === args.length && r.args[0] === args[0]);
  if (reply === undefined) return undefined;
  // commander wraps help to a terminal's width, and to 80 columns elsewhere.
  for (const [fd, text] of [
    [1, reply.stdout],
    [2, reply.stderr],
  ] as const) {
    const width = text === '' ? undefined : terminalWidth(fd);
    if (width !== undefined && width !== recorded.width) return undefined;
  }
  return reply;
}

/** Write all of `text`; a non-blocking pipe that is full gets the rest through the stream. */
function writeAll(fd: 1 | 2, text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    (fd === 1 ? process.stdout : process.stderr).write(bytes.subarray(done));
  }
}

function runBundle(source: string): void {
  const writeCache = process.env.BATCH_WRITE_CODE_CACHE;
  const vm = process.getBuiltinModule('node:vm');
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

function run(): void {
  const reply = recordedReply(process.argv.slice(2));
  if (reply !== undefined) {
    writeAll(1, reply.stdout);
    writeAll(2, reply.stderr);
    process.exitCode = reply.code;
    return;
  }
  if (isCurrent(BUNDLE)) {
    // esbuild writes ASCII only (non-ASCII characters as escapes): latin1 reads it as it is, faster.
    const source = fs.readFileSync(BUNDLE, 'latin1');
    return runBundle(source);
  }
  import('./main.ts').catch((error: unknown) => {
    process.stderr.write(`batch: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}

run();
