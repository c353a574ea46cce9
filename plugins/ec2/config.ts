import { z } from '../../daemon/plugins/api.ts';
import { REGION_NAMES, regionCode } from './regions.ts';

const region = z.string().transform((name, ctx) => {
  const code = regionCode(name);
  if (code !== undefined) return code;
  ctx.addIssue({
    code: 'custom',
    message: `Expected an AWS region code (us-east-1) or one of batchd's region names (${REGION_NAMES.slice(0, 6).join(', ')}, …), got "${name}"`,
  });
  return z.NEVER;
});

/** batchd's three forms: the SDK's default chain, a shared credentials file, or keys in the file. */
const credentials = z.union(
  [
    z.literal('discover'),
    z.object({ path: z.string().min(1), profile: z.string().min(1).default('default') }).strict(),
    z
      .object({
        access_key: z.string().min(1),
        secret_key: z.string().min(1),
        session_token: z.string().min(1).optional(),
      })
      .strict(),
  ],
  { error: 'Expected "discover", {path, profile} (a shared credentials file) or {access_key, secret_key}' },
);

export type Ec2Credentials = z.infer<typeof credentials>;

/** `etc/controllers/<name>.yaml` with `driver: awsec2` (or `ec2`). */
export const ec2Config = z
  .object({
    region,
    credentials: credentials.default('discover'),
    /** Another EC2 endpoint (an emulator, a VPC endpoint); AWS's own by default. */
    endpoint: z.url().optional(),
    /** SSH to the host file's `host_name` instead of the instance's public DNS name or address. */
    use_host_name: z.boolean().default(false),
    /** Seconds to wait for an instance to reach running, stopped or terminated. */
    wait_timeout: z.number().positive().default(600),
    /** Seconds between two looks at an instance's state while waiting (AWS's waiters: 15). */
    poll_interval: z.number().positive().default(5),
  })
  .strict();

export type Ec2Config = z.infer<typeof ec2Config>;

export const EC2_ACTIONS = ['start_and_stop', 'create_and_delete'] as const;

/** The host file's `awsec2:` / `ec2:` block: how batchd gets an instance for this host. */
export const ec2HostBlock = z
  .object({
    /** Default: create_and_delete when an image or launch template is given, else start_and_stop. */
    actions: z.enum(EC2_ACTIONS).optional(),
    image_id: z.string().min(1).optional(),
    launch_template: z
      .union([
        z.string().min(1),
        z
          .object({
            id: z.string().min(1).optional(),
            name: z.string().min(1).optional(),
            version: z.string().optional(),
          })
          .strict(),
      ])
      .optional(),
    instance_type: z.string().min(1).optional(),
    key_name: z.string().min(1).optional(),
    security_group_ids: z.array(z.string().min(1)).optional(),
    subnet_id: z.string().min(1).optional(),
    /** Plain text; sent base64-encoded as EC2 requires. */
    user_data: z.string().optional(),
  })
  .strict()
  .transform((block, ctx) => {
    const fromImage = block.image_id !== undefined || block.launch_template !== undefined;
    const actions = block.actions ?? (fromImage ? 'create_and_delete' : 'start_and_stop');
    if (actions === 'create_and_delete' && !fromImage)
      ctx.addIssue({
        code: 'custom',
        path: ['image_id'],
        message: 'actions: create_and_delete needs image_id or launch_template',
      });
    if (actions === 'start_and_stop' && fromImage)
      ctx.addIssue({
        code: 'custom',
        path: ['actions'],
        message: 'image_id and launch_template are used only with actions: create_and_delete',
      });
    if (
      typeof block.launch_template === 'object' &&
      (block.launch_template.id === undefined) === (block.launch_template.name === undefined)
    )
      ctx.addIssue({
        code: 'custom',
        path: ['launch_template'],
        message: 'Expected a launch template id or name (one of them)',
      });
    return { ...block, actions };
  });

export type Ec2HostBlock = z.infer<typeof ec2HostBlock>;

export const START_AND_STOP: Ec2HostBlock = { actions: 'start_and_stop' };
