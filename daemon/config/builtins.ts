import type { JobType, Schedule } from './schema.ts';

/** `command: make test` alone is a job: its one parameter is the shell code to run. */
export const COMMAND_TYPE: JobType = {
  name: 'command',
  title: 'Shell command',
  template: '$command',
  syntax: 'Shell',
  params: [{ name: 'command', type: 'Script', title: 'Command' }],
  on_fail: 'continue',
  environment: {},
};

/** Always open: the default schedule of every queue. */
export const ANYTIME_SCHEDULE: Schedule = { name: 'anytime' };
