#!/usr/bin/env node
// batchd → Slurm against Slurm alone: N trivial jobs (`true`) through a daemon whose host is a
// Slurm controller, beside the same N submitted with `sbatch` directly (one call per job) and as
// one array, on the same single-node Slurm (bench/peers/slurm.mjs: HTC-tuned, 32 slots), in one
// run, taking turns each round. batchd runs them twice: as N job files and as one task of N (both
// go as arrays of the jobs started together); beside them, batchd's own scripts sbatch'd directly
// without a daemon: a lone job's script once per job, and the task's array scripts.
// Needs root and dist/ (npm run build).
//
//   node bench/slurm-daemon.mjs [--jobs 1000] [--rounds 1] [--max-jobs 64] [--only task|jobs] [--profile]
// --profile: batchd's first run under node --cpu-prof, and where its CPU went.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { BatchdDaemon } from './lib/batchd.mjs';
import { summarizeProfile } from './lib/profile.mjs';
import { runOk, waitFor } from './lib/proc.mjs';
import { median } from './lib/stats.mjs';
import { MAX_ARRAY_JOBS } from '../dist/daemon/executors/batch-system.js';
import { slurmConfig } from '../dist/plugins/slurm/config.js';
import { batchScript, sbatchOptions } from '../dist/plugins/slurm/script.js';
import { slurm } from './peers/slurm.mjs';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const JOBS = option('jobs', 1000);
const ROUNDS = option('rounds', 1);
const MAX_JOBS = option('max-jobs', 64);
/** `--only task`: the task figures alone (one array, batchd's task); `--only jobs`: the job files'. */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : 'all';
const PROFILE = process.argv.includes('--profile');
let profiled = false;
const log = (line) => process.stderr.write(`${line}\n`);
/** The batch scripts' interpreter as batchd writes them by default. */
const SHELL = slurmConfig.parse({}).shell;

const root = mkdtempSync('/tmp/batchd-bench-slurm-');
const session = await slurm.start({ root, tag: 'bench-slurm-daemon' });
const jobsDir = path.join(root, 'slurm', 'jobs');
const sbatch = (args) =>
  runOk(session.prefix[0], [...session.prefix.slice(1), 'sbatch', ...args], {
    env: session.env,
    cwd: jobsDir,
  });

/** One sbatch per job, one after the other, then until Slurm ran them all. */
async function direct() {
  const started = Date.now();
  for (let i = 0; i < JOBS; i++) await sbatch(['-Q', '-o', '/dev/null', '--wrap=true']);
  await session.waitAllDone(JOBS, JOBS * 1000);
  return Date.now() - started;
}

/**
 * A job that starts alone: its batch script and sbatch options exactly as batchd builds them (the
 * wrapper that writes the exit file and appends to the job's logs), submitted with one `sbatch`
 * per job directly, without a daemon. What this costs over `--wrap=true` is the script's work in
 * Slurm. (Job files that start together go as arrays: their floor is the array floor below.)
 */
async function batchdScriptsDirect(round) {
  const dir = path.join(root, `floor-${round}`);
  mkdirSync(dir);
  const started = Date.now();
  for (let i = 0; i < JOBS; i++) {
    const job = path.join(dir, `j${i}`);
    mkdirSync(job);
    const env = {
      BATCHD_JOB_ID: `j${i}`,
      BATCHD_QUEUE: 'default',
      BATCHD_TASK: '',
      BATCHD_ATTEMPT: '1',
      BATCHD_JOB_DIR: job,
      BATCHD_RESULT: path.join(job, 'result.yaml'),
      BATCHD_PARAM_n: '0',
    };
    const options = sbatchOptions(
      { name: `batchd-j${i}`, comment: `batchd.spool=floor batchd.job=j${i}`, workdir: job },
      { extra: ['--open-mode=append'] },
    );
    options.push(`--output=${path.join(job, 'stdout.log')}`, `--error=${path.join(job, 'stderr.log')}`);
    const script = batchScript(SHELL, `batchd job j${i}`, [
      {
        body: "#!/bin/sh\nexec 'true'\n",
        command: ['true'],
        env,
        stdout: path.join(job, 'stdout.log'),
        stderr: path.join(job, 'stderr.log'),
        exitFile: path.join(job, 'batch.exit'),
      },
    ]);
    await runOk(session.prefix[0], [...session.prefix.slice(1), 'sbatch', ...options], {
      env: session.env,
      cwd: jobsDir,
      input: script,
    });
  }
  await session.waitAllDone(JOBS, JOBS * 1000);
  return Date.now() - started;
}

