import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EventBus } from '../../daemon/events.ts';
import type { JobSpec } from '../../daemon/jobs/spec.ts';
import type { AcceptedJob } from '../../daemon/spool/accept.ts';
import { Acceptance, type ClaimAtAcceptance } from '../../daemon/spool/acceptance.ts';
import { JobLocks, type Release } from '../../daemon/spool/lock.ts';
import { SELF } from '../../daemon/spool/owner.ts';
import { readJobState } from '../../daemon/spool/state-file.ts';
import { Transitions } from '../../daemon/spool/transition.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

/**
 * The one way in (spool/acceptance.ts) on a real spool folder, in process: each option decides
 * where the job is committed, whether it is claimed, and that it is announced and handed on once.
 */

interface HandedOn {
  queue: string;
  ids: string[];
  claimed: Release | undefined;
}

let f: SpoolFixture;
let locks: JobLocks;
let events: string[];
let handedOn: HandedOn[];
let asked: string[];
let logged: string[];
let acceptance: Acceptance;
/** What the dispatcher answers when asked whether an arriving job may start now. */
let mayStart: boolean;
let handOnFails: boolean;

beforeEach(() => {
  f = makeSpoolFixture('batchd-acceptance-');
  const bus = new EventBus(() => undefined);
  events = [];
  bus.on('job:accepted', (e) => events.push(`accepted ${e.jobId}`));
  bus.on('job:transition', (e) => events.push(`${e.from} -> ${e.to} ${e.jobId}`));
  logged = [];
  const log = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
  locks = new JobLocks(f.layout, 10_000, log, () => undefined);
  const transitions = new Transitions(f.layout, bus, log, () => false);
  handedOn = [];
  asked = [];
  mayStart = true;
  handOnFails = false;
  acceptance = new Acceptance({
    layout: f.layout,
    transitions,
    log,
    claimOnArrival: (spec): ClaimAtAcceptance | undefined => {
      asked.push(spec.id);
      const release = mayStart ? locks.take(spec.id) : undefined;
      if (release === undefined) return undefined;
      const record = transitions.claimAtAcceptance((state) => {
        state.running = {
          attempt: state.attempts + 1,
          started_at: new Date().toISOString(),
          host: 'localhost',
          owner: SELF,
        };
      }, 'started');
      return { record, release };
    },
    handOn: (queue, jobs, claimed) => {
      if (handOnFails) throw new Error('the dispatcher is gone');
      handedOn.push({ queue, ids: jobs.map((j) => j.spec.id), claimed });
    },
  });
});

afterEach(async () => {
  await acceptance.close();
  for (const { claimed } of handedOn) await claimed?.();
  locks.close();
  await f.close();
});

const idOf = (jobs: AcceptedJob[]): string => jobs[0]?.spec.id ?? '';
const dropOf = (name: string): { file: string; specs: JobSpec[] } => f.dropFile(name, { command: 'true' });

