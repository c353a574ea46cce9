// Small statistics for benchmark figures: the machine is shared and noisy, so every figure is a
// median with its spread (min..max) over rounds, never a single time.

/** Sorted copy of the finite numbers in `values`. */
function sorted(values) {
  return values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
}

/** The q-quantile (0..1) by linear interpolation between closest ranks; NaN when empty. */
export function quantile(values, q) {
  const s = sorted(values);
  if (s.length === 0) return Number.NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (values) => quantile(values, 0.5);

/** `{median, min, max, n}` of a list of per-round figures. */
export function summarize(values) {
  const s = sorted(values);
  return {
    median: median(s),
    min: s.length > 0 ? s[0] : Number.NaN,
    max: s.length > 0 ? s[s.length - 1] : Number.NaN,
    n: s.length,
  };
}

/** Latency samples: p50, p90, p99, min, max. */
export function percentiles(values) {
  const s = sorted(values);
  return {
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    min: s.length > 0 ? s[0] : Number.NaN,
    max: s.length > 0 ? s[s.length - 1] : Number.NaN,
    n: s.length,
  };
}

export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
}
