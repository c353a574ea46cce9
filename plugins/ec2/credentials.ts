import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import { fromIni } from '@aws-sdk/credential-provider-ini';

import type { Ec2Credentials } from './config.ts';

/**
 * The client's `credentials` for batchd's three forms; undefined leaves the SDK's default chain
 * (environment, shared files, instance role…), which is batchd's `discover`.
 */
export function credentialsFor(
  credentials: Ec2Credentials,
  resolve: (p: string) => string,
): EC2ClientConfig['credentials'] {
  if (credentials === 'discover') return undefined;
  if ('path' in credentials)
    return fromIni({ profile: credentials.profile, filepath: resolve(credentials.path) });
  return {
    accessKeyId: credentials.access_key,
    secretAccessKey: credentials.secret_key,
    ...(credentials.session_token === undefined ? {} : { sessionToken: credentials.session_token }),
  };
}
