// The CLI's JSON output (the contract in the README): RunResult -> plain JSON.
import type { RunResult } from '../engine/run';
import { headKey, METRICS, type HeadSummary } from '../shared/heads';

/** Keeps float32 values readable without losing float32 precision. */
function f(v: number): number {
  return Number(v.toPrecision(8));
}

/** `rollout`: the last position's row of the attention rollout (inspect --rollout), T numbers. */
export function toJson(r: RunResult, extra: { rollout?: ArrayLike<number> } = {}) {
  const T = r.tokens.length;
  const attention: Record<string, number[][]> = {};
  for (const h of r.attentionHeads) {
    const p = r.patterns.get(h.layer)!;
    const base = h.head * T * T;
    const rows: number[][] = [];
    for (let q = 0; q < T; q++) {
      const row = new Array<number>(q + 1);
      for (let k = 0; k <= q; k++) row[k] = f(p[base + q * T + k]!);
      rows.push(row);
    }
    attention[headKey(h)] = rows;
  }
  const m = (v: number | null) => (v === null ? null : f(v));
  return {
    model: { arch: r.model.arch, layers: r.model.layers, heads: r.model.heads, kvHeads: r.model.kvHeads, hiddenSize: r.model.hiddenSize, vocabSize: r.model.vocabSize },
    device: r.device,
    tokens: r.tokens.map((t) => ({ id: t.id, text: t.text, start: t.start, end: t.end, special: t.special })),
    ...(r.lastLogits ? { lastLogits: Array.from(r.lastLogits, f) } : {}),
    next: r.next.map((n) => ({ id: n.id, text: n.text, prob: f(n.prob) })),
    heads: r.heads.map((h) => {
      const out = { layer: h.layer, head: h.head } as HeadSummary;
      for (const k of METRICS) out[k] = m(h[k]);
      return out;
    }),
    attention,
    ...(extra.rollout ? { rollout: Array.from(extra.rollout, f) } : {}),
    timings: { loadMs: Math.round(r.timings.loadMs * 10) / 10, runMs: Math.round(r.timings.runMs * 10) / 10 },
    ...(r.truncated ? { truncated: r.truncated } : {}),
  };
}
