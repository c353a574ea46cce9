import type Docker from 'dockerode';

import { TAG, type OwnedHost, type ProviderHost } from '../../daemon/plugins/api.ts';
import { providerFailed, statusOf } from './client.ts';
import type { DockerConfig, DockerHost } from './config.ts';

/** A host's block of the host file, or the defaults when it has none. */
export function hostSettings(host: ProviderHost): Partial<DockerHost> {
  // Parsed by the `host` schema of index.ts; absent when the host file has no block.
  return host.settings ?? {};
}

export interface Target {
  /** The container's name on the engine. */
  container: string;
  /** The image to create it from when it does not exist; undefined: it must exist. */
  image: string | undefined;
}

/**
 * batchd's rule: the container is `controller_id`, else the host's name. A container made from an
 * image is `batchd-<host>` unless `controller_id` names it.
 */
export function target(config: DockerConfig, host: ProviderHost): Target {
  const image = hostSettings(host).image ?? config.image;
  if (image === undefined) return { container: host.id, image };
  return { container: host.controllerId ?? `batchd-${host.name}`, image };
}

type State = Docker.ContainerInspectInfo['State'];

/** Starts, stops and lists containers for one controller. */
export class Lifecycle {
  constructor(
    private readonly docker: Docker,
    private readonly config: DockerConfig,
    private readonly controller: string,
    private readonly spoolTags: Readonly<Record<string, string>>,
  ) {}

  /** Idempotent: running is left alone, paused is resumed, created/exited is started. */
  async start(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const { container, image } = target(this.config, host);
    let info = await this.#inspect(host.name, container, signal);
    if (info === undefined) {
      if (image === undefined)
        throw this.#failed(host.name, `starting container ${container}`, {
          json: { message: `No such container: ${container}` },
        });
      await this.#create(host, container, image, signal);
      info = await this.#inspect(host.name, container, signal);
      if (info === undefined)
        throw this.#failed(host.name, `creating container ${container}`, {
          message: 'it vanished once created',
        });
    }
    const c = this.docker.getContainer(container);
    const state = info.State;
    try {
      if (state.Paused) await c.unpause({ abortSignal: signal });
      else if (!state.Running) await c.start({ abortSignal: signal });
    } catch (error) {
      // 304: another dispatcher started it in between.
      if (statusOf(error) !== 304) throw this.#failed(host.name, `starting container ${container}`, error);
    }
    const after = await this.#inspect(host.name, container, signal);
    if (after === undefined || !after.State.Running || after.State.Paused)
      throw this.#failed(host.name, `starting container ${container}`, {
        message: `it is ${describe(after?.State)} (does its command keep running? see \`command\`)`,
      });
  }

  /** Idempotent: returns once the container is down, and removed when batchd created it. */
  async stop(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const { container } = target(this.config, host);
    const info = await this.#inspect(host.name, container, signal);
    if (info === undefined) return;
    await this.#down(host.name, container, info, signal);
  }

  /** Every container carrying this spool's label, running or not. */
  async owned(signal: AbortSignal): Promise<OwnedHost[]> {
    const filters = { label: Object.entries(this.spoolTags).map(([k, v]) => `${k}=${v}`) };
    let list: Docker.ContainerInfo[];
    try {
      list = await this.docker.listContainers({ all: true, filters, abortSignal: signal });
    } catch (error) {
      throw this.#failed(undefined, 'listing containers', error);
    }
    return list
      .filter((c) => Object.entries(this.spoolTags).every(([k, v]) => c.Labels[k] === v))
      .map((c) => ({
        id: c.Id,
        host: c.Labels[TAG.host],
        running: c.State === 'running' || c.State === 'paused',
        // What reaping deletes: with `remove_on_stop: never` it only stops, so a stopped one is left.
        created: c.Labels[TAG.created] === 'true' && this.config.remove_on_stop === 'created',
      }));
  }

  /** A leftover of a dead daemon: stopped, or removed when batchd created it. */
  async reap(leftover: OwnedHost, signal: AbortSignal): Promise<void> {
    const host = leftover.host ?? leftover.id;
    const info = await this.#inspect(host, leftover.id, signal);
    if (info === undefined) return;
    await this.#down(host, leftover.id, info, signal);
  }

  async #create(host: ProviderHost, container: string, image: string, signal: AbortSignal): Promise<void> {
    await this.#ensureImage(host, image, signal);
    const s = hostSettings(host);
    try {
      await this.docker.createContainer({
        name: container,
        Image: image,
        Cmd: typeof s.command === 'string' ? ['/bin/sh', '-c', s.command] : s.command,
        Env: Object.entries(s.env ?? {}).map(([k, v]) => `${k}=${v}`),
        User: s.user,
        WorkingDir: s.workdir,
        Labels: { ...s.labels, ...host.tags, [TAG.created]: 'true' },
        HostConfig: { Init: s.init ?? true, NetworkMode: s.network },
        abortSignal: signal,
      });
    } catch (error) {
      // 409: another dispatcher sharing the spool created it first; starting it is idempotent.
      if (statusOf(error) !== 409)
        throw this.#failed(host.name, `creating container ${container} from image ${image}`, error);
    }
  }

  async #ensureImage(host: ProviderHost, image: string, signal: AbortSignal): Promise<void> {
    try {
      // Image inspect takes no abort signal in dockerode; it is one quick local lookup.
      signal.throwIfAborted();
      await this.docker.getImage(image).inspect();
      return;
    } catch (error) {
      if (statusOf(error) !== 404) throw this.#failed(host.name, `looking up image ${image}`, error);
      if (this.config.pull === 'never')
        throw this.#failed(host.name, `creating a container from image ${image}`, {
          json: { message: `No such image: ${image} (pull: never)` },
        });
    }
    try {
      const progress = await this.docker.pull(image, { abortSignal: signal });
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(progress, (error: Error | null) =>
          error === null ? resolve() : reject(error),
        ),
      );
    } catch (error) {
      throw this.#failed(host.name, `pulling image ${image}`, error);
    }
  }

  async #down(
    host: string,
    container: string,
    info: Docker.ContainerInspectInfo,
    signal: AbortSignal,
  ): Promise<void> {
    const c = this.docker.getContainer(container);
    const labels = info.Config.Labels ?? {};
    const ours =
      labels[TAG.created] === 'true' && Object.entries(this.spoolTags).every(([k, v]) => labels[k] === v);
    try {
      if (ours && this.config.remove_on_stop === 'created') {
        await c.remove({ force: true, abortSignal: signal });
        return;
      }
      if (info.State.Running || info.State.Paused || info.State.Restarting)
        await c.stop({ t: this.config.stop_timeout, abortSignal: signal });
    } catch (error) {
      // 304: already stopped; 404: already gone; 409: its removal is under way.
      const status = statusOf(error);
      if (status !== 304 && status !== 404 && status !== 409)
        throw this.#failed(host, `stopping container ${container}`, error);
    }
  }

  async #inspect(
    host: string,
    container: string,
    signal: AbortSignal,
  ): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(container).inspect({ abortSignal: signal });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.#failed(host, `looking up container ${container}`, error);
    }
  }

  /** An abort stays an abort; anything else is the provider's failure. */
  #failed(host: string | undefined, tried: string, error: unknown): Error {
    if (error instanceof Error && error.name === 'AbortError') return error;
    return providerFailed(this.controller, host, tried, error);
  }
}

function describe(state: State | undefined): string {
  if (state === undefined) return 'gone';
  if (state.Paused) return 'paused';
  return state.Running ? 'running' : `${state.Status} with exit code ${state.ExitCode}`;
}
