import { BatchdError, type BatchSystemContext, type BatchSystemPlugin } from '../../daemon/plugins/api.ts';
import { SlurmClient } from './client.ts';
import { slurmRunner } from './command.ts';
import { slurmConfig, type SlurmConfig } from './config.ts';

export { SlurmClient } from './client.ts';
export type { OwnedSlurmJob, SubmitArray, SubmitJob } from './client.ts';
export type { SlurmResources, SlurmScript } from './script.ts';
export type { SlurmStatus } from './status.ts';
export { slurmConfig, type SlurmConfig } from './config.ts';

/**
 * Slurm as a batch system: batchd hands jobs to `sbatch` and follows them with one `squeue` for
 * all of them. A host whose controller file says `driver: slurm` runs its jobs this way.
 */
const slurmPlugin = {
  kind: 'batch-system',
  drivers: ['slurm'],
  config: slurmConfig,
  /** `name`: the controller's; `spool`: this spool's id, carried in every job's comment. */
  create(config: SlurmConfig, context: Pick<BatchSystemContext, 'name' | 'spool' | 'run'>): SlurmClient {
    if (!/^\S+$/.test(context.spool))
      throw new BatchdError(
        'PLUGIN_INVALID',
        `a spool id without spaces is needed, got ${JSON.stringify(context.spool)}`,
        { controller: context.name },
      );
    return new SlurmClient(
      slurmRunner(config, context.name, context.run),
      config,
      context.name,
      context.spool,
    );
  },
} as const satisfies BatchSystemPlugin<SlurmConfig>;

export default slurmPlugin;
