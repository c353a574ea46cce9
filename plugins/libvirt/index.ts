import { defineProvider } from '../../daemon/plugins/api.ts';
import { libvirtConfig, libvirtHost } from './config.ts';
import { LibvirtProvider } from './provider.ts';

/** batchd's `driver: libvirt`: hosts that are libvirt domains (see README.md). */
export default defineProvider({
  kind: 'provider',
  drivers: ['libvirt'],
  config: libvirtConfig,
  host: libvirtHost.optional(),
  create: (config, context) => new LibvirtProvider(config, context),
});
