import {
  DescribeInstancesCommand,
  waitUntilInstanceRunning,
  waitUntilInstanceStopped,
  waitUntilInstanceTerminated,
  type EC2Client,
} from '@aws-sdk/client-ec2';

import type { BatchdError } from '../../daemon/plugins/api.ts';
import type { Ec2Config } from './config.ts';

const WAITERS = {
  running: waitUntilInstanceRunning,
  stopped: waitUntilInstanceStopped,
  terminated: waitUntilInstanceTerminated,
} as const;

export type WaitedState = keyof typeof WAITERS;

/**
 * The SDK's waiter for `state`, polling every `poll_interval` (doubling up to twice that) for at
 * most `wait_timeout`. A waiter that gives up is reported with the states the instances are in.
 */
export async function waitForState(
  client: EC2Client,
  config: Pick<Ec2Config, 'poll_interval' | 'wait_timeout'>,
  state: WaitedState,
  ids: string[],
  signal: AbortSignal,
  fail: (message: string) => BatchdError,
): Promise<void> {
  const minDelay = config.poll_interval;
  try {
    await WAITERS[state](
      {
        client,
        minDelay,
        maxDelay: minDelay * 2,
        maxWaitTime: Math.max(config.wait_timeout, minDelay * 2),
        abortSignal: signal,
      },
      { InstanceIds: ids },
    );
  } catch (error) {
    if (signal.aborted) throw error;
    throw fail(
      `instance ${ids.join(', ')} did not reach "${state}" within ${config.wait_timeout} s (now: ${await statesOf(client, ids)})`,
    );
  }
}

async function statesOf(client: EC2Client, ids: string[]): Promise<string> {
  try {
    const out = await client.send(new DescribeInstancesCommand({ InstanceIds: ids }));
    const instances = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
    return instances.map((i) => `${i.InstanceId ?? '?'} ${i.State?.Name ?? '?'}`).join(', ') || 'not found';
  } catch (error) {
    return `unknown: ${error instanceof Error ? error.name : 'error'}`;
  }
}