/**
 * The floor for a task: N jobs as arrays whose scripts are batchd's (plugins/slurm/array-script.ts),
 * each element with the environment, files and folder batchd gives a task's job, submitted with
 * one `sbatch` per array directly, without a daemon. What batchd's task costs on top of this is the daemon's
 * (submission, polling, its own work beside Slurm's on the same cores); what this costs over the
 * plain array is the script's work in Slurm.
 */
async function arrayScriptDirect(round) {
  const dir = path.join(root, `array-floor-${round}`);
  const task = 'floor-task';
  const jobs = [];
  for (let i = 0; i < JOBS; i++) {
    const id = `20261207T000000.000Z-${(1e6 + i).toString(36)}-${task}`;
    const job = path.join(dir, 'default', 'running', id);
    mkdirSync(job, { recursive: true });
    jobs.push({
      body: "#!/bin/sh\nexec 'true'\n",
      env: {
        BATCHD_PARAM_n: String(i + 1),
        BATCHD_JOB_ID: id,
        BATCHD_QUEUE: 'default',
        BATCHD_TASK: task,
        BATCHD_ATTEMPT: '1',
        BATCHD_JOB_DIR: job,
        BATCHD_RESULT: path.join(job, 'result.json'),
      },
      stdout: path.join(job, 'stdout.log'),
      stderr: path.join(job, 'stderr.log'),
      exitFile: path.join(job, 'batch.exit'),
      workdir: job,
    });
  }
  const options = sbatchOptions(
    { name: `batchd-${task}`, comment: `batchd.spool=floor batchd.task=${task}` },
    { extra: ['--open-mode=append'] },
  );
  const started = Date.now();
  // In arrays of the size batchd's executor makes.
  for (let from = 0; from < JOBS; from += MAX_ARRAY_JOBS) {
    const part = jobs.slice(from, from + MAX_ARRAY_JOBS);
    const array = [`--array=0-${part.length - 1}`, '--output=/dev/null', '--error=/dev/null'];
    await runOk(session.prefix[0], [...session.prefix.slice(1), 'sbatch', ...options, ...array], {
      env: session.env,
      cwd: jobsDir,
      input: batchScript(SHELL, `batchd task ${task}`, part),
    });
  }
  await session.waitAllDone(JOBS, JOBS * 1000);
  return Date.now() - started;
}

async function array() {
  const started = Date.now();
  await sbatch(['-Q', '-o', '/dev/null', `--array=0-${JOBS - 1}`, '--wrap=true']);
  await session.waitAllDone(JOBS, JOBS * 1000);
  return Date.now() - started;
}

/** A daemon with a Slurm host; `asTask`: one job file naming N jobs, else N job files. */
async function throughBatchd(round, asTask) {
  const dir = path.join(root, `batchd-${round}-${asTask ? 'task' : 'jobs'}`);
  mkdirSync(dir);
  const profDir = path.join(dir, 'cpu-profile');
  const profiling = PROFILE && !profiled;
  profiled ||= profiling;
  const daemon = new BatchdDaemon({
    dir,
    tag: 'bench-slurm-daemon-batchd',
    nodeArgs: profiling ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    config: { dispatcher: { workers: MAX_JOBS * 2 }, logging: { level: 'info' } },
    jobTypes: {
      nop: 'template: "true"\nhost_name: cluster\nparams: [{ name: n, type: Integer, default: 0 }]\n',
    },
    queues: { default: 'enabled: true\n' },
  });
  mkdirSync(path.join(daemon.etc, 'controllers'));
  mkdirSync(path.join(daemon.etc, 'hosts'));
  writeFileSync(
    path.join(daemon.etc, 'controllers', 'slurm.yaml'),
    JSON.stringify({
      driver: 'slurm',
      command_prefix: session.prefix,
      slurm_conf: session.env.SLURM_CONF,
      poll_interval: 0.5,
    }),
  );
  writeFileSync(
    path.join(daemon.etc, 'hosts', 'cluster.yaml'),
    JSON.stringify({ controller: 'slurm', max_jobs: MAX_JOBS }),
  );
  await daemon.start();
  try {
    const started = Date.now();
    if (asTask)
      daemon.drop('all.yaml', JSON.stringify({ type: 'nop', params: { n: { range: `1..${JOBS}` } } }));
    else for (let i = 0; i < JOBS; i++) daemon.drop(`j${i}.yaml`, '{type: nop}\n');
    await waitFor(() => daemon.finished() >= JOBS, {
      everyMs: 50,
      timeoutMs: JOBS * 1000,
      what: 'batchd jobs',
    });
    const elapsed = Date.now() - started;
    const failed = daemon.count('failed') + daemon.count('cancelled');
    if (failed > 0) throw new Error(`${failed} jobs did not succeed: ${daemon.lastProblem()}`);
    log(`  batchd made ${submissions(daemon)} Slurm submissions for ${JOBS} jobs`);
    return elapsed;
  } finally {
    await daemon.stop();
    if (profiling) logProfile(profDir);
  }
}

