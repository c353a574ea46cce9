import type { Command } from 'commander';

import type { Stats } from '../../protocol/index.ts';
import { act } from '../command.ts';
import { printJson, printTable } from '../output.ts';
import type { Session } from '../session.ts';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .summary('job counts per queue')
    .description('Job counts by state, per queue (all queues, or the ones named).')
    .argument('[queues...]', 'queue names')
    .addHelpText('after', '\nExamples:\n  batch stats\n  batch stats renders --json\n')
    .action(act(stats));
}

async function stats(session: Session, queues: string[]): Promise<void> {
  const client = await session.client();
  // Asked alongside the counts; a daemon without it (an older one) just says nothing.
  const health = client.health().catch(() => undefined);
  const all: Stats = {};
  if (queues.length === 0) Object.assign(all, await client.stats());
  for (const queue of queues) Object.assign(all, await client.stats(queue));
  if (session.out.json) return printJson(session.out, all);
  const containment = (await health)?.containment;
  if (containment !== undefined) session.out.note(`local jobs contained by ${containment.description}`);
  const rows = Object.entries(all);
  if (rows.length === 0) return session.out.note('no queues');
  printTable(
    session.out,
    ['queue', 'queued', 'running', 'done', 'failed', 'cancelled'],
    rows.map(([q, c]) => [q, c.queued, c.running, c.done, c.failed, c.cancelled]),
  );
}
