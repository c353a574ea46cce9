import { isatty } from 'node:tty';

import { EXIT, OperationFailed } from './exit-codes.ts';

/**
 * Whether a person can be asked: both ends are terminals. Asked of the descriptors: reading
 * `process.stdin` would open a stream on it, work every verb without a password would pay for.
 */
export function canPrompt(): boolean {
  return isatty(0) && isatty(2);
}

/** Read a secret from the terminal without echoing it. The prompt goes to stderr. */
export function promptSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the prompt shows: whatever is typed (or pasted) after it is never echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (error?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (error === undefined) resolve(value);
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish();
        if (char === '\u0003')
          return finish(new OperationFailed('cancelled at the password prompt', EXIT.interrupted));
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else if (char >= ' ') value += char;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}

export async function promptNewPassword(what: string): Promise<string> {
  const first = await promptSecret(`New password for ${what}: `);
  const second = await promptSecret('Again: ');
  if (first !== second)
    throw new OperationFailed('the two passwords differ; nothing was changed', EXIT.invalid);
  if (first === '')
    throw new OperationFailed('an empty password is not allowed; nothing was changed', EXIT.invalid);
  return first;
}
