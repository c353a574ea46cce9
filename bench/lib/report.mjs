// The report: Markdown (printed and written) from the run's JSON.
import { describeProbe } from './fs-probe.mjs';
import { ratio } from './stats.mjs';
import { mib, ms, rate, s, x } from './targets.mjs';

function table(head, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c ?? '').replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function spread(sum, fmt) {
  if (sum === undefined || !Number.isFinite(sum.min)) return '';
  return sum.n > 1 ? `${fmt(sum.min)} – ${fmt(sum.max)}` : '(1 round)';
}

function status(r) {
  if (r.unavailable !== undefined) return `unavailable: ${r.unavailable}`;
  if (r.error !== undefined) return `failed: ${r.error}`;
  return undefined;
}

/** Rounds that failed while others of the same row gave figures: said under the table. */
function failureNotes(rows) {
  const notes = rows
    .filter((row) => row.failures !== undefined && row.error === undefined)
    .map(
      (row) =>
        `- ${row.label ?? row.name}: ${row.failures.length} failed round(s), left out of the figures: ${row.failures.join('; ')}`,
    );
  return notes.length > 0 ? ['', ...notes] : [];
}

const verdict = (met) => (met === true ? '**met**' : met === false ? '**not met**' : 'not measured');

function targets(report) {
  return [
    '## Targets (../shared/docs/TARGETS.md)',
    '',
    table(
      ['measure', 'target', 'this run', 'verdict'],
      report.targets.map((t) => [
        t.measure,
        t.target,
        t.met === null ? `– (${t.why})` : t.figure,
        verdict(t.met),
      ]),
    ),
  ];
}

function throughput(r) {
  const floor = r.rows.find((row) => row.name === 'floor-xargs')?.total?.median;
  const tsp = r.rows.find((row) => row.name === 'tsp')?.total?.median;
  return [
    `## ${r.n.toLocaleString('en')} × \`true\`, one submission per job, until all done (${r.rounds} round${r.rounds > 1 ? 's' : ''})`,
    '',
    'One client call per job from a bash loop (batchd: write `.jN.tmp`, `mv` it into `incoming/`); 2 jobs at a time where the',
    'tool allows it (nq runs one queue serially; `at now` starts every due job at once). Total = first submit → last job done;',
    '"drain" = after the loop returned. Median over rounds, spread = min – max.',
    '',
    table(
      ['tool', 'total (median)', 'spread', 'submit loop', 'drain', 'jobs/s', '× floor (xargs -P2)', '× tsp'],
      r.rows.map((row) => {
        const st = status(row);
        if (st !== undefined && !Number.isFinite(row.total?.median))
          return [row.label, st, '', '', '', '', '', ''];
        const m = row.total.median;
        return [
          row.label,
          s(m),
          spread(row.total, s),
          Number.isFinite(row.submit.median) ? s(row.submit.median) : '',
          Number.isFinite(row.drain.median) ? s(row.drain.median) : '',
          rate(r.n / (m / 1000)),
          x(ratio(m, floor)),
          x(ratio(m, tsp)),
        ];
      }),
    ),
    ...failureNotes(r.rows),
  ];
}

function latency(r) {
  const tsp = r.rows.find((row) => row.name === 'tsp')?.total?.p50;
  const rows = [];
  for (const row of r.rows) {
    const st = status(row);
    if (row.total === undefined) {
      rows.push([row.label, st ?? 'no samples', '', '', '', '', '', '']);
      continue;
    }
    const t = row.total;
    rows.push([
      row.label,
      ms(t.p50),
      ms(t.p90),
      ms(t.p99),
      ms(t.max),
      t.n,
      spread(row.roundP50, ms),
      x(ratio(t.p50, tsp)),
    ]);
    if (row.submit !== undefined) {
      const m = row.submit;
      rows.push([
        '└ the submit command alone (the `mv`)',
        ms(m.p50),
        ms(m.p90),
        ms(m.p99),
        ms(m.max),
        m.n,
        '',
        '',
      ]);
    }
    if (row.own !== undefined) {
      const o = row.own;
      rows.push([
        "└ batchd's own share (after `mv` returned → started)",
        ms(o.p50),
        ms(o.p90),
        ms(o.p99),
        ms(o.max),
        o.n,
        '',
        '',
      ]);
      if (Number.isFinite(row.ownNetP50)) {
        rows.push([
          "└ the same, less the stamp's own cost (floor p50): the daemon alone",
          ms(row.ownNetP50),
          '',
          '',
          '',
          '',
          '',
          '',
        ]);
      }
    }
  }
  const notes = r.rows.filter((row) => row.note !== undefined).map((row) => `${row.label}: ${row.note}.`);
  return [
    '## Submit → process start, idle scheduler',
    '',
    'Sequential jobs, each writing `date +%s%N` into a file; latency = that stamp − the time right before the submit command',
    `(bash \`$EPOCHREALTIME\`). ${r.perRound} samples per round (Slurm ${r.slurmPerRound}), 30 ms idle between samples.`,
    ...notes,
    'Slurm starts jobs on its scheduler tick, and this sequential loop locks onto it: its figures are the worst case.',
    '',
    table(['tool', 'p50', 'p90', 'p99', 'max', 'n', 'p50 per round', '× tsp p50'], rows),
    ...failureNotes(r.rows),
  ];
}

