import { z } from '../../daemon/plugins/api.ts';

/** `etc/controllers/<name>.yaml` with `driver: docker`: batchd's fields and ours. */
export const dockerConfig = z
  .object({
    /** batchd's: the engine's socket. Default: `DOCKER_HOST`, else /var/run/docker.sock. */
    unix_socket: z.string().min(1).optional(),
    /** batchd's: the engine's API address, e.g. http://127.0.0.1:2375 (or tcp://). */
    base_url: z
      .string()
      .regex(/^(https?|tcp):\/\/[^\s/]+\/?$/, 'Expected an address such as http://127.0.0.1:2375')
      .optional(),
    /** The image a host's container is created from when its host block names none. */
    image: z.string().min(1).optional(),
    /** `created`: a container batchd created is removed when stopped; `never`: kept for next time. */
    remove_on_stop: z.enum(['created', 'never']).default('created'),
    /** Images not on the engine: `missing` pulls them, `never` fails the start. */
    pull: z.enum(['missing', 'never']).default('missing'),
    /** Seconds `docker stop` waits after SIGTERM before SIGKILL. */
    stop_timeout: z.int().min(0).max(3600).default(10),
  })
  .strict();
export type DockerConfig = z.output<typeof dockerConfig>;

const command = z.union([z.string().min(1), z.array(z.string()).min(1)]);

/** A host file's `docker:` (or `<controller>:`) block: how its container is made and entered. */
export const dockerHost = z
  .object({
    /** Create the container from this image (named `batchd-<host>`, or `controller_id`). */
    image: z.string().min(1).optional(),
    /** What keeps a created container running; default: the image's own command. */
    command: command.optional(),
    /** Environment of a created container and of every command run in it. */
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
        z.union([z.string(), z.number(), z.boolean()]).transform(String),
      )
      .default({}),
    /** User (name or uid[:gid]) that commands run as; also a created container's user. */
    user: z.string().min(1).optional(),
    /** Folder commands start in; also a created container's working folder. */
    workdir: z.string().startsWith('/', 'Expected an absolute path').optional(),
    /** A created container's network: `none`, `host`, `bridge` or a network's name. */
    network: z.string().min(1).optional(),
    /** A created container runs an init (docker-init) as PID 1, so it stops on SIGTERM at once. */
    init: z.boolean().default(true),
    /** More labels for a created container. */
    labels: z.record(z.string(), z.string()).default({}),
  })
  .strict();
export type DockerHost = z.output<typeof dockerHost>;
