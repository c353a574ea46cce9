import { z } from 'zod';

import { jobIdSchema } from './job-id.ts';

/**
 * `POST /queue/:q`'s answer: the new jobs' ids, and the task's name when it made one. A module of
 * its own, so that `batch enqueue` builds this schema alone to check its one answer (on-demand.ts).
 */
export const submitResponseSchema = z.object({
  jobs: z.array(jobIdSchema),
  task: z.string().optional(),
});
export type SubmitResponse = z.infer<typeof submitResponseSchema>;