function acceptance(r) {
  return [
    `## Drops accepted per second (${r.n.toLocaleString('en')} files; durable: ${(r.nDurable ?? r.n).toLocaleString('en')})`,
    '',
    `The ${r.n.toLocaleString('en')} job files are prepared on the same file system, then renamed into \`incoming/\` in one burst;`,
    'rate = files / (first rename → all of them jobs in `queued/`). The queue is disabled, so nothing runs. The floors are the',
    'bare submit loop (write `.tmp`, rename) into a folder that nobody watches.',
    '',
    table(
      ['what', 'per second (median)', 'spread', 'burst of renames'],
      r.rows.map((row) => [
        row.label,
        status(row) ?? rate(row.perSecond.median),
        spread(row.perSecond, rate),
        row.burstPerSecond === undefined ? '' : rate(row.burstPerSecond.median),
      ]),
    ),
    ...failureNotes(r.rows),
  ];
}

function task(r) {
  const f = r.floor.total.median;
  const b = r.batchd;
  return [
    `## A ${r.n.toLocaleString('en')}-job task (one drop) until all done`,
    '',
    'One job file `type: bench-true, params: {n: {range: "1..N"}}` (template `true`), 2 workers, against `xargs -P2`',
    'running the same `true`s directly. The daemon had run one job before (its job launcher is up).',
    '',
    table(
      ['what', 'total (median)', 'spread', 'accepted after', 'first job started after', '× xargs -P2'],
      [
        [r.floor.label, s(f), spread(r.floor.total, s), '', '', '1.00 ×'],
        [
          b.label,
          b.error !== undefined && !Number.isFinite(b.total.median)
            ? `failed: ${b.error}`
            : s(b.total.median),
          spread(b.total, s),
          s(b.accepted?.median),
          s(b.firstStarted?.median),
          x(ratio(b.total.median, f)),
        ],
      ],
    ),
    '',
    `A ${(r.n * 10).toLocaleString('en')}-job task dropped into a disabled queue was accepted (its manifest committed) after ${s(b.bigAccepted?.median)}.`,
    ...failureNotes([b]),
  ];
}

function deep(r) {
  if (r.error !== undefined) return [`## Deep queue`, '', `failed: ${r.error}`];
  const n = r.n.toLocaleString('en');
  return [
    `## ${n} queued jobs`,
    '',
    `${n} job files dropped into a disabled queue and accepted, then the daemon restarted ${r.rounds} time(s) on that spool, each restart after a round of the floor.`,
    '',
    table(
      ['measure', 'median', 'spread'],
      [
        [`dropping and accepting ${n} job files`, `${r.acceptSeconds.toFixed(1)} s`, ''],
        ['start-up to "batchd ready", spawn included', s(r.startup.median), spread(r.startup, s)],
        ...(r.startupFloor === undefined
          ? []
          : [
              [
                '  floor: Node lists queued/, reads and parses every state.yaml',
                s(r.startupFloor.median),
                spread(r.startupFloor, s),
              ],
            ]),
        ['  for comparison: empty spool', s(r.emptyStartupMs), ''],
        ['  for comparison: `node -e 0`', s(r.nodeStartup.median), spread(r.nodeStartup, s)],
        ['daemon RSS 1 s after ready', mib(r.rss.median), spread(r.rss, mib)],
        ['daemon peak RSS (VmHWM) during start-up', mib(r.peakRss.median), spread(r.peakRss, mib)],
        ['  for comparison: RSS on an empty spool', mib(r.emptyRssMiB), ''],
        ['  RSS of the daemon that accepted them (before restart)', mib(r.rssAfterAcceptMiB), ''],
        [
          "daemon RSS once the job list's sort values are read",
          r.rssAfterSortValuesMiB === undefined ? '—' : mib(r.rssAfterSortValuesMiB),
          '',
        ],
        [
          `one page (50) of the listing: ${r.listing?.via ?? '–'}`,
          ms(r.listing?.ms?.median),
          spread(r.listing?.ms, ms),
        ],
        [`processes with ${n} queued (nothing running)`, r.processes ?? '–', ''],
      ],
    ),
  ];
}

