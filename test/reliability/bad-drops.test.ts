import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import path from 'node:path';

import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ERROR_CODES } from '../../daemon/errors.ts';
import type { DaemonProcess } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { yamlProblem } from '../helpers/spool-checks.ts';
import { queuesOf } from './audit.ts';
import { CORPUS_TYPES, type DropCase, handWritten, MAX_FILE, MAX_TASK, mutations } from './corpus.ts';
import { killMarked, listAll, SEED, startMarked } from './harness.ts';

interface ErrorReport {
  file: string;
  kept_as: string;
  code: string;
  message: string;
  problems: { field?: string; line?: number; message: string }[];
}

/** What became of one drop: refused (with its report), accepted (its jobs' folders), or nothing yet. */
interface Fate {
  rejected?: { report: ErrorReport | undefined; kept: string };
  accepted: string[];
}

const STATES = ['queued', 'running', 'done', 'failed', 'cancelled'];

/**
 * A live daemon is fed a corpus of bad drops (hand-written and seeded mutations). Each must be
 * refused into rejected/ with an error file naming the problem, or accepted if it happens to be
 * valid; none may be lost or stay behind, and the daemon must keep working.
 */
describe('a corpus of bad drops against a live daemon', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let incoming: string;
  const servers: Server[] = [];
  const hand = handWritten();
  const mutated = mutations(SEED, 160);

  beforeAll(async () => {
    env = makeEnv({
      queues: { default: null },
      config: { storage: { max_job_file_size: MAX_FILE, max_task_jobs: MAX_TASK } },
    });
    for (const [name, type] of Object.entries(CORPUS_TYPES)) env.writeConfig(`jobtypes/${name}.yaml`, type);
    incoming = path.join(env.spool, 'default', 'incoming');
    daemon = await startMarked(env);
    const scratch = path.join(env.root, 'scratch');
    const hold = path.join(env.spool, 'default', '.hold');
    mkdirSync(scratch);
    mkdirSync(hold);
    // Everything is made outside incoming/ and renamed in, so each drop appears whole.
    [...hand, ...mutated].forEach((c, i) => {
      const made = path.join(hold, String(i));
      if (c.bytes !== undefined) writeFileSync(made, c.bytes);
      const server = c.make?.(made, scratch);
      if (server !== undefined) servers.push(server);
      renameSync(made, target(c));
    });
  });

  afterAll(async () => {
    for (const server of servers) server.close();
    await daemon?.stop();
    if (env !== undefined) killMarked(env.root);
    env?.cleanup();
  });

  const target = (c: DropCase): string =>
    typeof c.name === 'string'
      ? path.join(incoming, c.name)
      : (Buffer.concat([Buffer.from(`${incoming}/`), c.name]) as unknown as string);
  const shown = (c: DropCase): string => (typeof c.name === 'string' ? c.name : c.name.toString('utf8'));

  /** Everything the daemon did with the drops, read back from the spool. */
  const fates = (): Map<string, Fate> => {
    const result = new Map<string, Fate>();
    const fate = (name: string): Fate => {
      let f = result.get(name);
      if (f === undefined) result.set(name, (f = { accepted: [] }));
      return f;
    };
    const rejected = path.join(env.spool, 'default', 'rejected');
    for (const entry of listAll(rejected)) {
      if (!entry.endsWith('.error.yaml')) continue;
      let report: ErrorReport | undefined;
      try {
        report = parse(readFileSync(path.join(rejected, entry), 'utf8')) as ErrorReport;
      } catch {
        report = undefined;
      }
      const kept = entry.slice(0, -'.error.yaml'.length);
      fate(report?.file.replace(/^default\/incoming\//, '') ?? kept).rejected = {
        report,
        kept: path.join(rejected, kept),
      };
    }
    for (const queue of queuesOf(env.spool)) {
      for (const state of STATES) {
        for (const id of jobsIn(env.spool, queue, state)) {
          const dir =
            state === 'queued' || state === 'running'
              ? path.join(env.spool, queue, state, id)
              : path.join(env.spool, queue, state, id.slice(0, 8), id);
          try {
            const spec = JSON.parse(readFileSync(path.join(dir, 'job.yaml'), 'utf8')) as {
              source?: { file?: string };
            };
            if (spec.source?.file !== undefined) fate(spec.source.file).accepted.push(dir);
          } catch {
            // being moved
          }
        }
      }
    }
    return result;
  };

  const settled = async (cases: DropCase[]): Promise<Map<string, Fate>> => {
    // Reading every report is slow; an empty incoming/ is the cheap sign that all were taken.
    await waitFor(
      () => readdirSync(incoming).every((n) => n.startsWith('.')),
      30_000,
      'incoming/ to empty',
    ).catch(() => undefined);
    await waitFor(
      () => {
        const found = fates();
        return cases.every((c) => {
          const f = found.get(shown(c));
          return f !== undefined && (f.rejected !== undefined || f.accepted.length > 0);
        });
      },
      5_000,
      'every drop to be taken',
    ).catch(() => undefined);
    return fates();
  };

  it(`refuses each of the ${hand.length} hand-written bad drops with an error that names the problem`, async () => {
    const found = await settled(hand);
    const problems: string[] = [];
    for (const c of hand) {
      const name = shown(c);
      const f = found.get(name);
      const where = f === undefined ? describeLeft(incoming, name) : '';
      if (c.expect === 'either') {
        if (f === undefined || (f.rejected === undefined && f.accepted.length === 0))
          problems.push(`${JSON.stringify(name)}: neither refused nor accepted (${where})`);
        continue;
      }
      if (c.expect === 'accepted') {
        if (f === undefined || f.accepted.length === 0)
          problems.push(`${JSON.stringify(name)}: not accepted (${f?.rejected?.report?.message ?? where})`);
        continue;
      }
      if (f?.rejected === undefined) {
        problems.push(`${JSON.stringify(name)}: not refused (${f === undefined ? where : 'accepted'})`);
        continue;
      }
      const report = f.rejected.report;
      const text = `${report?.message ?? ''}\n${JSON.stringify(report?.problems ?? [])}`;
      if (report?.code !== c.expect.code)
        problems.push(
          `${JSON.stringify(name)}: code ${report?.code}, expected ${c.expect.code}: ${report?.message}`,
        );
      for (const m of c.expect.mentions) {
        if (typeof m === 'string' ? !text.includes(m) : !m.test(text))
          problems.push(
            `${JSON.stringify(name)}: the error does not mention ${String(m)}: ${report?.message}`,
          );
      }
      if (c.bytes !== undefined && !readFileSync(f.rejected.kept).equals(c.bytes))
        problems.push(`${JSON.stringify(name)}: the kept bytes differ`);
      if (
        c.bytes === undefined &&
        c.expect.code === 'DROP_NOT_REGULAR' &&
        lstatSync(f.rejected.kept).isFile()
      )
        problems.push(`${JSON.stringify(name)}: kept as a regular file`);
      if (vague(report))
        problems.push(`${JSON.stringify(name)}: a problem without a description: ${report?.message}`);
    }
    expect(problems).toEqual([]);
    expect(hand.length).toBeGreaterThanOrEqual(200);
    expect(daemon.child.exitCode).toBeNull();
  });

  it(`loses none of ${mutated.length} seeded mutations of valid job files: each is refused with an error or accepted`, async () => {
    const found = await settled(mutated);
    const problems: string[] = [];
    let refused = 0;
    for (const c of mutated) {
      const name = shown(c);
      const f = found.get(name);
      if (f === undefined) {
        problems.push(
          `${name}: lost or stuck (${describeLeft(incoming, name)}): ${JSON.stringify(c.bytes?.toString('utf8'))}`,
        );
        continue;
      }
      if (f.rejected !== undefined && f.accepted.length > 0)
        problems.push(`${name}: both refused and accepted`);
      if (f.rejected !== undefined) {
        refused += 1;
        const r = f.rejected.report;
        if (r === undefined || !(ERROR_CODES as readonly string[]).includes(r.code) || r.code === 'INTERNAL')
          problems.push(`${name}: bad error report ${JSON.stringify(r)}`);
        else if (!r.message.includes(name) || r.problems.length === 0 || vague(r))
          problems.push(`${name}: the error does not name the file and the problem: ${r.message}`);
        if (!readFileSync(f.rejected.kept).equals(c.bytes ?? Buffer.alloc(0)))
          problems.push(`${name}: the kept bytes differ`);
      } else {
        const original = keptDrop(env.spool, f.accepted[0] ?? '');
        if (original === undefined || !original.equals(c.bytes ?? Buffer.alloc(0)))
          problems.push(`${name}: accepted, but its original bytes are not kept with it`);
      }
    }
    console.log(`mutations: ${refused} refused, ${mutated.length - refused} accepted (seed ${SEED})`);
    expect(problems).toEqual([]);
    expect(refused).toBeGreaterThan(mutated.length / 2);
  });

  it('writes every error file as valid YAML, whatever bytes the drops and their names hold', () => {
    const rejected = path.join(env.spool, 'default', 'rejected');
    const reports = listAll(rejected).filter((e) => e.endsWith('.error.yaml'));
    expect(reports.length).toBeGreaterThan(hand.length / 2);
    const invalid = reports.flatMap((e) => {
      const problem = yamlProblem(readFileSync(path.join(rejected, e)));
      return problem === undefined ? [] : [`${JSON.stringify(e)}: ${problem}`];
    });
    expect(invalid).toEqual([]);
  });

  it('leaves nothing behind in incoming/, stays alive, and still runs a valid job', async () => {
    expect(readdirSync(incoming).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(daemon.child.exitCode).toBeNull();
    drop(env.spool, 'default', 'type: typed\nparams: {s: still-alive}\n', 'after-the-corpus.yaml');
    await waitFor(
      () =>
        fates()
          .get('after-the-corpus.yaml')
          ?.accepted.some((dir) => dir.includes('/done/')),
      15_000,
      'a valid job to run',
    );
    expect(listAll(path.join(env.spool, 'default', '.staging'))).toEqual([]);
    const fatal = daemon.records().filter((r) => typeof r.level === 'number' && r.level >= 60);
    expect(fatal).toEqual([]);
  });
});

/** A problem that says no more than "invalid" does not name the problem. */
function vague(report: ErrorReport | undefined): boolean {
  return report === undefined || report.problems.some((p) => /^\s*(Invalid input)?\s*$/.test(p.message));
}

function describeLeft(incoming: string, name: string): string {
  try {
    lstatSync(path.join(incoming, name));
    return 'still in incoming/';
  } catch {
    return 'nowhere';
  }
}

/**
 * The original bytes kept with an accepted job. The job may move on (queued → running → done)
 * between the listing and this read, so it is looked up by id in every state folder, newest
 * state last, until one read succeeds.
 */
function keptDrop(spool: string, listedDir: string): Buffer | undefined {
  const id = path.basename(listedDir);
  const queue = path.relative(spool, listedDir).split(path.sep)[0] ?? '';
  for (let round = 0; round < 50; round++) {
    for (const state of STATES) {
      const dir =
        state === 'queued' || state === 'running'
          ? path.join(spool, queue, state, id)
          : path.join(spool, queue, state, id.slice(0, 8), id);
      try {
        const kept = readdirSync(dir).find((e) => e.startsWith('drop.'));
        return kept === undefined ? taskDrop(spool, dir) : readFileSync(path.join(dir, kept));
      } catch {
        // not in this state folder (or moving out of it right now)
      }
    }
  }
  return undefined;
}

/** A task's jobs keep their drop in the task's folder (tasks/<name>/drop.*). */
function taskDrop(spool: string, jobDir: string): Buffer | undefined {
  try {
    const state = JSON.parse(readFileSync(path.join(jobDir, 'state.yaml'), 'utf8')) as {
      task?: string;
      queue: string;
    };
    if (state.task === undefined) return undefined;
    const dir = path.join(spool, state.queue, 'tasks', state.task);
    const file = readdirSync(dir).find((e) => e.startsWith('drop.'));
    return file === undefined ? undefined : readFileSync(path.join(dir, file));
  } catch {
    return undefined;
  }
}
