import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import path, { posix } from 'node:path';

import { coerceError } from '../errors.ts';
import type { HostLayer, ShellSession } from '../hosts/layer.ts';
import type { ShellChannel } from '../hosts/provider.ts';
import { PARAM_ENV_PREFIX, planCommand } from '../jobs/template.ts';
import type { Logger } from '../log.ts';
import { RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';
import { SCRIPT_FILE } from './local.ts';
import { commandFor, newNonce, WrapperStderr, wrapperScript } from './remote-command.ts';
import { ShellFiles } from './shell-files.ts';
import { checkInputs, downloadOutputs, fetchAtomic, planStaging, uploadInputs } from './staging.ts';
import { StopControl } from './stops.ts';
import { type End, finish } from './attempt-end.ts';
import { HostExecutor } from './host-executor.ts';
import type { RunOutcome, RunRequest } from '../jobs/executor.ts';

/** After KILL, how long the command may take to end before its stdin is closed (which kills all). */
const END_AFTER_KILL_MS = 5_000;
/** Keys of the local run that make no sense on the host: the wrapper sets its own. */
const LOCAL_ONLY_ENV = new Set(['BATCHD_JOB_DIR', 'BATCHD_RESULT']);

/**
 * Runs one host's jobs through its provider's own channel (Docker exec) instead of SSH: the same
 * wrapper as over SSH (remote-command.ts) with its control line on stdin, stdout and stderr
 * streamed into the job folder, file parameters and result.json copied by the provider.
 */
export class ShellExecutor extends HostExecutor<ShellSession> {
  constructor(hosts: HostLayer, host: string, log: Logger) {
    super('shell', hosts, host, log);
  }

  protected openSession(signal: AbortSignal): Promise<ShellSession> {
    return this.hosts.shellSession(this.host, signal);
  }

  protected failed(_session: ShellSession, error: unknown, end: End): RunOutcome {
    return end('error', `host ${this.host}: ${coerceError(error).message}`);
  }

  protected async runOn(
    session: ShellSession,
    request: RunRequest,
    signal: AbortSignal,
    end: End,
    stopped: () => RunOutcome,
  ): Promise<RunOutcome> {
    const { host, shell, target } = session;
    const job = request.job as NonNullable<RunRequest['job']>;
    // Absolute paths on the host are needed only to copy files: otherwise the job's folder stays
    // relative to where its command starts, and the host is not asked where that is.
    const template = Array.isArray(job.type.template) ? job.type.template.join('\n') : job.type.template;
    const copies =
      template.trim().includes('\n') ||
      job.type.params.some((p) => p.type === 'InputFile' || p.type === 'OutputFile');
    const home = copies ? await session.home(signal) : undefined;
    const onHost = (p: string): string => (home === undefined ? posix.normalize(p) : posix.resolve(home, p));
    const jobDir = posix.join(onHost(host.work_directory), `${request.jobId}.${request.attempt}`);
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
    const plan = planCommand(job.type, staging.params, { ...job.variables, ...host.variables });
    const scriptPath = plan.kind === 'script' ? posix.join(jobDir, SCRIPT_FILE) : undefined;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.env))
      if (!k.startsWith(PARAM_ENV_PREFIX) && !LOCAL_ONLY_ENV.has(k)) env[k] = v;
    Object.assign(env, plan.env, { BATCHD_HOST: this.host });

    checkInputs(staging.inputs, this.host);
    // Only this run's signal: a cancel stops the copies too.
    const files = new ShellFiles(shell, target, signal);
    const leftovers = [jobDir];
    // Each command through a provider costs as much as a trivial job: a job with nothing to copy in
    // or out is one command, whose wrapper makes its folder and removes it.
    const copiesIn = staging.inputs.length > 0 || plan.kind === 'script';
    const removeAfter = staging.outputs.length === 0;
    try {
      if (copiesIn) await files.mkdirp(jobDir);
      await uploadInputs(files, staging.inputs, this.host, signal);
      if (plan.kind === 'script' && scriptPath !== undefined) {
        const local = path.join(request.dir, SCRIPT_FILE);
        writeFileSync(local, plan.script);
        await files.put(local, scriptPath, plan.interpreter === undefined ? 0o644 : 0o755);
      }
    } catch (error) {
      await files.remove(leftovers);
      if (signal.aborted) return stopped();
      return end('spawn-failed', `host ${this.host}: ${coerceError(error).message}`);
    }
    if (signal.aborted) {
      await files.remove(leftovers);
      return stopped();
    }

    const nonce = newNonce();
    const script = wrapperScript({
      nonce,
      jobDir,
      env,
      command: commandFor(plan, scriptPath),
      mkdir: !copiesIn,
      removeAfter,
    });
    const channel = await shell.exec(target, script, signal);
    const { held, stopping } = await this.#follow(channel, nonce, request, signal);
    const exit = await channel.exit;
    const { report, rest } = held.stderr.end();
    held.log.write(rest);
    await Promise.all([finish(held.out), finish(held.log)]);

    const base = { exitCode: report?.status ?? exit.code, signal: exit.signal };
    let outcome: RunOutcome;
    if (stopping === 'timeout')
      outcome = end('timeout', `timed out after ${Math.round((request.timeoutMs ?? 0) / 1000)} s`, base);
    else if (stopping !== undefined) outcome = stopped();
    else if (report?.kind === 'setup')
      outcome = end('spawn-failed', `host ${this.host}: cannot enter the job's folder ${jobDir}`, base);
    else if (report === undefined)
      outcome = end('error', `host ${this.host}: the job's command ended without reporting its exit`, base);
    else if (report.status === 0) outcome = end('success', undefined, { ...base, exitCode: 0 });
    else if (report.status === 127)
      outcome = end('exit-code', `exit code 127 (command not found on host ${this.host})`, base);
    else outcome = end('exit-code', `exit code ${report.status}`, base);

    const problems: string[] = [];
    if (report?.result === true) {
      try {
        await fetchAtomic(files, posix.join(jobDir, RESULT_FILE), path.join(request.dir, RESULT_FILE));
      } catch (error) {
        problems.push(`download of ${RESULT_FILE} from ${this.host} failed: ${coerceError(error).message}`);
      }
    }
    if (staging.outputs.length > 0)
      problems.push(...(await downloadOutputs(files, staging.outputs, request.dir, this.host)));
    if (problems.length > 0) {
      if (outcome.outcome === 'success')
        outcome = end('error', problems.join('; '), { ...base, exitCode: 0 });
      else
        this.log.warn(
          { jobId: request.jobId, host: this.host, problems },
          'outputs of a failed job were not all fetched',
        );
    }
    // The wrapper removed the folder itself if it reported its end with no result to fetch.
    if (!removeAfter || report === undefined || report.result) await files.remove(leftovers);
    return outcome;
  }

  /** Stream the command's output into the job folder until it ends; TERM/KILL on stop or timeout. */
  async #follow(
    channel: ShellChannel,
    nonce: string,
    request: RunRequest,
    signal: AbortSignal,
  ): Promise<{
    held: { stderr: WrapperStderr; out: WriteStream; log: WriteStream };
    stopping: StopControl['stopping'];
  }> {
    const out = createWriteStream(path.join(request.dir, STDOUT_FILE), { flags: 'a' });
    const log = createWriteStream(path.join(request.dir, STDERR_FILE), { flags: 'a' });
    const stderr = new WrapperStderr(nonce, (pausable) => this.wrapperStarted(request.jobId, pausable));
    const held = { stderr, out, log };
    const send = (op: 'TERM' | 'KILL' | 'STOP' | 'CONT'): void => {
      try {
        channel.write(`${op}\n`);
      } catch {
        // the command is gone already
      }
    };
    const control = new StopControl(request, (sig) => {
      send(sig === 'SIGTERM' ? 'TERM' : 'KILL');
      if (sig === 'SIGKILL') control.later(END_AFTER_KILL_MS, () => channel.end());
    });
    channel.stdout.on('data', (chunk: Buffer) => {
      if (!out.write(chunk)) {
        channel.stdout.pause();
        out.once('drain', () => channel.stdout.resume());
      }
    });
    // The wrapper's start line heads stderr, its report ends it: the job's own goes to the log.
    channel.stderr.on('data', (chunk: Buffer) => {
      const text = stderr.push(chunk);
      if (text.length > 0 && !log.write(text)) {
        channel.stderr.pause();
        log.once('drain', () => channel.stderr.resume());
      }
    });
    control.started();
    this.running.add(request.jobId, control, send, false);
    control.watch(signal);
    try {
      await channel.exit;
    } finally {
      control.ended();
      this.running.delete(request.jobId);
      // The command ended: closing its stdin lets the wrapper's watcher go.
      channel.end();
    }
    return { held, stopping: control.stopping };
  }
}
