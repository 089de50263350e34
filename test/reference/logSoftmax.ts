// log-softmax in float64, for the tests' reference computations (a row, or the n values at `off`).
export function logSoftmax(row: ArrayLike<number>, off = 0, n = row.length - off): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, row[off + i]!);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(row[off + i]! - max);
  const lse = max + Math.log(s);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = row[off + i]! - lse;
  return out;
}
