// batchd as the benchmark runs it: the built daemon (dist/) as its own process, with a private
// config folder and spool, stopped by PID.
import { spawn } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { stopPid, TAG_VAR, waitFor } from './proc.mjs';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const DAEMON_MAIN = path.join(REPO, 'dist', 'daemon', 'batchd.cjs');

let daemonMain = DAEMON_MAIN;

/**
 * Run every daemon of this bench from a private copy of dist/: other people rebuild dist/ while
 * the bench runs, and a daemon started mid-rebuild crashes, or measures other code than the rest.
 * The copy resolves its packages through a link to the repository's node_modules.
 */
export function snapshotBuild(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(REPO, 'dist'), path.join(dir, 'dist'), { recursive: true });
  cpSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  daemonMain = path.join(dir, 'dist', 'daemon', 'batchd.cjs');
  return daemonMain;
}

/** A job type whose template is `true`, with one integer parameter to expand a task over. */
export const BENCH_TRUE_TYPE =
  'title: The benchmark job (true)\ntemplate: "true"\nparams:\n  - name: n\n    type: Integer\n    default: 0\n';

/**
 * One daemon. `start` resolves once it logged `batchd ready`; `startupMs` is the wall time from
 * spawning the process to that log line (Node's own start-up included).
 */
export class BatchdDaemon {
  /**
   * @param {object} o
   * @param {string} o.dir  folder for etc/, spool/, the log
   * @param {string} o.tag  value of the tag variable (for process counting and clean-up)
   * @param {object} [o.config] overrides of the bench's batchd.yaml sections
   * @param {Record<string,string>} [o.jobTypes] file name (without .yaml) → YAML text
   * @param {Record<string,string>} [o.queues] queue name → queue.yaml text
   * @param {string[]} [o.nodeArgs] extra node flags (e.g. --cpu-prof)
   */
  constructor({ dir, tag, config = {}, jobTypes = {}, queues = {}, nodeArgs = [] }) {
    this.dir = dir;
    this.tag = tag;
    this.etc = path.join(dir, 'etc');
    this.spool = path.join(dir, 'spool');
    this.nodeArgs = nodeArgs;
    this.logLines = [];
    this.problems = [];
    mkdirSync(path.join(this.etc, 'jobtypes'), { recursive: true });
    mkdirSync(this.spool, { recursive: true });
    const settings = {
      spool: this.spool,
      default_queue: 'default',
      manager: { enabled: false, ...config.manager },
      // info, not warn: the ready line is logged at info; nothing is logged per job at info.
      logging: { target: 'stderr', level: 'info', format: 'json', ...config.logging },
      dispatcher: { workers: 2, ...config.dispatcher },
      storage: { fsync: false, ...config.storage },
    };
    writeFileSync(path.join(this.etc, 'batchd.yaml'), JSON.stringify(settings, null, 1) + '\n');
    for (const [name, text] of Object.entries({ 'bench-true': BENCH_TRUE_TYPE, ...jobTypes })) {
      writeFileSync(path.join(this.etc, 'jobtypes', `${name}.yaml`), text);
    }
    for (const [queue, text] of Object.entries(queues)) this.setQueue(queue, text);
  }

  /** Create a queue folder with its settings (before or while the daemon runs). */
  setQueue(queue, text) {
    mkdirSync(path.join(this.spool, queue), { recursive: true });
    writeFileSync(path.join(this.spool, queue, 'queue.yaml'), text);
  }

  async start({ timeoutMs = 120_000 } = {}) {
    const spawnedAt = Date.now();
    const child = spawn(
      process.execPath,
      [...this.nodeArgs, daemonMain, '--config', this.etc, '--spool', this.spool],
      {
        cwd: this.dir,
        env: { ...process.env, [TAG_VAR]: this.tag },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    this.child = child;
    this.pid = child.pid;
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let readyAt;
    let buffer = '';
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.#onLine(line, (time) => (readyAt = time));
      }
    });
    let exit;
    void this.exited.then((e) => (exit = e));
    await waitFor(
      () => {
        if (exit !== undefined)
          throw new Error(
            `batchd exited before it was ready (${exit.code ?? exit.signal}): ${this.problems.slice(0, 4).join(' | ') || '(no output)'}`,
          );
        return readyAt !== undefined;
      },
      { everyMs: 5, timeoutMs, what: 'batchd ready' },
    );
    this.startupMs = readyAt - spawnedAt;
    return this;
  }

  #onLine(line, ready) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      if (line.trim() !== '') this.problems.push(line.trim());
      return;
    }
    if (typeof entry.msg === 'string' && entry.msg.startsWith('batchd ready')) {
      this.readyEntry = entry;
      // The daemon logs ISO 8601 times; older builds logged epoch milliseconds.
      ready(typeof entry.time === 'string' ? Date.parse(entry.time) : entry.time);
    }
    // Info lines are few (start, tasks accepted, stop): kept for `logged`.
    if (entry.level >= 30 && this.logLines.length < 1000) this.logLines.push(entry);
    if (entry.level >= 40 && this.problems.length < 50)
      this.problems.push(`${entry.msg}${entry.err ? `: ${entry.err.message}` : ''}`);
  }

  /** The first log entry whose message matches, if any was logged yet. */
  logged(pattern) {
    return this.logLines.find((e) => typeof e.msg === 'string' && pattern.test(e.msg));
  }

  lastProblem() {
    return this.problems.at(-1) ?? '(no log line)';
  }

  async stop() {
    if (this.pid === undefined) return;
    await stopPid(this.pid, 10_000);
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    this.pid = undefined;
  }

  queueDir(queue = 'default') {
    return path.join(this.spool, queue);
  }

  incoming(queue = 'default') {
    return path.join(this.spool, queue, 'incoming');
  }

  /** Drop a job file the way a careful client does: write `.name.tmp`, then rename it in. */
  drop(name, text, queue = 'default') {
    const tmp = path.join(this.incoming(queue), `.${name}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, path.join(this.incoming(queue), name));
  }

  /** Jobs in a state folder; finished states are sharded by date. */
  count(state, queue = 'default') {
    const dir = path.join(this.spool, queue, state);
    if (state === 'queued' || state === 'running') return subfolders(dir);
    let total = 0;
    let shards;
    try {
      shards = readdirSync(dir);
    } catch {
      return 0;
    }
    for (const shard of shards) total += subfolders(path.join(dir, shard));
    return total;
  }

  finished(queue = 'default') {
    return this.count('done', queue) + this.count('failed', queue) + this.count('cancelled', queue);
  }
}

/**
 * Subfolders of a folder, from its link count: O(1), so polling it does not load the machine being
 * measured. ext4 sets the count to 1 past 65,000 subfolders; then the folder is read instead.
 */
export function subfolders(dir) {
  let st;
  try {
    st = statSync(dir);
  } catch {
    return 0;
  }
  if (st.nlink >= 2) return st.nlink - 2;
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).length;
}
