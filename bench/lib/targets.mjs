// Each figure beside its target from ../shared/docs/TARGETS.md, judged met / not met. A target
// whose figure was not measured in this run says so (met: null) instead of being dropped.
import { ratio } from './stats.mjs';

const row = (rows, name) => rows?.find((r) => r.name === name);

/**
 * What a daemon that cost nothing would reach, from the same run's floors: said beside the figure,
 * with a warning when even that misses the target (the submission or the layout alone is too dear).
 */
function bound(text, value, pass, missed = 'already past the target with no daemon at all') {
  if (!Number.isFinite(value)) return '';
  return `; ${text}${pass(value) ? '' : `, ${missed}`}`;
}

/** `met`: true, false, or null when not measured (with `why`). */
function judge(measure, target, value, pass, figure, why) {
  if (value === undefined || !Number.isFinite(value))
    return { measure, target, figure: 'not measured', met: null, why: why ?? 'not run' };
  return { measure, target, figure, met: pass(value) };
}

export function evaluateTargets(results) {
  const out = [];
  const tp = results.throughput;
  const batchdTp = row(tp?.rows, 'batchd')?.total?.median;
  const tspTp = row(tp?.rows, 'tsp')?.total?.median;
  const r1 = ratio(batchdTp, tspTp);
  const dropLoop = row(tp?.rows, 'floor-drop')?.total?.median;
  out.push(
    judge(
      `${tp?.n ?? 1000} × true, one drop per job, 2 at a time, until all done`,
      '≤ 0.7 × task-spooler (same run)',
      r1,
      (v) => v <= 0.7,
      `${s(batchdTp)} vs tsp ${s(tspTp)} = ${x(r1)}` +
        bound(
          `the drop loop alone (printf + \`mv\`, no daemon) ${s(dropLoop)} = ${x(ratio(dropLoop, tspTp))}`,
          ratio(dropLoop, tspTp),
          (v) => v <= 0.7,
        ),
      tp === undefined ? undefined : (row(tp.rows, 'tsp')?.unavailable ?? row(tp.rows, 'batchd')?.error),
    ),
  );
  const tk = results.task;
  const r2 = ratio(tk?.batchd?.total?.median, tk?.floor?.total?.median);
  out.push(
    judge(
      `${tk?.n ?? 10000} × true as one task, until all done`,
      '≤ 1.25 × `xargs -P2`',
      r2,
      (v) => v <= 1.25,
      `${s(tk?.batchd?.total?.median)} vs ${s(tk?.floor?.total?.median)} = ${x(r2)}`,
      tk?.batchd?.error,
    ),
  );
  const lat = results.latency;
  const bl = row(lat?.rows, 'batchd');
  const tl = row(lat?.rows, 'tsp');
  const stampP50 = row(lat?.rows, 'floor')?.total?.p50;
  const noDaemon = (bl?.submit?.p50 ?? Number.NaN) + (stampP50 ?? Number.NaN);
  out.push(
    judge(
      'submit → start p50, idle daemon (the `mv` included)',
      "≤ task-spooler's p50 (same run)",
      ratio(bl?.total?.p50, tl?.total?.p50),
      (v) => v <= 1,
      `${ms(bl?.total?.p50)} vs tsp ${ms(tl?.total?.p50)}` +
        bound(
          `the \`mv\` alone ${ms(bl?.submit?.p50)} + the stamp's own cost ${ms(stampP50)} = ${ms(noDaemon)}`,
          ratio(noDaemon, tl?.total?.p50),
          (v) => v <= 1,
        ),
      tl?.unavailable ?? bl?.error,
    ),
  );
  out.push(
    judge('submit → start p99', '≤ 15 ms', bl?.total?.p99, (v) => v <= 15, ms(bl?.total?.p99), bl?.error),
  );
  out.push(
    judge(
      "the daemon's own share p50 (file in incoming/ → process started)",
      '≤ 1 ms',
      bl?.ownNetP50,
      (v) => v <= 1,
      `${ms(bl?.ownNetP50)} (raw ${ms(bl?.own?.p50)} − the stamp's own cost, the floor's p50)`,
      bl?.error ?? (bl?.own === undefined ? undefined : 'the floor row is needed to net out the stamp cost'),
    ),
  );
  const acc = results.acceptance;
  const a1 = row(acc?.rows, 'batchd');
  const a2 = row(acc?.rows, 'batchd-durable');
  const spoolWork = row(acc?.rows, 'floor-spool')?.perSecond?.median;
  out.push(
    judge(
      `drops accepted per second (${acc?.n ?? 10000} files)`,
      '≥ 10,000/s',
      a1?.perSecond?.median,
      (v) => v >= 10_000,
      // Not a bound: a daemon could spread that work over both cores.
      rate(a1?.perSecond?.median) +
        (Number.isFinite(spoolWork)
          ? `; the spool's file work alone, one drop at a time with no daemon, ${rate(spoolWork)}`
          : ''),
      a1?.error,
    ),
  );
  out.push(
    judge(
      `drops accepted per second, durable (fsync; ${acc?.nDurable ?? 2000} files)`,
      '≥ 2,000/s',
      a2?.perSecond?.median,
      (v) => v >= 2000,
      rate(a2?.perSecond?.median),
      a2?.error,
    ),
  );
  const pr = row(results.processes?.rows, 'batchd');
  out.push(
    judge(
      `processes while ${results.processes?.n ?? 1000} jobs wait`,
      '1',
      pr?.scheduler,
      (v) => v <= 1,
      pr?.scheduler === undefined ? '' : `${pr.scheduler} (${describeCommands(pr.commands, pr.runningJobs)})`,
      pr?.error,
    ),
  );
  const dq = results.deep;
  const deepN = dq?.n ?? 100000;
  out.push(
    judge(
      `${deepN.toLocaleString('en')} queued: daemon RSS`,
      '≤ 200 MB',
      dq?.rss?.median,
      (v) => v * 1.048576 <= 200,
      mib(dq?.rss?.median),
      dq?.error,
    ),
  );
  out.push(
    judge(
      `${deepN.toLocaleString('en')} queued: start-up (recovery scan included)`,
      '≤ 3 s',
      dq?.startup?.median,
      (v) => v <= 3000,
      s(dq?.startup?.median),
      dq?.error,
    ),
  );
  out.push(
    judge(
      `${deepN.toLocaleString('en')} queued: one page of a listing`,
      '≤ 20 ms',
      dq?.listing?.ms?.median,
      (v) => v <= 20,
      `${ms(dq?.listing?.ms?.median)}${dq?.listing?.via?.startsWith('HTTP') ? '' : ' (no API yet: folder read, see below)'}`,
      dq?.error,
    ),
  );
  const h = results.http;
  const why = h?.unavailable ?? h?.error;
  // The bench sets up no users yet, so the HTTP figures are taken with authentication off.
  const authNote = h?.authOff === true ? ' (auth off)' : '';
  // Only a floor that answered every request counts (a failed stat or token check would flatter it).
  // The faster of the two least-work floors (on Hono, on bare Node), so the bound is the kindest one.
  const readFloor = Math.max(
    ...(h?.floors ?? [])
      .filter((f) => (f.kind === 'read' || f.kind === 'read-node') && f.non2xx === 0)
      .map((f) => f.perSecond),
  );
  // The same for submissions: the faster of the two orders (folder then answer, answer then
  // folder), and the lower of their p99s.
  const submitFloors = (h?.floors ?? []).filter(
    (f) => (f.kind === 'submit-node' || f.kind === 'submit-deferred') && f.non2xx === 0,
  );
  const submitFloor =
    submitFloors.length === 0
      ? undefined
      : {
          perSecond: Math.max(...submitFloors.map((f) => f.perSecond)),
          p99ms: Math.min(...submitFloors.map((f) => f.p99ms)),
        };
  out.push(
    judge(
      'HTTP durable submissions/s (auth on)',
      '≥ 2,000/s',
      h?.submissions?.perSecond,
      (v) => v >= 2000,
      rate(h?.submissions?.perSecond) +
        authNote +
        bound(
          `the least a durable submission does, with no daemon (bare Node, the spool's folder and a journal, the faster of folder-then-answer and answer-then-folder), ${rate(submitFloor?.perSecond)}`,
          submitFloor?.perSecond ?? Number.NaN,
          (v) => v >= 2000,
          'already under the target before any of batchd runs',
        ),
      why,
    ),
  );
  out.push(
    judge(
      'HTTP status reads/s',
      '≥ 10,000/s',
      h?.status?.perSecond,
      (v) => v >= 10_000,
      rate(h?.status?.perSecond) +
        authNote +
        bound(
          `the least an authenticated read does, with no daemon (the faster of Hono and bare Node), ${rate(readFloor)}`,
          readFloor,
          (v) => v >= 10_000,
          'already under the target before any of batchd runs',
        ),
      why,
    ),
  );
  const p99 = Math.max(h?.submissions?.p99ms ?? Number.NaN, h?.status?.p99ms ?? Number.NaN);
  out.push(
    judge(
      'HTTP p99',
      '≤ 10 ms',
      p99,
      (v) => v <= 10,
      ms(p99) +
        authNote +
        bound(
          `the least a durable submission does, with no daemon, p99 ${ms(submitFloor?.p99ms)} (the lower of its two orders)`,
          submitFloor?.p99ms ?? Number.NaN,
          (v) => v <= 10,
          'already over the target before any of batchd runs',
        ),
      why,
    ),
  );
  out.push({
    measure: 'SSH, 1,000 trivial jobs on one loopback host',
    target: '≥ 300 jobs/s',
    figure: 'not measured',
    met: null,
    why: 'measured by its own script, `npm run build && node bench/ssh.mjs` (it needs a private sshd; see the README)',
  });
  return out;
}

function describeCommands(commands = {}, running = 0) {
  const own = Object.entries(commands)
    .filter(([c]) => c !== 'sleep')
    .map(([c, k]) => `${k} × ${c}`)
    .join(', ');
  return `${own}${running > 0 ? `; plus ${running} running blocker job(s)` : ''}`;
}

export function s(msValue) {
  return Number.isFinite(msValue) ? `${(msValue / 1000).toFixed(2)} s` : '–';
}
export function ms(value) {
  return Number.isFinite(value) ? `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms` : '–';
}
export function x(value) {
  return Number.isFinite(value) ? `${value.toFixed(2)} ×` : '–';
}
export function rate(value) {
  return Number.isFinite(value) ? `${Math.round(value).toLocaleString('en')}/s` : '–';
}
export function mib(value) {
  return Number.isFinite(value) ? `${Math.round(value)} MiB` : '–';
}
