import type { Command } from 'commander';

import { registerJobVerbs } from './control.ts';

/** `batch pause` and `batch resume`: freeze and thaw running jobs (the daemon's dispatch/pause.ts). */
export function registerPause(program: Command): void {
  registerJobVerbs(program, {
    pause: {
      summary: 'pause running jobs',
      description:
        'Pause running jobs: every process a job started is frozen and its timeout held; it stays running, shown as paused, until resumed. A queued job cannot be paused (disable its queue instead).',
      call: (client, id) => client.pause(id),
    },
    resume: {
      summary: 'resume paused jobs',
      description: 'Resume paused jobs; the time each was paused is added to its paused_seconds.',
      call: (client, id) => client.resume(id),
    },
  });
}
