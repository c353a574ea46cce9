import type { Command } from 'commander';

import { act, pickMode } from '../command.ts';
import { EXIT, OperationFailed, UsageError } from '../exit-codes.ts';
import { printJson, printTable } from '../output.ts';
import { canPrompt, promptNewPassword } from '../prompt.ts';
import type { Session } from '../session.ts';

interface UserOptions {
  view?: boolean;
  add?: boolean;
  update?: boolean;
}

export function registerUser(program: Command): void {
  program
    .command('user')
    .summary('list users, add one, change a password')
    .description(
      'List users (default), add one (-a) or change a password (-u; default: your own). The new password is asked twice on a terminal, else read from the first line of stdin.',
    )
    .argument('[name]', 'user name')
    .option('-v, --view', 'list users (default)')
    .option('-a, --add', 'create a user')
    .option('-u, --update', 'change the password')
    .addHelpText(
      'after',
      '\nExamples:\n  batch user\n  batch user alice -a\n  printf \'%s\\n\' "$NEW_PASSWORD" | batch user -u\n',
    )
    .action(act(user));
}

async function user(session: Session, [name]: string[], options: UserOptions): Promise<void> {
  const mode = pickMode(options, ['view', 'add', 'update'] as const, 'view', 'user');
  const client = await session.client();
  if (mode === 'view') {
    const users = await client.users();
    const shown = name === undefined ? users : users.filter((u) => u.name === name);
    if (name !== undefined && shown.length === 0)
      throw new OperationFailed(`no user ${JSON.stringify(name)} (batch user shows them all)`, EXIT.notFound);
    if (session.out.json) return printJson(session.out, shown);
    return printTable(
      session.out,
      ['user', 'superuser'],
      shown.map((u) => [u.name, u.superuser ? 'yes' : '']),
    );
  }
  if (mode === 'add' && name === undefined) throw new UsageError('user -a: name the user to create');
  const target = name ?? (await client.whoami()).name;
  const password = await newPassword(target);
  if (mode === 'add') await client.createUser(target, password);
  else await client.setPassword(target, password);
  const what = mode === 'add' ? 'created' : 'password changed';
  if (session.out.json)
    return printJson(session.out, { user: target, result: mode === 'add' ? 'created' : 'password_changed' });
  session.out.write(`user ${target} ${what}`);
}

async function newPassword(user: string): Promise<string> {
  if (canPrompt()) return promptNewPassword(user);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line === '') throw new UsageError('user: no new password on stdin (on a terminal it is asked for)');
  return line;
}