/** Where the profiled daemon's CPU went: its busiest functions and files. */
function logProfile(profDir) {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return log('  (no CPU profile written)');
  const p = summarizeProfile(path.join(profDir, file), 25);
  log(`  daemon CPU profile: busy ${p.busyMs} ms, idle ${p.idleMs} ms`);
  for (const f of p.functions)
    log(`    ${String(f.ms).padStart(6)} ms ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`);
  for (const f of p.files)
    log(`    ${String(f.ms).padStart(6)} ms ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`);
}

/** Distinct Slurm submissions behind the finished jobs (an array counted once). */
function submissions(daemon) {
  const done = path.join(daemon.spool, 'default', 'done');
  const ids = new Set();
  for (const shard of readdirSync(done))
    for (const id of readdirSync(path.join(done, shard))) {
      const state = JSON.parse(readFileSync(path.join(done, shard, id, 'state.yaml'), 'utf8'));
      const batchId = state.last?.batch?.id;
      if (typeof batchId === 'string') ids.add(batchId.split('_')[0]);
    }
  return ids.size;
}

const results = { direct: [], scripts: [], array: [], arrayScript: [], batchdJobs: [], batchdTask: [] };
try {
  for (let round = 1; round <= ROUNDS; round++) {
    if (ONLY !== 'task') {
      results.direct.push(await direct());
      log(`round ${round}: direct sbatch ${results.direct.at(-1)} ms`);
      results.scripts.push(await batchdScriptsDirect(round));
      log(`round ${round}: batchd's scripts, sbatch per job ${results.scripts.at(-1)} ms`);
      results.batchdJobs.push(await throughBatchd(round, false));
      log(`round ${round}: batchd, ${JOBS} job files ${results.batchdJobs.at(-1)} ms`);
    }
    results.array.push(await array());
    log(`round ${round}: one array ${results.array.at(-1)} ms`);
    if (ONLY !== 'jobs') {
      results.arrayScript.push(await arrayScriptDirect(round));
      log(`round ${round}: batchd's array scripts, sbatch'd directly ${results.arrayScript.at(-1)} ms`);
      results.batchdTask.push(await throughBatchd(round, true));
      log(`round ${round}: batchd, one task ${results.batchdTask.at(-1)} ms`);
    }
  }
} finally {
  await session.stop();
  rmSync(root, { recursive: true, force: true });
}
const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const rate = (ms) => `${((JOBS * 1000) / ms).toFixed(1)} jobs/s`;
console.log(`${JOBS} trivial jobs, Slurm 1 node 32 slots, batchd max_jobs ${MAX_JOBS}, median of ${ROUNDS}:`);
console.log(`  sbatch per job        ${m.direct} ms (${rate(m.direct)})`);
console.log(
  `  batchd, job files     ${m.batchdJobs} ms (${rate(m.batchdJobs)})  ${(m.batchdJobs / m.direct).toFixed(2)} × direct, ${(m.batchdJobs / m.array).toFixed(2)} × the array`,
);
console.log(
  `  batchd's script of a job alone, sbatch per job ${m.scripts} ms (${rate(m.scripts)})  ${(m.scripts / m.direct).toFixed(2)} × direct`,
);
console.log(`  sbatch --array        ${m.array} ms (${rate(m.array)})`);
console.log(
  `  batchd's array scripts, sbatch'd directly (floor) ${m.arrayScript} ms (${rate(m.arrayScript)})  ${(m.arrayScript / m.array).toFixed(2)} × the array; batchd ${(m.batchdTask / m.arrayScript).toFixed(2)} × this`,
);
console.log(
  `  batchd, one task      ${m.batchdTask} ms (${rate(m.batchdTask)})  ${(m.batchdTask / m.array).toFixed(2)} × the array, ${(m.batchdTask / m.direct).toFixed(2)} × direct`,
);