function processes(r) {
  return [
    `## Processes while ${r.n.toLocaleString('en')} jobs wait`,
    '',
    'Every slot taken by a `sleep` blocker, then the jobs submitted behind it (at: `at now + 1 hour`; Slurm: `--begin=now+1hour`).',
    "Counted: every live process carrying the tool's environment tag (all it started), and their summed RSS.",
    '',
    table(
      ['tool', 'processes (blockers excluded)', 'running blockers', 'summed RSS', 'by command'],
      r.rows.map((row) => {
        const st = status(row);
        if (st !== undefined) return [row.label, st, '', '', ''];
        const by = Object.entries(row.commands)
          .sort((a, b) => b[1] - a[1])
          .map(([c, k]) => `${c} ${k}`)
          .join(', ');
        return [
          row.label,
          row.scheduler,
          row.runningJobs,
          mib(row.rssMiB),
          `${by}${row.note ? ` (${row.note})` : ''}`,
        ];
      }),
    ),
  ];
}

function http(r) {
  if (r.unavailable !== undefined || r.error !== undefined) return ['## HTTP (wrk)', '', status(r)];
  const rounds = r.rounds ?? 1;
  const spread = (w) => (rounds > 1 && w.min !== undefined ? ` (${rate(w.min)}–${rate(w.max)})` : '');
  return [
    `## HTTP (wrk -t2 -c16${rounds > 1 ? `, median of ${rounds} rounds taken in turn` : ''})`,
    '',
    r.note,
    '',
    table(
      ['request', 'per second', 'p50', 'p99', 'non-2xx'],
      [r.submissions, r.status, ...(r.floors ?? [])].map((w) =>
        w.error !== undefined
          ? [w.label, w.error, '', '', '']
          : [w.label, rate(w.perSecond) + spread(w), ms(w.p50ms), ms(w.p99ms), w.non2xx],
      ),
    ),
  ];
}

function profile(p) {
  if (p === undefined) return [];
  return [
    '## Where the daemon spends its CPU (task suite, node --cpu-prof, round 1)',
    '',
    `Busy ${p.busyMs} ms, idle ${p.idleMs} ms. Self time:`,
    '',
    table(
      ['function', 'ms', 'share of busy'],
      p.functions.slice(0, 15).map((f) => [f.name, f.ms, `${(f.share * 100).toFixed(1)} %`]),
    ),
    '',
    table(
      ['file', 'ms', 'share of busy'],
      p.files.slice(0, 10).map((f) => [f.name, f.ms, `${(f.share * 100).toFixed(1)} %`]),
    ),
  ];
}

export function renderMarkdown(report) {
  const m = report.machine;
  const r = report.results;
  const parts = [
    `# batchd benchmark, ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`${report.command}\` (${report.seconds} s). ${report.options.quick ? '**Quick smoke run: small N, one round; not comparable with a full run.**' : ''}`,
    `Code: commit ${m.build?.commit ?? '?'}${m.build?.changedFiles ? ` plus ${m.build.changedFiles} changed file(s) in the work tree` : ''}, dist/ built ${m.build?.distBuiltAt ?? '?'} (a private copy of it ran).`,
    `Machine: ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Linux ${m.kernel}, ${m.filesystem}; Node ${m.node}.`,
    `Load average at start ${m.loadavgAtStart.join(' ')}, at end ${m.loadavgAtEnd?.join(' ') ?? '?'} (a shared machine: compare within this run).`,
    `File system per call (bench/lib/fs-probe.mjs) at start: ${describeProbe(m.fsAtStart)}; at end: ${describeProbe(m.fsAtEnd)}. Creating inodes is what every spool pays per job, and its cost on this machine kind swings widely from hour to hour.`,
    `Peers: ${Object.entries(m.versions)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
    ...targets(report),
  ];
  const add = (name, fn) => {
    if (r[name] === undefined) return;
    parts.push('');
    if (r[name].error !== undefined && name !== 'deep' && name !== 'http')
      parts.push(`## ${name}`, '', `failed: ${r[name].error}`);
    else parts.push(...fn(r[name]));
  };
  add('throughput', throughput);
  add('latency', latency);
  add('acceptance', acceptance);
  add('task', task);
  add('deep', deep);
  add('processes', processes);
  add('http', http);
  if (r.task?.profile !== undefined) parts.push('', ...profile(r.task.profile));
  return parts.join('\n') + '\n';
}
