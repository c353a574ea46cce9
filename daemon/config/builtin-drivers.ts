/** The plugins shipped in the repository's `plugins/` folder, by every `driver:` name they take. */
export const BUILTIN_PLUGINS: Readonly<Record<string, string>> = {
  docker: 'docker',
  libvirt: 'libvirt',
  awsec2: 'ec2',
  ec2: 'ec2',
  linode: 'linode',
  slurm: 'slurm',
  command: 'hook-command',
  webhook: 'hook-webhook',
};
