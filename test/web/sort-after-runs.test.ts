import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { JobPage } from '../../daemon/protocol/jobs.ts';
import { eventually } from '../api/api-helpers.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv } from '../helpers/env.ts';
import { sleep } from '../helpers/spool-checks.ts';
import { expectedOrder } from './expected-order.ts';

const JOBS = 40;

interface Ran {
  id: string;
  started: string | null;
  ended: string | null;
}

/**
 * The end of each job this daemon runs gives the job list's sort values from the record it just
 * wrote: once a task's jobs are done, no background pass reads their `state.yaml` again, and a
 * sort by when they started or ended is the order their files give.
 */
describe('sort values of the jobs a daemon ran', () => {
  let env: TestEnv | undefined;
  let proc: DaemonProcess | undefined;
  afterEach(async () => {
    await proc?.stop();
    proc = undefined;
    env?.cleanup();
    env = undefined;
  });

  it('are the values their records hold, and are never read back from the files', async () => {
    const e = (env = makeEnv({
      config: { manager: { enabled: true, host: '127.0.0.1', port: 0 } },
      jobTypes: { nothing: { template: 'true', params: [{ name: 'n', type: 'Integer', default: 0 }] } },
      queues: { default: { enabled: true } },
    }));
    const urlFile = path.join(e.root, 'api-url');
    proc = await startDaemon(e.etc, e.spool, { extraArgs: ['--api-url-file', urlFile] });
    const url = await eventually(() => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(), 15_000);
    const metric = async (line: RegExp): Promise<number> => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const m = line.exec(text);
      if (m === null) throw new Error(`no ${String(line)} in /metrics`);
      return Number(m[1]);
    };
    const backgroundReads = (): Promise<number> =>
      metric(/^batchd_job_sort_file_reads_total\{for="background"\} (\d+)$/m);

    drop(e.spool, 'default', { type: 'nothing', params: { n: { range: `1..${JOBS}` } } }, 'task.yaml');
    await eventually(() => jobsIn(e.spool, 'default', 'done').length === JOBS, 60_000, 'the task done');
    // The background pass (every poll_timeout, 1 s here) has gone over done/ at least twice since.
    await sleep(2500);
    expect(await backgroundReads()).toBe(0);

    const ran: Ran[] = jobsIn(e.spool, 'default', 'done').map((id) => {
      const last = readState(e.spool, 'default', 'done', id).last;
      return { id, started: last?.started_at ?? null, ended: last?.ended_at ?? null };
    });
    const values = { started: (j: Ran) => j.started, ended: (j: Ran) => j.ended };
    for (const sort of ['started', '-started', 'ended', '-ended']) {
      const page = (await (
        await fetch(`${url}/queue/default/jobs?status=done&sort=${sort}&limit=${JOBS}`)
      ).json()) as JobPage;
      expect(
        page.jobs.map((j) => j.id),
        sort,
      ).toEqual(expectedOrder(ran, sort, values));
    }
    // Every value came from memory: no page read a job file either.
    expect(await metric(/^batchd_job_sort_file_reads_total\{for="request"\} (\d+)$/m)).toBe(0);
    expect(await backgroundReads()).toBe(0);
  }, 90_000);
});
