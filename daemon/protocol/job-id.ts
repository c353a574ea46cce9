import { z } from 'zod';

/**
 * A job's id on the wire. A module of its own (re-exported by common.ts), so that `batch enqueue`
 * checks its answer without building the other shared schemas (submit.ts, on-demand.ts).
 */
export const jobIdSchema = z
  .string()
  .regex(
    /^\d{8}T\d{6}\.\d{3}Z-[a-z0-9]{6}(-[a-z0-9][a-z0-9-]{0,39})?$/,
    'Expected a job id such as 20261121T093000.123Z-k3f9qa',
  );
