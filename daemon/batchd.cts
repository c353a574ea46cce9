#!/usr/bin/env node
/**
 * The `batchd` command: sizes libuv's thread pool, then loads the daemon (main.ts).
 *
 * libuv reads UV_THREADPOOL_SIZE once, when its pool is first used, and loading ES modules already
 * uses it: by the time main.ts runs, the size is fixed. Node runs this CommonJS file before any
 * module is loaded, so the size set here holds. The pool carries the fsyncs of durable acceptance,
 * issued together (spool/group-commit.ts), and libuv's default of 4 threads leaves most of them
 * waiting. A size set in the environment wins.
 */
process.env.UV_THREADPOOL_SIZE ??= '64';

import('./main.ts').catch((error: unknown) => {
  process.stderr.write(`batchd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
