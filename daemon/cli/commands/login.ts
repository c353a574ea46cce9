import type { Command } from 'commander';

import { ApiError } from '../../client/errors.ts';
import { act } from '../command.ts';
import { EXIT, OperationFailed } from '../exit-codes.ts';
import { printFields, printJson, printTable, shortTime } from '../output.ts';
import { canPrompt, promptSecret } from '../prompt.ts';
import type { Session } from '../session.ts';

interface LoginOptions {
  ttl?: string;
  name?: string;
  passwordStdin?: boolean;
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .summary('get a token and keep it for later commands')
    .description(
      'Get an expiring API token with your password and keep it in ~/.config/batchd/token (mode 0600); later commands to this server use it. The token itself is never printed.',
    )
    .option('--ttl <duration>', 'how long the token lives: 3600, 90m, 7d (the server caps it)')
    .option('--name <name>', "a label for the token (shown by the server's token list)")
    .option('--password-stdin', 'read the password from the first line of stdin')
    .addHelpText(
      'after',
      '\nExamples:\n  batch login -U alice\n  printf \'%s\\n\' "$PW" | batch login -U ci --password-stdin --ttl 1h\n',
    )
    .action(act(login));
  program
    .command('logout')
    .summary('revoke and forget the saved token')
    .description('Revoke the token saved by `batch login` for this server and forget it.')
    .action(act(logout));
  program
    .command('whoami')
    .summary('who the server takes you for')
    .description('Who the server takes you for, how you were authenticated, and your permissions.')
    .action(act(whoami));
}

async function login(session: Session, _args: string[], options: LoginOptions): Promise<void> {
  const { config } = session;
  const client = session.anonymousClient();
  const methods = await client.authMethods();
  if (methods.length === 0) {
    session.out.note(`batch: ${config.manager_url} has authentication disabled; no login needed`);
    if (session.out.json) printJson(session.out, { user_name: null, expires_at: null });
    return;
  }
  if (!methods.includes('token')) {
    throw new OperationFailed(
      `${config.manager_url} does not issue tokens (it offers: ${methods.join(', ')}); use -U/-P or BATCH_USERNAME/BATCH_PASSWORD instead`,
      EXIT.auth,
    );
  }
  const password = await loginPassword(session, options.passwordStdin === true);
  client.transport.auth = { kind: 'basic', username: config.username, password };
  const request: { ttl?: string; name?: string } = {};
  if (options.ttl !== undefined) request.ttl = options.ttl;
  request.name = options.name ?? `batch CLI`;
  let created;
  try {
    created = await client.createToken(request);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      throw new OperationFailed(
        `login refused for ${config.username} at ${config.manager_url}: ${error.message} — check the user name (-U) and the password`,
        EXIT.auth,
      );
    }
    throw error;
  }
  session.tokens.set(config.manager_url, {
    token: created.token,
    id: created.id,
    expires_at: created.expires_at,
  });
  if (session.out.json)
    return printJson(session.out, {
      user_name: created.user_name,
      id: created.id,
      expires_at: created.expires_at,
      file: session.tokens.file,
    });
  session.out.write(
    `logged in to ${config.manager_url} as ${created.user_name}; the token expires ${shortTime(created.expires_at)} (kept in ${session.tokens.file})`,
  );
}

async function loginPassword(session: Session, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  if (session.config.password !== undefined) return session.config.password;
  if (canPrompt())
    return promptSecret(`Password for ${session.config.username} at ${session.config.manager_url}: `);
  throw new OperationFailed(
    'login needs a password: run it on a terminal, or use --password-stdin, BATCH_PASSWORD or -P',
    EXIT.auth,
  );
}

async function logout(session: Session): Promise<void> {
  const url = session.config.manager_url;
  const entry = session.tokens.entry(url);
  if (entry === undefined) {
    session.out.note(`batch: no saved token for ${url}`);
    if (session.out.json) printJson(session.out, { revoked: false, forgotten: false });
    return;
  }
  let revoked = false;
  if (entry.id !== undefined) {
    const client = session.anonymousClient();
    client.transport.auth = { kind: 'bearer', token: entry.token };
    try {
      await client.deleteToken(entry.id);
      revoked = true;
    } catch (error) {
      session.out.note(
        `batch: the server did not revoke the token (${error instanceof Error ? error.message : String(error)}); forgetting it anyway`,
      );
    }
  }
  session.tokens.remove(url);
  if (session.out.json) return printJson(session.out, { revoked, forgotten: true });
  session.out.write(`logged out of ${url}: token ${revoked ? 'revoked and ' : ''}forgotten`);
}

async function whoami(session: Session): Promise<void> {
  const me = await (await session.client()).whoami();
  if (session.out.json) return printJson(session.out, me);
  printFields(session.out, [
    ['user', me.name],
    ['superuser', me.superuser ? 'yes' : 'no'],
    ['via', me.via],
    ['server', session.config.manager_url],
  ]);
  if (me.grants.length > 0) {
    session.out.write('');
    printTable(
      session.out,
      ['id', 'permission', 'queue', 'type', 'host'],
      me.grants.map((g) => [g.id, g.permission, g.queue_name ?? '*', g.type_name ?? '*', g.host_name ?? '*']),
    );
  }
}
