import { defineProvider, type HostProvider } from '../../daemon/plugins/api.ts';
import { dockerClient } from './client.ts';
import { dockerConfig, dockerHost } from './config.ts';
import { Lifecycle } from './lifecycle.ts';
import { DockerShell } from './shell.ts';

/**
 * Docker hosts: a container started (or created from an image) on demand, jobs run in it by
 * Docker exec, files copied with the archive API. See README.md.
 */
export default defineProvider({
  kind: 'provider',
  drivers: ['docker'],
  config: dockerConfig,
  host: dockerHost,
  create(config, ctx): HostProvider {
    const docker = dockerClient(config);
    const lifecycle = new Lifecycle(docker, config, ctx.name, ctx.tags);
    return {
      name: 'docker',
      start: (host, signal) => lifecycle.start(host, signal),
      stop: (host, signal) => lifecycle.stop(host, signal),
      owned: (signal) => lifecycle.owned(signal),
      reap: (leftover, signal) => lifecycle.reap(leftover, signal),
      shell: new DockerShell(docker, config, ctx.name),
      // dockerode keeps no connection open between calls: nothing to release.
      close: () => Promise.resolve(),
    };
  },
});
