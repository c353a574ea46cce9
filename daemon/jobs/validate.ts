import type { ConfigStore } from '../config/store.ts';
import { loadText, locateIssues, formatProblems } from '../config/parse.ts';
import type { QueueSettings } from '../config/schema.ts';
import { BatchdError, type Problem } from '../errors.ts';
import { jobIdMaker } from './id.ts';
import { inputFileProblem, runsHere } from './input-files.ts';
import { coerceParam, expandInput, expansionSize, isExpanding } from './params.ts';
import { positionalParams } from './positional.ts';
import { type JobFile, jobFileSchema, type JobSpec, type ParamValue } from './spec.ts';

export interface ValidateContext {
  queue: string;
  queueSettings: QueueSettings;
  config: ConfigStore;
  /** Where the job came from, for error messages and the job's record. */
  file: string;
  via: 'drop' | 'api';
  slugSource?: string | undefined;
  user?: string | undefined;
  hostExists: (name: string) => boolean;
  jobExists: (id: string) => boolean;
  maxTaskJobs: number;
}

/**
 * Check a job file against the schema and its job type, and expand a task into its jobs.
 * Every problem names the file, the line and the field.
 */
export function validateJobText(text: string, ctx: ValidateContext): JobSpec[] {
  const data = loadText(text, ctx.file);
  return validateJobData(data, text, ctx);
}

