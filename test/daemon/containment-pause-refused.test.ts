import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { fullCount, probe } from '../dispatch/pause-helpers.ts';
import { request, waitForState } from '../helpers/dispatch.ts';
import { jobDir, readLog, waitFor } from '../helpers/env.ts';
import { hostFile } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';

/**
 * A host where the shell wrapper cannot pause a job (no `setsid`, and no perl for the launcher:
 * STOP and CONT would reach nothing). The wrapper says so before the job starts, and a pause is
 * refused with PAUSE_UNSUPPORTED by the API, the CLI and a request file, never done in name only.
 * The same host with setsid on the PATH pauses the same job.
 */
let sshd: Sshd;
let d: ApiDaemon;
let p: ReturnType<typeof probe>;

/** A PATH with what the wrapper and the job use, and no setsid. */
function pathWithoutSetsid(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const tool of ['sh', 'sleep', 'rm', 'mkdir', 'cat'])
    symlinkSync(existsSync(`/usr/bin/${tool}`) ? `/usr/bin/${tool}` : `/bin/${tool}`, path.join(dir, tool));
  return dir;
}

const COUNT = 40;
const counter = `i=0; while [ $i -lt ${COUNT} ]; do echo $i; i=$((i+1)); sleep 0.1; done`;

beforeAll(async () => {
  sshd = await startSshd();
  d = await startApiDaemon({
    config: { dispatcher: { workers: 4 } },
    queues: { default: null },
    jobTypes: { full: { template: counter } },
    beforeStart: (env) => {
      const bin = pathWithoutSetsid(path.join(env.root, 'bare-bin'));
      env.writeConfig('jobtypes/bare.yaml', { template: counter, environment: { PATH: bin } });
      env.writeConfig('hosts/plain.yaml', { ...hostFile(sshd, path.join(env.root, 'plain')), perl: false });
      return Promise.resolve();
    },
  });
  p = probe(d);
});

afterAll(async () => {
  await d?.stop();
  await sshd?.stop();
});

/** A running job of `type` on the host, once it has printed (its wrapper spoke before it started). */
async function running(type: 'bare' | 'full'): Promise<string> {
  const id = await p.submit('default', { type, host: 'plain' });
  await waitFor(() => p.stdoutSize(id) >= 6 || undefined, 20_000, `job ${id} to print`);
  return id;
}

const runningBare = (): Promise<string> => running('bare');

describe('pause of a job on a host that cannot pause it (no setsid, perl: false)', () => {
  it('the API refuses with 409 PAUSE_UNSUPPORTED naming the host and why; the job runs on to its end', async () => {
    const id = await runningBare();
    const refused = await p.call('POST', `/job/${id}/pause`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'PAUSE_UNSUPPORTED' });
    expect(refused.body.error?.message).toMatch(
      new RegExp(`^Job ${id} cannot be paused: host plain has no setsid command`),
    );
    // Not paused in name only: no record of a pause, and its output goes on.
    expect(p.stateOf(id).paused_at).toBeUndefined();
    const before = p.stdoutSize(id);
    await waitFor(() => p.stdoutSize(id) > before || undefined, 10_000, 'the job to go on printing');
    await waitForState(d.env, id, 'done', 30_000);
    expect(p.stdoutOf(id)).toBe(fullCount(COUNT));
  });

  it('`batch pause` fails with the same message', async () => {
    const id = await runningBare();
    const result = await d.batch(['pause', id]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('host plain has no setsid command');
    expect(p.stateOf(id).paused_at).toBeUndefined();
    await waitForState(d.env, id, 'done', 30_000);
  });

  it('a request file <id>.pause is set aside with the reason', async () => {
    const id = await runningBare();
    const file = request(d.env, 'default', id, 'pause');
    const error = await waitFor(
      () => (existsSync(`${file}.error`) ? readFileSync(`${file}.error`, 'utf8') : undefined),
      15_000,
      'the request to be refused',
    );
    expect(error).toMatch(new RegExp(`^Job ${id} cannot be paused: host plain has no setsid command`));
    expect(existsSync(`${file}.rejected`)).toBe(true);
    expect(p.stateOf(id).paused_at).toBeUndefined();
    await waitForState(d.env, id, 'done', 30_000);
  });

  it('the same job on the same host with setsid on its PATH is paused and resumed', async () => {
    const id = await running('full');
    expect(await p.call('POST', `/job/${id}/pause`)).toMatchObject({
      status: 200,
      body: { result: 'paused' },
    });
    await p.expectNoProgress(id);
    expect((await p.call('POST', `/job/${id}/resume`)).status).toBe(200);
    await waitForState(d.env, id, 'done', 30_000);
    expect(p.stdoutOf(id)).toBe(fullCount(COUNT));
    // The wrapper's start line is cut off the job's stderr.
    expect(readLog(jobDir(d.env.spool, 'default', 'done', id), 'stderr.log')).toBe('');
  });
});
