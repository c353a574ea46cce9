import { defineProvider } from '../../daemon/plugins/api.ts';
import { ec2Config, ec2HostBlock } from './config.ts';
import { Ec2Provider } from './provider.ts';

/** EC2 instances as batchd hosts (batchd's `awsec2` driver). See README.md. */
export default defineProvider({
  kind: 'provider',
  drivers: ['awsec2', 'ec2'],
  config: ec2Config,
  host: ec2HostBlock.optional(),
  create: (config, ctx) => new Ec2Provider(config, ctx),
});
