import { createWriteStream, type WriteStream } from 'node:fs';
import path, { posix } from 'node:path';

import { BatchdError, coerceError } from '../errors.ts';
import type { HostLayer, HostSession } from '../hosts/layer.ts';
import type { RemoteLauncher } from '../hosts/remote-launcher.ts';
import type { Sftp } from '../hosts/sftp.ts';
import { onChannelExit } from '../hosts/channel-exit.ts';
import { abortable, type Lease } from '../hosts/ssh-pool.ts';
import { PARAM_ENV_PREFIX, planCommand, programOf } from '../jobs/template.ts';
import type { Logger } from '../log.ts';
import { RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';
import {
  commandFor,
  launcherCommand,
  newNonce,
  remoteCommand,
  type WrapperReport,
  WrapperStderr,
} from './remote-command.ts';
import {
  checkInputs,
  downloadOutputs,
  fetchAtomic,
  planStaging,
  type Staging,
  uploadInputs,
} from './staging.ts';
import type { LauncherEvent } from '../launcher/protocol.ts';
import { StopControl, type Stopping } from './stops.ts';
import { type End, finish } from './attempt-end.ts';
import { HostExecutor } from './host-executor.ts';
import { limitOutcome, rlimitOptions } from './limit-outcome.ts';
import type { RunOutcome, RunRequest } from '../jobs/executor.ts';

/** After the remote command exits, how long its channel may stay open (a leftover holding stdout). */
const CLOSE_AFTER_EXIT_MS = 2_000;
/** After KILL, how long to wait for the channel before giving up on it. */
const CLOSE_AFTER_KILL_MS = 5_000;
/** Keys of the local run that make no sense on the host: the wrapper sets its own. */
const LOCAL_ONLY_ENV = new Set(['BATCHD_JOB_DIR', 'BATCHD_RESULT']);

interface ExecResult {
  report: WrapperReport | undefined;
  exitCode: number | null;
  signal: string | null;
  stopping: Stopping | undefined;
  /** The connection went away before the command's end was reported. */
  lost: string | undefined;
  /** An exit status or the wrapper's report arrived. */
  ended: boolean;
  /** The job wrote `$BATCHD_RESULT`: fetch it. */
  result: boolean;
  /** The launcher could not start the job's program. */
  failure?: { code: number | null; error: string; errno: string } | undefined;
  /** Why no exit status came, when the connection is still there (the launcher stopped). */
  gone?: string | undefined;
}

/** What the launcher needs besides the job's own command line. */
interface LaunchSpec {
  file: string;
  args: string[];
  jobDir: string;
  env: Record<string, string>;
  /** The job's folder was made over SFTP already (for its inputs or script). */
  made: boolean;
}

/**
 * Runs one host's jobs over SSH: a channel from the host's pool, input files up by SFTP, the
 * command under a small wrapper (remote-command.ts) with stdout and stderr streamed into the job
 * folder, outputs and result.json back by SFTP, the job's folder on the host removed.
 */
export class SshExecutor extends HostExecutor<HostSession> {
  constructor(hosts: HostLayer, host: string, log: Logger) {
    super('ssh', hosts, host, log);
  }

  protected openSession(signal: AbortSignal): Promise<HostSession> {
    return this.hosts.session(this.host, signal);
  }

  protected failed(session: HostSession, error: unknown, end: End): RunOutcome {
    const lost = session.lease.lost;
    if (lost === undefined) return end('error', coerceError(error).message);
    this.hosts.lost(this.host, `connection lost mid-job: ${lost}`);
    // Not the job's failure: it runs again (as an interruption, up to max_interruptions).
    return end('interrupted', this.#lost(lost));
  }

  protected async runOn(
    session: HostSession,
    request: RunRequest,
    signal: AbortSignal,
    end: End,
    stopped: () => RunOutcome,
  ): Promise<RunOutcome> {
    const { host, lease, home } = session;
    const job = request.job as NonNullable<RunRequest['job']>;
    const onHost = (p: string): string => posix.resolve(home, p);
    const workDir = onHost(host.work_directory);
    // One folder per attempt: a retry never shares one with a removal still pending.
    const jobDir = posix.join(workDir, `${request.jobId}.${request.attempt}`);
    const staging = planStaging(
      job.type,
      job.params,
      {
        jobDir,
        inputDir: host.input_directory === undefined ? jobDir : onHost(host.input_directory),
        outputDir: host.output_directory === undefined ? jobDir : onHost(host.output_directory),
      },
      request.cwd,
    );
    // Parameters win over host variables, which win over global ones (batchd's order).
    const plan = planCommand(job.type, staging.params, { ...job.variables, ...host.variables });
    const scriptPath =
      plan.kind !== 'script'
        ? undefined
        : host.scripts_directory === undefined
          ? posix.join(jobDir, 'script.sh')
          : posix.join(onHost(host.scripts_directory), `batchd-${request.jobId}.${request.attempt}.sh`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.env))
      if (!k.startsWith(PARAM_ENV_PREFIX) && !LOCAL_ONLY_ENV.has(k)) env[k] = v;
    Object.assign(env, plan.env, { BATCHD_HOST: this.host });

    // What to remove on the host afterwards: this attempt's folder, a script kept elsewhere, and
    // the folders of earlier attempts (left behind if the daemon died during them).
    const leftovers = [jobDir];
    if (scriptPath !== undefined && !scriptPath.startsWith(jobDir + '/')) leftovers.push(scriptPath);
    for (let k = 1; k < request.attempt; k++) {
      leftovers.push(posix.join(workDir, `${request.jobId}.${k}`));
      if (host.scripts_directory !== undefined) {
        leftovers.push(posix.join(onHost(host.scripts_directory), `batchd-${request.jobId}.${k}.sh`));
      }
    }

    checkInputs(staging.inputs, this.host);
    const launcher =
      host.perl === false
        ? undefined
        : await lease.launcher(launcherCommand(host.perl), host.connect_timeout);
    // The job's folder is made over SFTP when files go into it first, or by the launcher as it
    // starts the job; never by a command of its own (a `mkdir` process per job costs the host as
    // much as a trivial job).
    const made = launcher === undefined || staging.inputs.length > 0 || plan.kind === 'script';
    try {
      if (made) {
        await this.#withSftp(lease, signal, async (sftp) => {
          await sftp.mkdir(jobDir).catch((error: unknown) => {
            throw this.#transfer(`cannot create the job's folder ${jobDir}`, error);
          });
          await uploadInputs(sftp, staging.inputs, this.host, signal);
          if (plan.kind === 'script' && scriptPath !== undefined) {
            const mode = plan.interpreter === undefined ? 0o644 : 0o755;
            await sftp
              .mkdirp(posix.dirname(scriptPath))
              .then(() => sftp.writeFile(scriptPath, plan.script, mode))
              .catch((error: unknown) => {
                throw this.#transfer(`upload of the job's script to ${scriptPath} failed`, error);
              });
          }
        });
      }
    } catch (error) {
      if (lease.lost === undefined) session.sweep(leftovers);
      throw error;
    }
    if (signal.aborted) {
      session.sweep(leftovers);
      return stopped();
    }

    let result: ExecResult;
    if (launcher !== undefined) {
      const line = programOf(plan, scriptPath);
      result = await this.#launch(launcher, lease, { ...line, jobDir, env, made }, request, signal);
    } else {
      const nonce = newNonce();
      const command = remoteCommand({ nonce, jobDir, env, command: commandFor(plan, scriptPath) });
      result = await this.#exec(lease, command, nonce, request, signal);
    }
    const base = { exitCode: result.exitCode ?? result.report?.status ?? null, signal: result.signal };

    let outcome: RunOutcome;
    if (result.stopping === 'timeout') {
      outcome = end('timeout', `timed out after ${Math.round((request.timeoutMs ?? 0) / 1000)} s`, base);
    } else if (result.stopping !== undefined) outcome = stopped();
    else if (result.lost !== undefined) {
      // Its folder stays until a later attempt on the host sweeps it.
      this.hosts.lost(this.host, `connection lost mid-job: ${result.lost}`);
      return end('interrupted', this.#lost(result.lost), base);
    } else if (!result.ended) {
      const error = result.gone ?? `host ${this.host}: the job's channel closed without an exit status`;
      outcome = end('error', error, base);
    } else if (result.failure !== undefined) {
      const { code, error, errno } = result.failure;
      const message = `host ${this.host}: ${error}`;
      // As on this machine: a command that is not there is its exit code 127, the rest cannot start.
      outcome =
        code === 127 && errno === 'ENOENT'
          ? end('exit-code', message, { ...base, exitCode: 127 })
          : end('spawn-failed', message, base);
    } else if (result.report?.kind === 'setup') {
      outcome = end('spawn-failed', `host ${this.host}: cannot create the job's folder ${jobDir}`, base);
    } else {
      const code = result.report?.status ?? result.exitCode;
      if (code === 0) outcome = end('success', undefined, { ...base, exitCode: 0 });
      else if (result.signal !== null && result.report === undefined)
        outcome = end('signal', `killed by ${result.signal}`, base);
      else outcome = end('exit-code', `exit code ${code ?? 'unknown'}`, { ...base, exitCode: code });
    }

    const fetchResult = result.result;
    if (lease.lost === undefined && (staging.outputs.length > 0 || fetchResult)) {
      const problems = await this.#fetch(lease, staging, jobDir, request.dir, fetchResult);
      if (problems.length > 0) {
        if (outcome.outcome === 'success')
          outcome = end('error', problems.join('; '), { ...base, exitCode: 0 });
        else
          this.log.warn(
            { jobId: request.jobId, host: this.host, problems },
            'outputs of a failed remote job were not all fetched',
          );
      }
    }
    session.sweep(leftovers);
    return limitOutcome(request.limits, [], outcome);
  }

  #transfer(what: string, error: unknown): BatchdError {
    return new BatchdError('TRANSFER_FAILED', `host ${this.host}: ${what}: ${coerceError(error).message}`, {
      host: this.host,
    });
  }

  #lost(reason: string): string {
    return `host ${this.host}: connection lost mid-job (${reason}); the host is marked down`;
  }

  async #withSftp(lease: Lease, signal: AbortSignal, work: (sftp: Sftp) => Promise<void>): Promise<void> {
    try {
      await abortable(
        lease.sftp().then((sftp) => work(sftp)),
        signal,
      );
    } catch (error) {
      const lost = lease.lost;
      if (lost !== undefined)
        throw new BatchdError('HOST_LOST', this.#lost(lost), { host: this.host }, { cause: error });
      throw error;
    }
  }

  async #fetch(
    lease: Lease,
    staging: Staging,
    jobDir: string,
    localDir: string,
    fetchResult: boolean,
  ): Promise<string[]> {
    const problems: string[] = [];
    try {
      await this.#withSftp(lease, AbortSignal.timeout(600_000), async (sftp) => {
        if (fetchResult) {
          try {
            await fetchAtomic(sftp, posix.join(jobDir, RESULT_FILE), path.join(localDir, RESULT_FILE));
          } catch (error) {
            problems.push(
              `download of ${RESULT_FILE} from ${this.host} failed: ${coerceError(error).message}`,
            );
          }
        }
        problems.push(...(await downloadOutputs(sftp, staging.outputs, localDir, this.host)));
      });
    } catch (error) {
      problems.push(`fetching outputs from ${this.host} failed: ${coerceError(error).message}`);
    }
    return problems;
  }

  /** Run the wrapper; stream stdout and stderr to the job folder; TERM/KILL on stop or timeout. */
  async #exec(
    lease: Lease,
    command: string,
    nonce: string,
    request: RunRequest,
    signal: AbortSignal,
  ): Promise<ExecResult> {
    const channel = await lease.exec(command);
    const stdout = createWriteStream(path.join(request.dir, STDOUT_FILE), { flags: 'a' });
    const stderr = createWriteStream(path.join(request.dir, STDERR_FILE), { flags: 'a' });
    const held = new WrapperStderr(nonce, (pausable) => this.wrapperStarted(request.jobId, pausable));
    let exit: { code: number | null; signal: string | null } | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    const send = (op: 'TERM' | 'KILL' | 'STOP' | 'CONT'): void => {
      try {
        channel.write(`${op}\n`);
      } catch {
        // the channel is gone already
      }
    };
    const control: StopControl = new StopControl(request, (sig) => {
      send(sig === 'SIGTERM' ? 'TERM' : 'KILL');
      if (sig === 'SIGKILL') control.later(CLOSE_AFTER_KILL_MS, () => channel.close());
    });

    await new Promise<void>((resolve) => {
      // A full file buffer pauses the channel, and SSH flow control then holds the job's writes.
      channel.on('data', (chunk: Buffer) => {
        if (!stdout.write(chunk)) {
          channel.pause();
          stdout.once('drain', () => channel.resume());
        }
      });
      channel.stderr.on('data', (chunk: Buffer) => {
        const text = held.push(chunk);
        if (text.length > 0 && !stderr.write(text)) {
          channel.stderr.pause();
          stderr.once('drain', () => channel.stderr.resume());
        }
      });
      channel.on('error', (error: Error) =>
        this.log.debug({ jobId: request.jobId, err: error }, 'ssh channel error'),
      );
      onChannelExit(channel, (status) => {
        exit = status;
        control.ended();
        this.running.delete(request.jobId);
        closeTimer = setTimeout(() => channel.close(), CLOSE_AFTER_EXIT_MS);
      });
      // stdout's end closes the channel; stderr ends on its own (later, if it was paused).
      let open = 2;
      const closed = (): void => {
        open -= 1;
        if (open === 0) resolve();
      };
      channel.once('close', closed);
      channel.stderr.once('close', closed);
      control.started();
      this.running.add(request.jobId, control, send, false);
      control.watch(signal);
    });
    control.ended();
    this.running.delete(request.jobId);
    clearTimeout(closeTimer);

    const { report, rest } = held.end();
    stderr.write(rest);
    await Promise.all([finish(stdout), finish(stderr)]);
    // A channel that closed without an exit status: the connection went (it is marked closed
    // a moment after its channels are).
    let lost: string | undefined;
    if (exit === undefined && report === undefined) {
      await new Promise((r) => setImmediate(r));
      lost = lease.lost;
    }
    return {
      report,
      exitCode: exit?.code ?? null,
      signal: exit?.signal ?? null,
      stopping: control.stopping,
      lost,
      ended: exit !== undefined || report !== undefined,
      result: report?.result === true,
    };
  }

  /** Run the job through the host's launcher; its output streams into the job folder. */
  async #launch(
    launcher: RemoteLauncher,
    lease: Lease,
    spec: LaunchSpec,
    request: RunRequest,
    signal: AbortSignal,
  ): Promise<ExecResult> {
    // Opened at the job's first byte on each stream, as the local launcher does: a job that
    // prints nothing leaves no empty log files (two file creations less per job).
    const logs: Partial<Record<1 | 2, WriteStream>> = {};
    const log = (fd: 1 | 2): WriteStream =>
      (logs[fd] ??= createWriteStream(path.join(request.dir, fd === 1 ? STDOUT_FILE : STDERR_FILE), {
        flags: 'a',
      }));
    const result = posix.join(spec.jobDir, RESULT_FILE);
    const env = { ...spec.env, PWD: spec.jobDir, BATCHD_JOB_DIR: spec.jobDir, BATCHD_RESULT: result };
    let key = 0;
    let pid: number | undefined;
    const control = new StopControl(request, (sig) => launcher.kill(key, sig));
    const exit = await new Promise<Extract<LauncherEvent, { op: 'exit' }>>((resolve) => {
      key = launcher.spawn(
        {
          file: spec.file,
          args: spec.args,
          cwd: spec.jobDir,
          env,
          stdout: null,
          stderr: null,
          // The job's rlimits (no cgroup on a host: its memory limit is one of address space).
          options: [
            ...(spec.made ? [] : ['mkdir' as const]),
            'result',
            ...rlimitOptions(request.limits, undefined),
          ],
        },
        {
          onStarted: (started) => {
            pid = started;
            control.started();
          },
          onData: (fd, data) => {
            const stream = log(fd);
            if (!stream.write(data)) holdUntilDrained(launcher, stream);
          },
          onExit: (event) => {
            control.ended();
            this.running.delete(request.jobId);
            resolve(event);
          },
        },
      );
      this.running.add(request.jobId, control, (op) =>
        launcher.kill(key, op === 'STOP' ? 'SIGSTOP' : 'SIGCONT'),
      );
      control.watch(signal);
    });
    await Promise.all(Object.values(logs).map(finish));

    const base = { report: undefined, stopping: control.stopping, exitCode: exit.code, signal: exit.signal };
    if (exit.errno !== undefined) {
      const failure = { code: exit.code, error: exit.error ?? 'the job could not start', errno: exit.errno };
      return { ...base, lost: undefined, ended: true, result: false, failure };
    }
    if (exit.error !== undefined) {
      // The launcher's channel closed: the connection went (marked closed a moment after its channels),
      // or the launcher itself was killed on the host, leaving the job running there without it.
      await new Promise((r) => setImmediate(r));
      const lost = lease.lost;
      if (lost !== undefined) return { ...base, lost, ended: false, result: false };
      if (pid !== undefined) await killOrphanedGroup(lease, pid);
      const gone = `host ${this.host}: batchd's job launcher on the host stopped mid-job; the job's processes were killed`;
      return { ...base, lost: undefined, ended: false, result: false, gone };
    }
    return { ...base, lost: undefined, ended: true, result: exit.result === true };
  }
}

/**
 * KILL a job's process group (the launcher made the job its leader) through a channel of its own,
 * once its launcher is gone: nothing else on the host would stop it. Best effort, bounded in time.
 */
async function killOrphanedGroup(lease: Lease, pid: number): Promise<void> {
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    // If the connection went too, nothing on the host can be reached to stop the job now.
    lease.run(`kill -KILL -- -${pid} 2>/dev/null; exit 0`).catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_AFTER_KILL_MS))),
  ]);
  clearTimeout(timer);
}

/**
 * A log file is behind: the launcher's channel waits until it drained, or closed (a stream that is
 * ended while full never emits 'drain').
 */
function holdUntilDrained(launcher: RemoteLauncher, stream: WriteStream): void {
  if (HELD.has(stream)) return;
  HELD.add(stream);
  launcher.hold();
  const release = (): void => {
    stream.off('drain', release);
    stream.off('close', release);
    if (HELD.delete(stream)) launcher.release();
  };
  stream.on('drain', release);
  stream.on('close', release);
}
const HELD = new WeakSet<WriteStream>();
