import { z } from '../../daemon/plugins/api.ts';

export const LINODE_ACTIONS = ['boot_and_shutdown', 'create_and_delete'] as const;

/** `etc/controllers/<name>.yaml` with `driver: linode` (batchd's fields first). */
export const linodeConfig = z
  .object({
    /** A file holding the API token (its first word); read at each use, never logged. */
    token_file: z.string().min(1),
    actions: z.enum(LINODE_ACTIONS).default('boot_and_shutdown'),
    /** Where the API's `/v4/` and `/v4beta/` live: Linode's own by default. */
    base_url: z.url().default('https://api.linode.com'),
    /** SSH to the host file's `host_name` instead of the Linode's first public IPv4. */
    use_host_name: z.boolean().default(false),
    /** Seconds to wait for a Linode to run or to be offline (batchd waited 60 s for a new one). */
    wait_timeout: z.number().positive().default(60),
    /** Seconds between two looks at a Linode's status while waiting (batchd: 10). */
    poll_interval: z.number().positive().default(5),
  })
  .strict();

export type LinodeConfig = z.infer<typeof linodeConfig>;

/**
 * The host file's `linode:` block (batchd's), used by `actions: create_and_delete`. A host without
 * one (the daemon passes `{}`) can only be booted; a block that is there must be complete.
 */
export const linodeHostBlock = z
  .object({
    type: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    /** batchd's: the root password itself. Prefer `root_pass_file`. */
    root_password: z.string().min(1).optional(),
    /** A file holding the root password (its first line), relative to the config folder. */
    root_pass_file: z.string().min(1).optional(),
    stackscript_id: z.number().int().positive().optional(),
    stackscript_data: z.record(z.string(), z.string()).optional(),
    /** Public key files to authorize for root, besides the host file's `public_key`. */
    authorized_keys: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .superRefine((block, ctx) => {
    if (Object.keys(block).length === 0) return;
    for (const field of ['type', 'image', 'region'] as const)
      if (block[field] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `Expected the Linode's ${field} (batchd's linode: block)`,
        });
    if (block.root_password === undefined && block.root_pass_file === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['root_pass_file'],
        message: 'Linode needs a root password to deploy an image: give root_pass_file (or root_password)',
      });
  });

export type LinodeHostBlock = z.infer<typeof linodeHostBlock>;

/** A block with everything creating a Linode needs (checked by the schema when present). */
export type CompleteHostBlock = LinodeHostBlock & { type: string; image: string; region: string };

export function isComplete(block: LinodeHostBlock | undefined): block is CompleteHostBlock {
  return block?.type !== undefined && block.image !== undefined && block.region !== undefined;
}