describe('the one way in', () => {
  it('claims a single job that may start: committed into running/, announced with its start, handed on with its lock', () => {
    const { file, specs } = dropOf('now.yaml');
    const jobs = acceptance.accept(f.queue, specs, {
      origin: { kind: 'drop', file },
      durable: false,
      claim: true,
      wait: false,
    });
    const id = idOf(jobs);
    expect(readdirSync(f.folder('incoming'))).toEqual([]);
    const dir = f.layout.jobDir(f.queue, 'running', id);
    expect(readJobState(dir)).toMatchObject({ state: 'running', running: { attempt: 1 } });
    expect(readdirSync(dir).sort()).toEqual(['drop.yaml', 'job.yaml', 'state.yaml']);
    expect(events).toEqual([`accepted ${id}`, `queued -> running ${id}`]);
    expect(handedOn).toHaveLength(1);
    expect(handedOn[0]?.claimed).toBeTypeOf('function');
    expect(locks.take(id)).toBeUndefined(); // held by the claim until the run releases it
  });

  it('sends a job through queued/ without asking the dispatcher when claim is off, or when durable', () => {
    const plain = dropOf('plain.yaml');
    const noClaim = acceptance.accept(f.queue, plain.specs, {
      origin: { kind: 'drop', file: plain.file },
      durable: false,
      claim: false,
      wait: false,
    });
    const durable = dropOf('durable.yaml');
    const fsynced = acceptance.accept(f.queue, durable.specs, {
      origin: { kind: 'drop', file: durable.file },
      durable: true,
      claim: true,
      wait: false,
    });
    expect(asked).toEqual([]);
    for (const jobs of [noClaim, fsynced]) {
      expect(readJobState(f.layout.jobDir(f.queue, 'queued', idOf(jobs)))).toMatchObject({ state: 'queued' });
    }
    expect(events).toEqual([`accepted ${idOf(noClaim)}`, `accepted ${idOf(fsynced)}`]);
    expect(handedOn.map((h) => [h.ids, h.claimed])).toEqual([
      [[idOf(noClaim)], undefined],
      [[idOf(fsynced)], undefined],
    ]);
  });

  it('a job that may not start yet goes through queued/ though claim is on', () => {
    mayStart = false;
    const { file, specs } = dropOf('later.yaml');
    const jobs = acceptance.accept(f.queue, specs, {
      origin: { kind: 'drop', file },
      durable: false,
      claim: true,
      wait: false,
    });
    expect(asked).toEqual([idOf(jobs)]);
    expect(existsSync(f.layout.jobDir(f.queue, 'queued', idOf(jobs)))).toBe(true);
    expect(events).toEqual([`accepted ${idOf(jobs)}`]);
  });

  it('group-commits durable acceptances of callers that wait, each announced and handed on once when on disk', async () => {
    const drops = ['a.yaml', 'b.yaml', 'c.yaml'].map(dropOf);
    const pending = drops.map(({ file, specs }) =>
      acceptance.accept(f.queue, specs, {
        origin: { kind: 'drop', file },
        durable: true,
        claim: true,
        wait: true,
      }),
    );
    expect(events).toEqual([]); // nothing is answered before its batch is on disk
    const ids = (await Promise.all(pending)).map(idOf);
    expect(readdirSync(f.layout.stateDir(f.queue, 'queued')).sort()).toEqual([...ids].sort());
    expect(readdirSync(f.folder('incoming'))).toEqual([]);
    expect(events.sort()).toEqual(ids.map((id) => `accepted ${id}`).sort());
    expect(handedOn.flatMap((h) => h.ids).sort()).toEqual([...ids].sort());
    expect(asked).toEqual([]);
  });

  it('a caller that waits for a job that is not durable has it committed and claimed before the promise is made', async () => {
    const { file, specs } = dropOf('async.yaml');
    const pending = acceptance.accept(f.queue, specs, {
      origin: { kind: 'drop', file },
      durable: false,
      claim: true,
      wait: true,
    });
    expect(handedOn).toHaveLength(1);
    const id = idOf(await pending);
    expect(existsSync(f.layout.jobDir(f.queue, 'running', id))).toBe(true);
  });

  it('a drop another daemon took is [] with its claim released and nothing announced', () => {
    const { file, specs } = dropOf('gone.yaml');
    rmSync(file);
    const jobs = acceptance.accept(f.queue, specs, {
      origin: { kind: 'drop', file },
      durable: false,
      claim: true,
      wait: false,
    });
    expect(jobs).toEqual([]);
    expect(events).toEqual([]);
    expect(handedOn).toEqual([]);
    expect(readdirSync(f.folder('staging'))).toEqual([]);
    const release = locks.take(specs[0]?.id ?? ''); // the claim let go of the lock
    expect(release).toBeTypeOf('function');
    return release?.();
  });

  it('a refused acceptance rejects a waiting caller, releases its claim and leaves the drop in incoming/', async () => {
    const { file, specs } = dropOf('refused.yaml');
    rmSync(f.folder('staging'), { recursive: true });
    await expect(
      acceptance.accept(f.queue, specs, {
        origin: { kind: 'drop', file },
        durable: false,
        claim: true,
        wait: true,
      }),
    ).rejects.toThrow();
    expect(readdirSync(f.folder('incoming'))).toEqual([path.basename(file)]);
    expect(events).toEqual([]);
    const release = locks.take(specs[0]?.id ?? '');
    expect(release).toBeTypeOf('function');
    await release?.();
  });

  it('a job it cannot hand on stays accepted, and the failure is logged', () => {
    handOnFails = true;
    mayStart = false;
    const { file, specs } = dropOf('orphan.yaml');
    const jobs = acceptance.accept(f.queue, specs, {
      origin: { kind: 'drop', file },
      durable: false,
      claim: true,
      wait: false,
    });
    expect(existsSync(f.layout.jobDir(f.queue, 'queued', idOf(jobs)))).toBe(true);
    expect(events).toEqual([`accepted ${idOf(jobs)}`]);
    expect(logged.join('')).toContain('not handed on to the dispatcher');
  });
});
