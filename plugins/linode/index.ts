import { defineProvider } from '../../daemon/plugins/api.ts';
import { linodeConfig, linodeHostBlock } from './config.ts';
import { LinodeProvider } from './provider.ts';

/** Linodes as batchd hosts (batchd's `linode` driver). See README.md. */
export default defineProvider({
  kind: 'provider',
  drivers: ['linode'],
  config: linodeConfig,
  host: linodeHostBlock.optional(),
  create: (config, ctx) => new LinodeProvider(config, ctx),
});
