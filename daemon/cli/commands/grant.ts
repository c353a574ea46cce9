import type { Command } from 'commander';

import type { GrantCreate, Permission } from '../../protocol/index.ts';
import { act, parseInteger, pickMode } from '../command.ts';
import { UsageError } from '../exit-codes.ts';
import { printJson, printTable } from '../output.ts';
import type { Session } from '../session.ts';

interface GrantOptions {
  view?: boolean;
  add?: boolean;
  delete?: boolean;
  id?: number;
  permission?: string;
  queue?: string;
  type?: string;
  host?: string;
}

export function registerGrant(program: Command): void {
  program
    .command('grant')
    .summary("list, grant or revoke a user's permissions")
    .description("A user's permissions: list (default), add one (-a -p PERMISSION) or revoke one (-d -i ID).")
    .argument('<user>', 'user name')
    .option('-v, --view', 'list the permissions (default)')
    .option('-a, --add', 'grant a permission')
    .option('-d, --delete', 'revoke the permission with --id')
    .option('-i, --id <id>', 'the permission to revoke (see the list)', parseInteger('--id'))
    // Written out rather than taken from protocol/: loading it for the help text would load every schema.
    .option(
      '-p, --permission <permission>',
      'SuperUser, CreateJobs, ViewJobs, ManageJobs, ViewQueues, ManageQueues, ViewSchedules or ManageSchedules',
    )
    .option('-q, --queue <queue>', 'only in this queue (default: every queue)')
    .option('-t, --type <type>', 'CreateJobs only: only jobs of this type')
    .option('-h, --host <host>', 'CreateJobs only: only on this host; __default__ = jobs that name no host')
    .addHelpText(
      'after',
      '\nExamples:\n  batch grant alice -a -p CreateJobs -q renders -t blender\n  batch grant alice\n  batch grant alice -d -i 3\n',
    )
    .action(act(grant));
}

async function grant(session: Session, [user = '']: string[], options: GrantOptions): Promise<void> {
  const mode = pickMode(options, ['view', 'add', 'delete'] as const, 'view', 'grant');
  const scoped =
    options.permission !== undefined ||
    options.queue !== undefined ||
    options.type !== undefined ||
    options.host !== undefined;
  if (mode !== 'add' && scoped)
    throw new UsageError('grant: --permission, --queue, --type and --host go with --add');
  if (mode !== 'delete' && options.id !== undefined) throw new UsageError('grant --id goes with --delete');
  const client = await session.client();
  const { PERMISSIONS } = await import('../../protocol/index.ts');
  if (mode === 'add') {
    if (options.permission === undefined)
      throw new UsageError(`grant -a: give -p PERMISSION (${PERMISSIONS.join(', ')})`);
    const request: GrantCreate = { permission: parsePermission(options.permission, PERMISSIONS) };
    if (options.queue !== undefined) request.queue_name = options.queue;
    if (options.type !== undefined) request.type_name = options.type;
    if (options.host !== undefined) request.host_name = options.host;
    const { id } = await client.grant(user, request);
    if (session.out.json) return printJson(session.out, { id, user_name: user, ...request });
    return session.out.write(String(id));
  }
  if (mode === 'delete') {
    if (options.id === undefined)
      throw new UsageError('grant -d: give -i ID (batch grant USER lists the ids)');
    await client.revoke(user, options.id);
    if (session.out.json) return printJson(session.out, { revoked: options.id, user_name: user });
    return session.out.write(`permission ${options.id} of ${user} revoked`);
  }
  const grants = await client.permissions(user);
  if (session.out.json) return printJson(session.out, grants);
  if (grants.length === 0) return session.out.note(`${user} has no permissions`);
  printTable(
    session.out,
    ['id', 'permission', 'queue', 'type', 'host'],
    grants.map((g) => [g.id, g.permission, g.queue_name ?? '*', g.type_name ?? '*', g.host_name ?? '*']),
  );
}

function parsePermission(text: string, PERMISSIONS: readonly Permission[]): Permission {
  const found = PERMISSIONS.find((p) => p.toLowerCase() === text.toLowerCase());
  if (found === undefined)
    throw new UsageError(`grant -p: expected one of ${PERMISSIONS.join(', ')}, got ${JSON.stringify(text)}`);
  return found;
}
