import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { type TestEnv, waitFor } from '../helpers/env.ts';
import {
  finished,
  hostFile,
  leftovers,
  log,
  SPARE,
  waitForNoLeftovers,
  waitForNoProcess,
  waitForProcess,
} from './ssh-env.ts';
import { type Sshd, startSshd } from './sshd.ts';

/**
 * Both ways a job runs on a host: through batchd's Perl launcher on the connection (the default),
 * and under the shell wrapper in a channel of its own (`perl: false`, or a host without perl).
 */
describe.each([{ perl: 'perl' as const }, { perl: false as const }])(
  'jobs on a remote host over SSH (perl: $perl)',
  ({ perl }) => {
    let sshd: Sshd;
    let env: TestEnv;
    let daemon: Daemon;
    let remote: string;
    let local: string;

    beforeAll(async () => {
      sshd = await startSshd();
      env = makeDispatchEnv({
        config: { dispatcher: { workers: 4, kill_grace: 0.5 } },
        queues: { default: null },
        jobTypes: {
          convert: {
            // A script (several lines): uploaded, run, removed with the job's folder.
            template: [
              'tr a-z A-Z < "$input" > "$output"',
              'echo "converted $(wc -c < "$input") bytes in $(pwd)"',
              'echo "note: read $input" >&2',
            ],
            params: [
              { name: 'input', type: 'InputFile' },
              { name: 'output', type: 'OutputFile' },
            ],
            host_name: 'remote',
          },
          report: {
            template: `sh -c 'printf "{\\"host\\": \\"%s\\"}" "$BATCHD_HOST" > "$BATCHD_RESULT"; echo written'`,
            host_name: 'remote',
          },
          show: {
            template: "printf '[%s]\\n' $value $file",
            params: [
              { name: 'value', type: 'String' },
              { name: 'file', type: 'InputFile' },
            ],
            host_name: 'remote',
          },
          cat: { template: 'cat $file', params: [{ name: 'file', type: 'InputFile' }], host_name: 'remote' },
          big: {
            template: "sh -c 'head -c 20000000 /dev/zero; head -c 1000001 /dev/zero >&2'",
            host_name: 'remote',
          },
          where: { template: 'stat -c %i .', host_name: 'remote' },
          nap: {
            template: 'sleep $seconds',
            params: [{ name: 'seconds', type: 'Integer' }],
            host_name: 'remote',
          },
          stubborn: {
            template: ['trap "" TERM', 'sleep $seconds'],
            params: [{ name: 'seconds', type: 'Integer' }],
            host_name: 'remote',
          },
        },
      });
      remote = path.join(env.root, 'remote');
      local = path.join(env.root, 'local');
      mkdirSync(local, { recursive: true });
      env.writeConfig('hosts/remote.yaml', hostFile(sshd, remote, { perl }));
      env.writeConfig('hosts/nowhere-to-work.yaml', {
        ...hostFile(sshd, remote, { perl }),
        work_directory: '/dev/null/work',
      });
      env.writeConfig('hosts/perl-elsewhere.yaml', hostFile(sshd, remote, { perl: '/nonexistent/perl' }));
      daemon = await startInProcess(env);
    });

    afterAll(async () => {
      await daemon?.stop();
      await sshd?.stop();
      env?.cleanup();
    });

    it('uploads input files, runs the script, captures stdout and stderr, and brings outputs back', async () => {
      const input = path.join(local, 'words.txt');
      writeFileSync(input, 'hello\n');
      const requested = path.join(local, 'results', 'upper.txt');
      const id = await dropJob(
        env,
        'default',
        { type: 'convert', params: { input, output: requested } },
        'convert',
      );
      const { state, record, dir } = await finished(env, id);
      expect(record.last, log(dir, 'stderr.log')).toMatchObject({ outcome: 'success', exit_code: 0 });
      expect(state).toBe('done');
      const remoteDir = path.join(remote, `${id}.1`);
      expect(log(dir, 'stdout.log')).toBe(`converted 6 bytes in ${remoteDir}\n`);
      expect(log(dir, 'stderr.log')).toBe(`note: read ${path.join(remoteDir, 'words.txt')}\n`);
      expect(readFileSync(path.join(dir, 'outputs', 'upper.txt'), 'utf8')).toBe('HELLO\n');
      expect(readFileSync(requested, 'utf8')).toBe('HELLO\n');
      expect((record.last as { host?: string }).host).toBe('remote');
      // The job's folder on the host (input, script, output) is gone.
      await waitForNoLeftovers(remote);
    });

    it('runs a single-line command directly and fetches the result.json it wrote', async () => {
      const id = await dropJob(env, 'default', { type: 'report' }, 'report');
      const { state, dir } = await finished(env, id);
      expect(state).toBe('done');
      expect(log(dir, 'stdout.log')).toBe('written\n');
      expect(JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8'))).toEqual({ host: 'remote' });
      await waitForNoLeftovers(remote);
    });

    const spareInodes = (): string[] =>
      leftovers(remote, true)
        .filter((name) => SPARE.test(name))
        .map((name) => String(statSync(path.join(remote, name)).ino));

    it(
      perl === false
        ? 'removes the empty folder a job leaves, under the shell wrapper (nothing to keep it for)'
        : 'runs the next job in a folder an earlier job left empty, renamed into place rather than made',
      async () => {
        const first = await dropJob(env, 'default', { type: 'where' }, 'where-1');
        const before = await finished(env, first);
        expect(before.state).toBe('done');
        if (perl === false) {
          await waitForNoLeftovers(remote, true);
          return;
        }
        // Kept aside by the host's launcher, under a hidden name, instead of removed.
        const kept = await waitFor(
          () => (spareInodes().length > 0 ? spareInodes() : undefined),
          5_000,
          'an empty job folder kept for reuse',
        );
        expect(kept).toContain(log(before.dir, 'stdout.log').trim());
        const second = await dropJob(env, 'default', { type: 'where' }, 'where-2');
        const { state, dir } = await finished(env, second);
        expect(state).toBe('done');
        expect(kept).toContain(log(dir, 'stdout.log').trim());
        await waitForNoLeftovers(remote);
      },
    );

    /** The processes above a job's remote `sleep <seconds>` (pid and command name), nearest first. */
    const ancestry = async (seconds: number): Promise<{ pid: number; name: string }[]> => {
      const [pid] = await waitForProcess(`sleep ${seconds}`);
      const above: { pid: number; name: string }[] = [];
      for (let p = String(pid); p !== '1' && p !== '0' && above.length < 10;) {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        p = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '1';
        above.push({ pid: Number(p), name: readFileSync(`/proc/${p}/comm`, 'utf8').trim() });
      }
      return above;
    };
    /** The command names above a job's remote `sleep <seconds>`; the job is cancelled after. */
    const ancestorsOf = async (id: string, seconds: number): Promise<string[]> => {
      const names = (await ancestry(seconds)).map((a) => a.name);
      await daemon.dispatcher.cancel(id);
      expect((await finished(env, id)).state).toBe('cancelled');
      await waitForNoProcess(`sleep ${seconds}`, 5_000);
      return names;
    };
    // Through the launcher: sleep ← sh -c ← batchd-launcher (perl) ← sshd; under the wrapper: sleep ← sh ← sh ← sshd.
    const seconds = perl === false ? 331 : 332;

    it(`starts the job ${perl === false ? 'under the shell wrapper' : 'from the launcher'} on the host`, async () => {
      const id = await dropJob(env, 'default', { type: 'nap', params: { seconds } }, 'whose-child');
      const names = await ancestorsOf(id, seconds);
      expect(names.includes('batchd-launcher'), names.join(' ← ')).toBe(perl !== false);
      expect(
        names.some((name) => name.startsWith('sshd')),
        names.join(' ← '),
      ).toBe(true);
    });

    it('runs jobs under the shell wrapper on a host where the launcher cannot start', async () => {
      const job = { type: 'nap', params: { seconds: 333 }, host: 'perl-elsewhere' };
      const id = await dropJob(env, 'default', job, 'no-perl');
      const names = await ancestorsOf(id, 333);
      expect(names.includes('batchd-launcher'), names.join(' ← ')).toBe(false);
      expect(names.slice(0, 2), names.join(' ← ')).toEqual(['sh', 'sh']);
    });

    // Only the launcher has a process of its own on the host between the connection and the job.
    if (perl !== false)
      it("kills a job's processes when the launcher on the host is killed under it", async () => {
        const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 334 } }, 'launcher-dies');
        // Up the job's ancestry (sleep ← sh ← batchd-launcher) to the launcher this suite's sshd started.
        const launcher = (await ancestry(334)).find((a) => a.name === 'batchd-launcher')?.pid;
        expect(launcher).toBeGreaterThan(1);
        process.kill(launcher ?? 0, 'SIGKILL');
        const { state, record } = await finished(env, id);
        expect(state).toBe('failed');
        expect(record.last?.error).toMatch(
          /job launcher on the host stopped mid-job; the job's processes were killed/,
        );
        await waitForNoProcess('sleep 334', 5_000);
        // The next job on the same connection gets a new launcher.
        const next = await finished(env, await dropJob(env, 'default', { type: 'report' }, 'after-launcher'));
        expect(next.state).toBe('done');
      });

    it('keeps hostile parameter values inert on the host: they arrive verbatim and run nothing', async () => {
      const pwned = path.join(env.root, 'pwned');
      const hostile = [
        `; touch ${pwned}`,
        `$(touch ${pwned})`,
        `\`touch ${pwned}\``,
        `'; touch ${pwned}; '`,
        `"; touch ${pwned}; "`,
        `x\ntouch ${pwned}`,
        '-rf',
        '--help',
        `$HOME \${PATH} * ?`,
        `\\'\\"\\\\`,
      ];
      // A file whose very name is an attack, uploaded and passed on.
      const nasty = path.join(local, `$(touch ${path.basename(pwned)}); x'y"z`);
      writeFileSync(nasty, 'inert\n');
      const ids: [string, string][] = [];
      for (const [i, value] of hostile.entries()) {
        ids.push([
          value,
          await dropJob(env, 'default', { type: 'show', params: { value, file: nasty } }, `hostile-${i}`),
        ]);
      }
      const cat = await dropJob(env, 'default', { type: 'cat', params: { file: nasty } }, 'hostile-cat');
      for (const [value, id] of ids) {
        const { state, dir } = await finished(env, id);
        expect(state, log(dir, 'stderr.log')).toBe('done');
        const remoteFile = path.join(remote, `${id}.1`, path.basename(nasty));
        expect(log(dir, 'stdout.log')).toBe(`[${value}]\n[${remoteFile}]\n`);
      }
      const { state, dir } = await finished(env, cat);
      expect(state).toBe('done');
      expect(log(dir, 'stdout.log')).toBe('inert\n');
      expect(existsSync(pwned)).toBe(false);
      expect(existsSync(path.join('/root', path.basename(pwned)))).toBe(false);
    });

    it('streams large stdout and stderr into the job folder completely', async () => {
      const { state, dir } = await finished(
        env,
        await dropJob(env, 'default', { type: 'big' }, 'big-output'),
      );
      expect(state).toBe('done');
      expect(statSync(path.join(dir, 'stdout.log')).size).toBe(20_000_000);
      expect(statSync(path.join(dir, 'stderr.log')).size).toBe(1_000_001);
      // The channel it came through (the launcher's, shared with later jobs) is not left paused.
      const next = await finished(env, await dropJob(env, 'default', { type: 'report' }, 'after-big'));
      expect(next.state).toBe('done');
    });

    it('cancel stops the remote process and its children', async () => {
      const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 317 } }, 'cancel-me');
      await waitForProcess('sleep 317');
      const answer = await daemon.dispatcher.cancel(id);
      expect(answer).toBe('stopping');
      const { state, record } = await finished(env, id);
      expect(state).toBe('cancelled');
      expect(record.last?.outcome).toBe('cancelled');
      await waitForNoProcess('sleep 317', 5_000);
      await waitForNoLeftovers(remote);
    });

    it('a timeout stops the remote process, with KILL when it ignores TERM', async () => {
      const id = await dropJob(
        env,
        'default',
        { type: 'stubborn', params: { seconds: 318 }, timeout: 1 },
        'too-slow',
      );
      await waitForProcess('sleep 318');
      const { state, record } = await finished(env, id);
      expect(state).toBe('failed');
      expect(record.last).toMatchObject({ outcome: 'timeout', error: 'timed out after 1 s' });
      await waitForNoProcess('sleep 318', 5_000);
      await new Promise((r) => setTimeout(r, 200));
      await waitForNoLeftovers(remote);
    });

    it('records a missing input file and a missing output file as clear job errors', async () => {
      const missing = path.join(local, 'no-such-file.txt');
      const noInput = await dropJob(env, 'default', { type: 'cat', params: { file: missing } }, 'no-input');
      const input = path.join(local, 'in2.txt');
      writeFileSync(input, 'x\n');
      // `true` instead of writing the output: the run succeeds, the output is not there.
      env.writeConfig('jobtypes/forgetful.yaml', {
        template: 'true $input $output',
        params: [
          { name: 'input', type: 'InputFile' },
          { name: 'output', type: 'OutputFile' },
        ],
        host_name: 'remote',
      });
      await new Promise((r) => setTimeout(r, 500));
      const noOutput = await dropJob(
        env,
        'default',
        { type: 'forgetful', params: { input, output: path.join(local, 'never.txt') } },
        'no-output',
      );
      const first = await finished(env, noInput);
      expect(first.state).toBe('failed');
      expect(first.record.last?.outcome).toBe('error');
      expect(first.record.last?.error).toContain(
        `input file ${missing} (parameter "file") cannot be sent to host remote: no such file`,
      );
      const second = await finished(env, noOutput);
      expect(second.state).toBe('failed');
      expect(second.record.last?.outcome).toBe('error');
      expect(second.record.last?.error).toMatch(
        /output file remote:.*never\.txt \(parameter "output"\) was not produced/,
      );
      await waitForNoLeftovers(remote);
    });

    it('records a job folder that cannot be made on the host as a clear error', async () => {
      const id = await dropJob(env, 'default', { type: 'report', host: 'nowhere-to-work' }, 'no-work-dir');
      const { state, record } = await finished(env, id);
      expect(state).toBe('failed');
      expect(record.last?.error).toMatch(
        /^host nowhere-to-work: cannot create the job's folder \/dev\/null\/work\/\S+\.1: /,
      );
    });
  },
);
