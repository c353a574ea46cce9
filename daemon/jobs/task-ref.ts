/**
 * A task-relative name for a job: `<task>/<n>` or `<task>#<n>`, where `<task>` is the task's name
 * (an unnamed task's name is its first job's id) and `<n>` the job's place in the task, counted
 * from 0 as `batch job` ("task render #3") and `batch task collect` ("#") show it. `<queue>/<task>/<n>`
 * picks the queue when tasks of one name live in several.
 */
const TASK_REF = /^(?:([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/)?([A-Za-z0-9][A-Za-z0-9_.-]{0,127})[/#](\d{1,9})$/;

export interface TaskRef {
  queue?: string | undefined;
  task: string;
  index: number;
}

export function parseTaskRef(text: string): TaskRef | undefined {
  const match = TASK_REF.exec(text.trim());
  if (match === null) return undefined;
  const [, queue, task = '', index = '0'] = match;
  return { queue, task, index: Number(index) };
}
