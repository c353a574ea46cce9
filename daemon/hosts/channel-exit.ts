import type { ClientChannel } from 'ssh2';

export interface ChannelExit {
  code: number | null;
  /** As Node names signals (SIGKILL), when the command was killed by one. */
  signal: string | null;
}

const exits = new WeakMap<ClientChannel, ChannelExit>();

/** ssh2's 'exit' arguments: a status, or null and the signal's name. */
function whenExits(channel: ClientChannel, listener: (exit: ChannelExit) => void): void {
  channel.once('exit', (code: number | null, signal?: string) =>
    listener({ code: code ?? null, signal: signal ?? null }),
  );
}

/** Record the channel's exit status when it comes: call as soon as the channel exists. */
export function keepExit(channel: ClientChannel): void {
  whenExits(channel, (exit) => exits.set(channel, exit));
}

/**
 * Call `listener` with the exit status of a channel from `Lease.exec` (which calls `keepExit`):
 * at once if it came already, else when it comes. ssh2 emits 'exit' once, as it parses the
 * packet, and a quick command's exit status can arrive in the same read as the reply to the exec
 * request: it is emitted before a caller that awaited the channel has had a chance to listen. (Output is not lost that way: a
 * channel is a stream, paused until it is read.)
 */
export function onChannelExit(channel: ClientChannel, listener: (exit: ChannelExit) => void): void {
  const known = exits.get(channel);
  if (known !== undefined) listener(known);
  else whenExits(channel, listener);
}
