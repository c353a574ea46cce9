/**
 * The layering of daemon/: which of its parts may import which. A part is a folder of daemon/ or
 * one of its top-level files (daemon.ts, main.ts, start.ts, ...). The lists name what a part may
 * import directly; a part never imports one above it, so the graph of parts has no cycle.
 *
 * From the bottom: errors and log; configuration; the job model (with the Executor interface and
 * where a job goes after an attempt); the event bus; the wire protocol; the spool; the launcher's
 * protocol (shared by the local launcher and the one on SSH hosts); hosts, then executors (which
 * run jobs on the hosts), then the dispatcher; tasks, auth, views and plugins; the service port
 * the front ends use (service/port.ts) and its core modules; the daemon's wiring
 * (daemon.ts) and the JSON schemas of the user's files (json-schemas.ts); the HTTP API, which
 * sees the core only through the port; start.ts, which starts both; the `batchd` command. The `batch` CLI and its client library sit beside it, on the
 * protocol alone.
 *
 * eslint.config.js turns this table into `no-restricted-imports` rules, and
 * test/architecture/boundaries.test.ts checks the whole import graph against it.
 */

/** What the spool and everything over it may use: the model, the configuration, errors, logs. */
const UNDER_SPOOL = ['config', 'jobs', 'events', 'errors', 'log'];
/** What the host layer may use: the launcher's protocol, the spool and what is under it. */
const UNDER_HOSTS = ['launcher', 'spool', ...UNDER_SPOOL];
/** What the dispatcher may use: the runners of jobs and all below them. */
const UNDER_DISPATCH = ['executors', 'hosts', ...UNDER_HOSTS];
/** What the service port's core modules may use. */
const UNDER_SERVICE = ['dispatch', ...UNDER_DISPATCH, 'tasks', 'views', 'protocol'];

/** @type {Record<string, readonly string[]>} */
export const LAYERS = {
  errors: [],
  log: [],
  config: ['errors', 'log'],
  jobs: ['config', 'errors', 'log'],
  events: ['jobs'],
  protocol: ['config', 'jobs', 'errors'],
  spool: UNDER_SPOOL,
  launcher: [],
  hosts: UNDER_HOSTS,
  executors: ['hosts', ...UNDER_HOSTS],
  dispatch: UNDER_DISPATCH,
  tasks: ['spool', ...UNDER_SPOOL, 'protocol'],
  auth: ['config', 'protocol', 'errors', 'log'],
  views: ['tasks', 'spool', 'auth', ...UNDER_SPOOL, 'protocol'],
  plugins: [...UNDER_DISPATCH, 'tasks', 'protocol'],
  service: UNDER_SERVICE,
  'json-schemas': ['config', 'jobs', 'hosts'],
  daemon: ['service', 'plugins', ...UNDER_SERVICE],
  api: ['service', 'auth', 'views', 'tasks', 'protocol', ...UNDER_SPOOL],
  start: ['daemon', 'api', 'service'],
  client: ['protocol', 'config', 'jobs', 'errors'],
  cli: ['client', 'protocol', 'config', 'jobs', 'errors'],
  main: ['start', 'cli', 'auth', 'config', 'spool', 'errors', 'log'],
  batchd: ['main'],
};

/**
 * Imports that break the layering, while they are being removed: for each edge (`spool -> dispatch`),
 * the modules of the higher part still imported and why. The lint lets those modules (and only
 * those) through; the architecture test fails when one of them is no longer imported (so the list
 * only shrinks) and when any other import breaks the layering. Empty: every import follows the table.
 * @type {Record<string, { modules: readonly string[]; why: string }>}
 */
export const KNOWN_VIOLATIONS = {};

/** The parts that are one file at the top of daemon/ (the others are folders). */
export const FILE_PARTS = ['daemon', 'main', 'start', 'batchd', 'json-schemas', 'errors', 'log', 'events'];

/** The part of daemon/ a path inside it belongs to: its first folder, or its file name. */
export function partOf(pathInDaemon) {
  const first = pathInDaemon.split('/')[0] ?? '';
  return first.replace(/\.(c|m)?(t|j)s$/, '');
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Flat-config objects: for each part and each depth of file in it, `no-restricted-imports` with
 * one pattern per part it must not import. Relative specifiers are matched from the file's depth,
 * so a part is recognised by where the path leads, not by a name that merely looks alike.
 */
export function boundaryConfigs() {
  const parts = Object.keys(LAYERS);
  const configs = [];
  for (const part of parts) {
    const allowed = new Set([part, ...LAYERS[part]]);
    const forbidden = parts.filter((other) => !allowed.has(other));
    /** The modules of `other` a known violation still lets through, as a negative lookahead. */
    const except = (other) => {
      const known = KNOWN_VIOLATIONS[`${part} -> ${other}`];
      return known === undefined ? '' : `(?!(${known.modules.map(escape).join('|')})$)`;
    };
    const isFile = FILE_PARTS.includes(part);
    const depths = isFile ? [0] : [1, 2, 3, 4];
    for (const depth of depths) {
      const up = depth === 0 ? '\\./' : `(\\.\\./){${depth}}`;
      const files = isFile
        ? [`daemon/${part}.ts`, `daemon/${part}.cts`]
        : [`daemon/${part}/${'*/'.repeat(depth - 1)}*.ts`, `daemon/${part}/${'*/'.repeat(depth - 1)}*.cts`];
      configs.push({
        files,
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: forbidden.map((other) => ({
                regex: `^${up}${escape(other)}(/${except(other)}|\\.c?ts$)`,
                message: `daemon/${part} must not import daemon/${other}: it is not below it in the layering (eslint.boundaries.js).`,
              })),
            },
          ],
        },
      });
    }
  }
  return configs;
}
