// Values of one logits row, in float64: the log-sum-exp and a token's logit, log-probability,
// probability and rank. Used by the engine (lens, ablation, patching) and the extension (watched
// tokens from a run's own last logits).

/** ln Σ exp over the n values at `off`, in float64 (max-shifted). */
export function logSumExp(x: Float32Array, off: number, n: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[off + i]! > max) max = x[off + i]!;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(x[off + i]! - max);
  return max + Math.log(s);
}

/** A token's value in the logits row of n values at `off`: logit, log-probability, probability and rank (1 + how many logits are larger). */
export function tokenStats(x: Float32Array, off: number, n: number, id: number, lse = logSumExp(x, off, n)): { logit: number; logprob: number; prob: number; rank: number } {
  const logit = x[off + id]!;
  let above = 0;
  for (let i = 0; i < n; i++) if (x[off + i]! > logit) above++;
  return { logit, logprob: logit - lse, prob: Math.exp(logit - lse), rank: above + 1 };
}
