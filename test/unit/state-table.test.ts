import { describe, expect, it } from 'vitest';

import {
  FINISHED_STATES,
  isFinished,
  isJobStateName,
  isLegalTransition,
  JOB_STATES,
  type JobStateName,
} from '../../daemon/jobs/status.ts';

/** The whole table, written out independently of the module: every pair is checked. */
const LEGAL: Record<JobStateName, JobStateName[]> = {
  queued: ['queued', 'running', 'failed', 'cancelled'],
  running: ['queued', 'done', 'failed', 'cancelled'],
  done: [],
  failed: ['queued'],
  cancelled: ['queued'],
};

describe('the job state table', () => {
  const pairs = JOB_STATES.flatMap((from) => JOB_STATES.map((to) => [from, to] as const));

  it.each(pairs.filter(([from, to]) => LEGAL[from].includes(to)))('allows %s -> %s', (from, to) => {
    expect(isLegalTransition(from, to)).toBe(true);
  });

  it.each(pairs.filter(([from, to]) => !LEGAL[from].includes(to)))('refuses %s -> %s', (from, to) => {
    expect(isLegalTransition(from, to)).toBe(false);
  });

  it('has exactly the five folder states, three of them finished', () => {
    expect([...JOB_STATES].sort()).toEqual(['cancelled', 'done', 'failed', 'queued', 'running']);
    expect([...FINISHED_STATES].sort()).toEqual(['cancelled', 'done', 'failed']);
    expect(JOB_STATES.filter((s) => isFinished(s))).toEqual(['done', 'failed', 'cancelled']);
  });

  it('recognises state names and nothing else', () => {
    for (const s of JOB_STATES) expect(isJobStateName(s)).toBe(true);
    for (const s of ['incoming', 'rejected', 'Queued', '', 'tasks']) expect(isJobStateName(s)).toBe(false);
  });
});