export function validateJobData(data: unknown, text: string, ctx: ValidateContext): JobSpec[] {
  const parsed = jobFileSchema.safeParse(data);
  if (!parsed.success) fail(ctx.file, locateIssues(text, parsed.error.issues, data));
  const job = parsed.data;
  const problems: { path: (string | number)[]; message: string }[] = [];

  const typeName =
    job.type ?? (job.command !== undefined ? 'command' : (ctx.queueSettings.type ?? 'command'));
  const type = ctx.config.jobType(typeName);
  if (type === undefined) {
    const known = ctx.config
      .list<{ name: string }>('jobtypes')
      .map((t) => t.name)
      .sort();
    throwAt(
      ctx.file,
      text,
      ['type'],
      `Unknown job type "${typeName}"; known types: ${known.join(', ')}`,
      'UNKNOWN_TYPE',
    );
  }
  // Positional values first: a parameter also given by name (params, command:) takes that value.
  const inputs: JobFile['params'] = {};
  if (job.args !== undefined) {
    const filled = positionalParams(type, job.args);
    if (filled.error !== undefined)
      problems.push({ path: ['args'], message: `${filled.error}; name the others in params, or give fewer` });
    Object.assign(inputs, filled.params);
  }
  Object.assign(inputs, job.params);
  if (job.command !== undefined) inputs.command = job.command;

  const declared = new Set(type.params.map((p) => p.name));
  for (const key of Object.keys(inputs)) {
    if (!declared.has(key)) {
      const takes = type.params.length === 0 ? 'no parameters' : `parameters ${[...declared].join(', ')}`;
      problems.push({
        path: ['params', key],
        message: `Unknown parameter "${key}"; type "${type.name}" takes ${takes}`,
      });
    }
  }
  const size = expansionSize(inputs);
  if (size > ctx.maxTaskJobs) {
    throwAt(
      ctx.file,
      text,
      ['params'],
      `This task would make ${size} jobs; the limit is ${ctx.maxTaskJobs} (storage.max_task_jobs)`,
      'JOB_INVALID',
    );
  }
  // Every declared parameter as a list of candidate values (one value unless it expands).
  const columns: [string, ParamValue[]][] = [];
  for (const spec of type.params) {
    const input = inputs[spec.name];
    const path = spec.name === 'command' && job.command !== undefined ? ['command'] : ['params', spec.name];
    if (input === undefined) {
      if (spec.default === undefined) {
        problems.push({ path, message: `Missing parameter "${spec.name}" (${spec.type})` });
        continue;
      }
      const checked = coerceParam(spec, spec.default);
      if ('error' in checked) problems.push({ path, message: `Default of "${spec.name}": ${checked.error}` });
      else columns.push([spec.name, [checked.value]]);
      continue;
    }
    const values: ParamValue[] = [];
    const raw = expandInput(input);
    raw.forEach((value, i) => {
      const checked = coerceParam(spec, value);
      if ('error' in checked)
        problems.push({
          path: isExpanding(input) && Array.isArray(input) ? [...path, i] : path,
          message: checked.error,
        });
      else values.push(checked.value);
    });
    columns.push([spec.name, values]);
  }

  const host = job.host ?? job.host_name;
  if (host !== undefined && !ctx.hostExists(host)) {
    problems.push({
      path: [job.host !== undefined ? 'host' : 'host_name'],
      message: `Unknown host "${host}"`,
    });
  }
  (job.after ?? []).forEach((dep, i) => {
    if (!ctx.jobExists(dep))
      problems.push({ path: ['after', i], message: `Unknown job "${dep}" (no queue holds it)` });
  });
  // A job that waits (for other jobs, or a start time) may use a file made meanwhile: it is checked when it starts.
  const waits =
    (job.after ?? []).length > 0 || Date.parse(job.not_before ?? job.start_time ?? '') > Date.now();
  if (!waits && runsHere(host ?? type.host_name ?? ctx.queueSettings.host_name ?? undefined)) {
    const cwd = type.workdir === undefined ? undefined : ctx.config.resolve(type.workdir);
    for (const spec of type.params) {
      if (spec.type !== 'InputFile') continue;
      const input = inputs[spec.name];
      const listed = input !== undefined && Array.isArray(input);
      (columns.find(([name]) => name === spec.name)?.[1] ?? []).forEach((value, i) => {
        const message = inputFileProblem(String(value), cwd);
        if (message !== undefined)
          problems.push({ path: listed ? ['params', spec.name, i] : ['params', spec.name], message });
      });
    }
  }
  if (problems.length > 0) {
    fail(
      ctx.file,
      locateIssues(
        text,
        problems.map((p) => ({ code: 'custom', path: p.path, message: p.message, input: undefined })),
        data,
      ),
    );
  }

  const combos = cartesian(columns);
  const submittedAt = new Date().toISOString();
  const isTask = combos.length > 1 || job.task !== undefined;
  const taskName = job.task ?? ctx.slugSource ?? undefined;
  // What the jobs of a task share is made once (a task may have 100,000 jobs; none of these is
  // changed after acceptance): each job has its own id, parameters and place in the task.
  const after = job.after ?? [];
  const source = { via: ctx.via, file: ctx.via === 'drop' ? ctx.file : undefined };
  const nextId = jobIdMaker(ctx.slugSource);
  const specs = new Array<JobSpec>(combos.length);
  for (let index = 0; index < combos.length; index++) {
    specs[index] = {
      id: nextId(),
      queue: ctx.queue,
      type: type.name,
      params: combos[index] as Record<string, ParamValue>,
      host,
      priority: job.priority ?? 0,
      not_before: job.not_before ?? job.start_time,
      after,
      notes: job.notes,
      name: job.name,
      task: isTask ? { name: taskName ?? 'task', index, count: combos.length } : undefined,
      timeout_ms: job.timeout,
      limits: job.limits,
      cluster: job.cluster,
      submitted_at: submittedAt,
      submitted_by: ctx.user,
      source,
    };
  }
  return specs;
}

/** Every combination of the columns' values, the last column varying fastest: one object per job. */
function cartesian(columns: [string, ParamValue[]][]): Record<string, ParamValue>[] {
  let count = 1;
  for (const [, values] of columns) count *= values.length;
  const rows = new Array<Record<string, ParamValue>>(count);
  for (let i = 0; i < count; i++) {
    const row: Record<string, ParamValue> = {};
    // The column's place in mixed radix: how many rows each of its values spans.
    let span = count;
    for (const [name, values] of columns) {
      span /= values.length;
      row[name] = values[Math.floor(i / span) % values.length] as ParamValue;
    }
    rows[i] = row;
  }
  return rows;
}

function fail(file: string, problems: Problem[]): never {
  throw new BatchdError(
    'JOB_INVALID',
    formatProblems(file, problems),
    { file, line: problems[0]?.line, field: problems[0]?.field },
    { problems },
  );
}

function throwAt(
  file: string,
  text: string,
  path: string[],
  message: string,
  code: 'UNKNOWN_TYPE' | 'JOB_INVALID',
): never {
  const problems = locateIssues(text, [{ code: 'custom', path, message, input: undefined }]);
  throw new BatchdError(
    code,
    formatProblems(file, problems),
    { file, line: problems[0]?.line, field: path.join('.') },
    { problems },
  );
}
