import { existsSync } from 'node:fs';

import { BatchdError } from '../errors.ts';
import { passwordSchema } from '../protocol/auth.ts';
import { nameSchema } from '../protocol/common.ts';
import { UserStore } from './store.ts';

/**
 * `batchd admin create-superuser [NAME]` and `batchd admin passwd [NAME]`: they work on
 * `<config>/users.yaml` directly (a running daemon picks the change up), so the first superuser
 * can be made before anyone can log in.
 */
export async function adminCommand(
  verb: 'create-superuser' | 'passwd',
  name: string,
  configDir: string | undefined,
  readPassword: () => Promise<string>,
): Promise<string> {
  if (configDir === undefined) {
    throw new BatchdError(
      'CONFIG_INVALID',
      'No config folder found: pass --config DIR (or set $BATCHD_CONFIG); users are kept in <config>/users.yaml',
    );
  }
  if (!existsSync(configDir))
    throw new BatchdError('CONFIG_INVALID', `The config folder ${configDir} does not exist`, {
      file: configDir,
    });
  const checkedName = nameSchema.safeParse(name);
  if (!checkedName.success)
    throw new BatchdError(
      'NAME_INVALID',
      `Invalid user name ${JSON.stringify(name)}: ${checkedName.error.issues[0]?.message ?? ''}`,
    );
  const store = UserStore.forConfigDir(configDir);
  const exists = store.has(name);
  if (verb === 'create-superuser' && exists)
    throw new BatchdError(
      'ALREADY_EXISTS',
      `User "${name}" already exists; use \`batchd admin passwd ${name}\``,
    );
  if (verb === 'passwd' && !exists)
    throw new BatchdError(
      'UNKNOWN_USER',
      `Unknown user "${name}"; create it with \`batchd admin create-superuser ${name}\` or over the API`,
    );
  const password = await readPassword();
  const checked = passwordSchema.safeParse(password);
  if (!checked.success)
    throw new BatchdError('ENTITY_INVALID', checked.error.issues[0]?.message ?? 'Invalid password');
  if (verb === 'create-superuser') {
    await store.addUser(name, password, { superuser: true });
    return `superuser "${name}" created in ${store.file}`;
  }
  await store.setPassword(name, password);
  return `password of "${name}" changed in ${store.file}`;
}

/** The password from a terminal (asked twice, not echoed), or the first line of stdin when it is not one. */
export async function readPasswordFrom(
  stdin: NodeJS.ReadStream,
  stderr: NodeJS.WriteStream,
  fromStdin = false,
): Promise<string> {
  if (fromStdin || !stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trimEnd();
  }
  const first = await askHidden(stdin, stderr, 'Password: ');
  const second = await askHidden(stdin, stderr, 'Password again: ');
  if (first !== second) throw new BatchdError('ENTITY_INVALID', 'The two passwords differ');
  return first;
}

function askHidden(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream, prompt: string): Promise<string> {
  stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
      if (error === undefined) resolve(typed);
      else reject(error);
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new BatchdError('CONFLICT', 'Interrupted'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
