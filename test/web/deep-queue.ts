import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { newJobId, shardOf } from '../../daemon/jobs/id.ts';
import type { JobSpec } from '../../daemon/jobs/spec.ts';
import type { JobStateName } from '../../daemon/jobs/status.ts';
import { initialState } from '../../daemon/spool/accept.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import {
  JOB_FILE,
  type JobState,
  serializeSpec,
  serializeState,
  STATE_FILE,
} from '../../daemon/spool/state-file.ts';

/** A job as written, with what each sort of the job list orders it by (GET /job's fields). */
export interface WrittenJob {
  id: string;
  queue: string;
  status: JobStateName;
  type: string;
  user: string | null;
  priority: number;
  started_at: string | null;
  ended_at: string | null;
}

const TYPES = ['render', 'echo', 'bake', 'encode'];
const USERS = ['ana', 'bo', 'chen', undefined];

/**
 * Job folders written straight into a queue's state folders, as acceptance and finished runs
 * leave them (job.yaml, state.yaml), without a daemon: thousands in a second or two. Their types,
 * owners (some none), priorities and times vary so that every sort has work to do; finished jobs
 * go into their day's shard. Each folder is made beside its state folder and renamed in, as a
 * dispatcher commits a job.
 */
export function writeJobs(
  spool: string,
  queue: string,
  counts: Partial<Record<'queued' | 'done' | 'failed', number>>,
  seed = 1,
): WrittenJob[] {
  const layout = new SpoolLayout(spool);
  // Beside the spool, on its file system: a rename from there is how a job appears whole.
  const staging = path.join(path.dirname(spool), `.fixture-${queue}`);
  mkdirSync(staging, { recursive: true });
  const jobs: WrittenJob[] = [];
  let n = seed * 100_003;
  const next = (mod: number): number => (n = (n * 1_103_515_245 + 12_345) % 2_147_483_648) % mod;
  // A few recent days: retention (storage.done_jobs) keeps them.
  const base = Math.floor(Date.now() / 86_400_000 - 5) * 86_400_000;
  for (const status of ['queued', 'done', 'failed'] as const) {
    for (let i = 0; i < (counts[status] ?? 0); i++) {
      const submitted = new Date(base + next(3) * 86_400_000 + jobs.length * 1000);
      const id = newJobId(`j${jobs.length}`, submitted);
      const user = USERS[next(USERS.length)];
      const spec: JobSpec = {
        id,
        queue,
        type: TYPES[next(TYPES.length)] as string,
        params: { n: i },
        priority: next(7) - 3,
        after: [],
        submitted_at: submitted.toISOString(),
        ...(user === undefined ? {} : { submitted_by: user }),
        source: { via: 'api' },
      };
      const state: JobState = { ...initialState(spec), state: status };
      let started: string | null = null;
      let ended: string | null = null;
      if (status !== 'queued') {
        started = new Date(submitted.getTime() + next(600) * 1000).toISOString();
        ended = new Date(Date.parse(started) + next(600) * 1000).toISOString();
        state.attempts = 1;
        state.last = {
          attempt: 1,
          outcome: status === 'done' ? 'success' : 'exit-code',
          exit_code: status === 'done' ? 0 : 1,
          started_at: started,
          ended_at: ended,
        };
        state.results = [state.last];
      }
      const dir = path.join(staging, id);
      mkdirSync(dir);
      writeFileSync(path.join(dir, JOB_FILE), serializeSpec(spec));
      writeFileSync(path.join(dir, STATE_FILE), serializeState(state));
      const folder =
        status === 'queued'
          ? layout.stateDir(queue, status)
          : path.join(layout.stateDir(queue, status), shardOf(id));
      mkdirSync(folder, { recursive: true });
      renameSync(dir, path.join(folder, id));
      jobs.push({
        id,
        queue,
        status,
        type: spec.type,
        user: user ?? null,
        priority: spec.priority,
        started_at: started,
        ended_at: ended,
      });
    }
  }
  return jobs;
}
