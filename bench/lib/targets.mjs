// Each figure beside its target from ../shared/docs/TARGETS.md, judged met / not met. A target
// whose figure was not measured in this run says so (met: null) instead of being dropped.
import { ratio } from './stats.mjs';

const row = (rows, name) => rows?.find((r) => r.name === name);

/** `met`: true, false, or null when not measured (with `why`). */
function judge(measure, target, value, pass, figure, why) {
  if (value === undefined || !Number.isFinite(value))
    return { measure, target, figure: 'not measured', met: null, why: why ?? 'not run' };
  return { measure, target, figure, met: pass(value) };
}

/**
 * The goals of ../shared/docs/TARGETS.md: each a ratio to a peer or a floor measured in the same run
 * (absolute only where TARGETS.md keeps an absolute goal: the daemon's own share, the deep spool).
 */
export function evaluateTargets(results) {
  const out = [];
  const tp = results.throughput;
  const batchdTp = row(tp?.rows, 'batchd')?.total?.median;
  const dropLoop = row(tp?.rows, 'floor-drop')?.total?.median;
  const tspTp = row(tp?.rows, 'tsp')?.total?.median;
  const r1 = ratio(batchdTp, dropLoop);
  out.push(
    judge(
      `${tp?.n ?? 1000} file drops (printf + \`mv\` each), until all done`,
      '≤ 1.25 × the same drop loop into an unwatched folder',
      r1,
      (v) => v <= 1.25,
      `${s(batchdTp)} vs the drop loop alone ${s(dropLoop)} = ${x(r1)}` +
        (Number.isFinite(tspTp) ? `; tsp's loop ${s(tspTp)}` : ''),
      tp === undefined ? undefined : (row(tp.rows, 'floor-drop')?.error ?? row(tp.rows, 'batchd')?.error),
    ),
  );
  const tk = results.task;
  const r2 = ratio(tk?.batchd?.total?.median, tk?.floor?.total?.median);
  out.push(
    judge(
      `${tk?.n ?? 10000} × true as one task, until all done`,
      '≤ 1.25 × `xargs -P2` running the same commands',
      r2,
      (v) => v <= 1.25,
      `${s(tk?.batchd?.total?.median)} vs ${s(tk?.floor?.total?.median)} = ${x(r2)}`,
      tk?.batchd?.error,
    ),
  );
  const big = tk?.batchd?.bigAccepted?.median;
  out.push(
    judge(
      `a ${((tk?.n ?? 10000) * 10).toLocaleString('en')}-job task accepted`,
      '≤ 1 s',
      big === undefined ? undefined : big / 1000,
      (v) => v <= 1,
      `${s(big)} from the drop to its manifest committed`,
      tk?.batchd?.error,
    ),
  );
  const bl = row(results.latency?.rows, 'batchd');
  out.push(
    judge(
      "submit → start, the daemon's own share p50 (file in incoming/ → process started)",
      '≤ 1 ms',
      bl?.ownNetP50,
      (v) => v <= 1,
      `${ms(bl?.ownNetP50)} (raw ${ms(bl?.own?.p50)} − the stamp's own cost, the floor's p50)`,
      bl?.error ?? (bl?.own === undefined ? undefined : 'the floor row is needed to net out the stamp cost'),
    ),
  );
  const acc = results.acceptance;
  const a1 = row(acc?.rows, 'batchd');
  const spoolWork = row(acc?.rows, 'floor-spool')?.perSecond?.median;
  const r3 = ratio(a1?.perSecond?.median, spoolWork);
  out.push(
    judge(
      `drops accepted per second (${acc?.n ?? 10000} files)`,
      "≥ 0.9 × the spool's own file work alone (same run)",
      r3,
      (v) => v >= 0.9,
      `${rate(a1?.perSecond?.median)} vs ${rate(spoolWork)} = ${x(r3)}`,
      a1?.error,
    ),
  );
  const pr = row(results.processes?.rows, 'batchd');
  out.push(
    judge(
      `processes while ${results.processes?.n ?? 1000} jobs wait`,
      '1 daemon (+1 launcher while jobs run)',
      pr?.scheduler,
      (v) => v <= (pr?.runningJobs > 0 ? 2 : 1),
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
      `${s(dq?.startup?.median)}` +
        (Number.isFinite(dq?.startupFloor?.median)
          ? `; floor (Node lists queued/, reads and parses every state.yaml) ${s(dq.startupFloor.median)}`
          : ''),
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
  const authNote = h?.authOff === true ? ' (auth off)' : '';
  // Only a floor that answered every request counts (a failed stat or token check would flatter it).
  const honoReadFloor = Math.max(
    ...(h?.floors ?? []).filter((f) => f.kind === 'read' && f.non2xx === 0).map((f) => f.perSecond),
  );
  // The faster of the two orders (folder then answer, answer then folder).
  const submitFloor = Math.max(
    ...(h?.floors ?? [])
      .filter((f) => (f.kind === 'submit-node' || f.kind === 'submit-deferred') && f.non2xx === 0)
      .map((f) => f.perSecond),
  );
  const r4 = ratio(h?.submissions?.perSecond, submitFloor);
  out.push(
    judge(
      'HTTP durable submissions, auth on',
      '≥ 0.8 × the least-work durable submission floor (same run)',
      r4,
      (v) => v >= 0.8,
      `${rate(h?.submissions?.perSecond)}${authNote} vs ${rate(submitFloor)} = ${x(r4)}`,
      why,
    ),
  );
  const r5 = ratio(h?.status?.perSecond, honoReadFloor);
  out.push(
    judge(
      'HTTP status reads, auth on',
      '≥ 0.8 × the least-work Hono read floor (same run)',
      r5,
      (v) => v >= 0.8,
      `${rate(h?.status?.perSecond)}${authNote} vs ${rate(honoReadFloor)} = ${x(r5)}`,
      why,
    ),
  );
  out.push({
    measure: 'SSH, 1,000 trivial jobs on one loopback host',
    target: '≥ 0.9 × the same jobs run locally (same run)',
    figure: 'not measured',
    met: null,
    why: 'measured by its own script, `npm run build && node bench/ssh.mjs` (it needs a private sshd)',
  });
  out.push({
    measure: '`batch --help`, `batch enqueue`; bulk `batch enqueue --each` of 1,000; warm `npm start`',
    target: '≤ 1.3 × `node -e 0`; ≤ 1.0 × a `tsp` loop; ≤ 1.5 × `node <bin>` to ready',
    figure: 'not measured',
    met: null,
    why: 'measured by its own script, `node scripts/bench-first-hour.mjs` (see docs/performance.md)',
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
