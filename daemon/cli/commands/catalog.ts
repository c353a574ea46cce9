import type { Command } from 'commander';

import type { JobTypeInfo } from '../../protocol/index.ts';
import { act } from '../command.ts';
import { UsageError } from '../exit-codes.ts';
import { printFields, printJson, printTable } from '../output.ts';
import type { Session } from '../session.ts';

/** `type` and `host`: what the server is configured with (never read from local files). */
export function registerCatalog(program: Command): void {
  program
    .command('type')
    .summary("the server's job types and their parameters")
    .description(
      "The job types the server knows (all, or the ones named, with their parameters and command). A type's parameters are what `batch enqueue` fills in.",
    )
    .argument('[types...]', 'type names')
    .option('-q, --queue <queue>', 'only the types you may submit to this queue')
    .addHelpText('after', '\nExamples:\n  batch type\n  batch type report --json\n')
    .action(act(types));
  program
    .command('host')
    .summary("the server's hosts")
    .description('The hosts the server knows, with their last reported state.')
    .option(
      '-q, --queue <queue>',
      'the hosts you may use in this queue ("__default__" = the queue\'s default)',
    )
    .option('-t, --type <type>', 'with -q: the hosts you may use for jobs of this type there')
    .action(act(hosts));
}

async function types(session: Session, names: string[], options: { queue?: string }): Promise<void> {
  const client = await session.client();
  let list: JobTypeInfo[];
  if (names.length > 0) list = await Promise.all(names.map((n) => client.type(n)));
  else list = options.queue === undefined ? await client.types() : await client.queueTypes(options.queue);
  if (session.out.json) return printJson(session.out, list);
  if (names.length === 0) {
    if (list.length === 0) return session.out.note('no job types');
    return printTable(
      session.out,
      ['type', 'title', 'params', 'host', 'on fail'],
      list.map((t) => [
        t.name,
        t.title,
        t.params.map((p) => `${p.name}:${p.type}`).join(' '),
        t.host_name,
        onFail(t),
      ]),
    );
  }
  list.forEach((t, i) => {
    if (i > 0) session.out.write('');
    printFields(session.out, [
      ['type', t.name],
      ['title', t.title],
      ['command', t.template.join('\n         ')],
      ['host', t.host_name],
      ['on fail', onFail(t)],
      ['max jobs', t.max_jobs],
      ['timeout', t.timeout_ms === null ? null : `${t.timeout_ms / 1000} s`],
    ]);
    if (t.params.length > 0) {
      printTable(
        session.out,
        ['#', 'param', 'type', 'title', 'default', 'allowed'],
        t.params.map((p, n) => [
          n + 1,
          p.name,
          p.type,
          p.title,
          p.default,
          p.choices?.join(', ') ??
            [p.min === null ? '' : `≥ ${p.min}`, p.max === null ? '' : `≤ ${p.max}`]
              .filter((x) => x !== '')
              .join(' '),
        ]),
      );
    }
  });
}

function onFail(t: JobTypeInfo): string {
  return t.on_fail === 'continue' ? 'no retry' : `retry ${t.on_fail.retry.when} ×${t.on_fail.retry.count}`;
}

async function hosts(
  session: Session,
  _args: string[],
  options: { queue?: string; type?: string },
): Promise<void> {
  if (options.type !== undefined && options.queue === undefined)
    throw new UsageError('host --type goes with --queue');
  const client = await session.client();
  if (options.queue !== undefined) {
    const names =
      options.type === undefined
        ? await client.queueHosts(options.queue)
        : await client.queueTypeHosts(options.queue, options.type);
    if (session.out.json) return printJson(session.out, names);
    return session.out.write(names.join('\n'));
  }
  const list = await client.hosts();
  if (session.out.json) return printJson(session.out, list);
  if (list.length === 0) return session.out.note("no hosts configured: jobs run on the daemon's machine");
  printTable(
    session.out,
    ['host', 'state', 'jobs', 'controller', 'why'],
    list.map((h) => [h.name, h.state ?? '', String(h.jobs ?? 0), h.controller ?? '', h.reason ?? '']),
  );
}
