// DOM-free parts of the compare page's components: the token view decorations (flowTints: KL and
// attention tints, unaligned tokens, the selected position), the head grid cells (diverging scale
// for deltas, sequential for one run; labels; the all-metrics line) and the KL strip bars.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenView } from '../../src/shared/protocol';
import { flowTints } from '../../webview/compare/flowTints';
import { allMetricsLine, formatValue, headCells } from '../../webview/compare/headCells';
import { stripBars } from '../../webview/compare/stripBars';

const toks = (texts: string[]): TokenView[] => {
  let pos = 0;
  return texts.map((text, id) => {
    const t = { text, start: pos, end: pos + text.length, special: false, id };
    pos += text.length;
    return t;
  });
};

test('flowTints: KL tints on a sqrt scale per aligned token, unaligned tokens marked, the selected position', () => {
  const tokens = toks(['The', ' cat', ' sat', ' down']);
  // token 2 has no partner; tokens 0, 1, 3 are positions 0, 1, 2
  const posOf = new Map([[0, 0], [1, 1], [3, 2]]);
  const kl = [0.25, 1, NaN];
  const t = flowTints({ tokens, unaligned: [2], which: 'b', posOf, selected: 1, tint: { kind: 'kl', of: (i) => { const p = posOf.get(i); return p === undefined ? undefined : kl[p]; }, max: 1 } });
  assert.equal(t.length, 4);
  assert.deepEqual(t[0]!.classes, ['tinted']);
  assert.equal(t[0]!.vars!['--kl'], '0.5', 'sqrt(0.25 / 1)');
  assert.deepEqual(t[0]!.data, { index: '0', pos: '0' });
  assert.deepEqual(t[1]!.classes, ['tinted', 'selected']);
  assert.equal(t[1]!.vars!['--kl'], '1');
  assert.deepEqual(t[2]!.classes, ['unaligned'], 'an unaligned token is not tinted');
  assert.deepEqual(t[2]!.data, { index: '2' }, 'and has no position');
  assert.match(t[2]!.title!, /^B token 2 “·sat” has no partner/);
  assert.deepEqual(t[3]!.classes, [], 'a NaN KL is not tinted');
  assert.match(t[3]!.title!, /KL — nats/);
});

test('flowTints: the attention row from one token (fractions as --a, later tokens not attended to are "future")', () => {
  const tokens = toks(['a', 'b', 'c', 'd']);
  const posOf = new Map([[0, 0], [1, 1], [2, 2], [3, 3]]);
  const row = new Float32Array([0.7, 0.3, 0, 0]);
  const fraction = new Float32Array([1, 0.5, 0, 0]);
  const t = flowTints({ tokens, unaligned: [3], which: 'a', posOf, selected: 1, tint: { kind: 'attention', from: 1, fraction, row } });
  assert.deepEqual(t[0]!.classes, ['attn']);
  assert.equal(t[0]!.vars!['--a'], '1');
  assert.deepEqual(t[1]!.classes, ['attn', 'selected']);
  assert.match(t[1]!.title!, /the token whose attention is shown \(to itself 30\.0%\)/);
  assert.deepEqual(t[2]!.classes, ['future']);
  assert.deepEqual(t[3]!.classes, ['unaligned', 'future'], 'unaligned tokens stay marked under the attention tint');
  // rows still loading: no tints, names only
  const waiting = flowTints({ tokens, unaligned: [], which: 'a', posOf, selected: 1, tint: { kind: 'attention', from: 1, fraction: null, row: null } });
  assert.deepEqual(waiting.map((x) => x.classes), [[], ['selected'], [], []]);
  assert.equal(waiting[0]!.title, 'A token 0 “a”');
  // no tint (one run, no positions): only the index
  assert.deepEqual(flowTints({ tokens, unaligned: [], which: 'a', posOf: null, selected: 0, tint: null }).map((x) => [x.classes, x.data, x.title]), tokens.map((_, i) => [[], { index: String(i) }, undefined]));
});

test('headCells: deltas on a diverging sqrt scale (sign = tone), NaN hatched, labels with A → B and Δ', () => {
  // 1 layer × 3 heads; deltas -0.4, 0.1, NaN: the top of the scale is 0.4
  const cells = headCells({ mode: 'compare', layers: 1, heads: 3, metric: 'entropy', a: [1, 2, 3], b: [0.6, 2.1, NaN], values: [-0.4, 0.1, NaN] });
  assert.deepEqual(cells.map((c) => c.tone), ['neg', 'pos', 'nan']);
  assert.equal(cells[0]!.f, 1);
  assert.equal(cells[1]!.f, 0.5, 'sqrt(0.1 / 0.4)');
  assert.equal(cells[0]!.label, 'L0H0 Entropy: A 1.000 → B 0.600 (Δ -0.400)');
  assert.equal(cells[1]!.label, 'L0H1 Entropy: A 2.000 → B 2.100 (Δ +0.100)');
  assert.equal(cells[2]!.label, 'L0H2 Entropy: A 3.000 → B — (Δ —)');
  // one run: sequential, |v| / max under a sqrt
  const single = headCells({ mode: 'single', layers: 2, heads: 1, metric: 'sink', a: [0.09, 0.36], b: null, values: [0.09, 0.36] });
  assert.deepEqual(single.map((c) => [c.tone, c.f]), [['pos', 0.5], ['pos', 1]]);
  assert.equal(single[1]!.label, 'L1H0 Attention sink: 0.360');
});

test('formatValue and allMetricsLine: precision by magnitude, signs for deltas, one head across every metric', () => {
  assert.equal(formatValue(12.345), '12.3');
  assert.equal(formatValue(0.5, true), '+0.500');
  assert.equal(formatValue(0), '0.000');
  assert.equal(formatValue(0.001234), '1.2e-3');
  assert.equal(formatValue(Infinity), '—');
  // [metric (6), layer (1), head (2)]: head 1's value of metric k is k + 0.5
  const all = new Float32Array(12).map((_, i) => (i % 2 === 1 ? (i - 1) / 2 + 0.5 : -1));
  assert.equal(allMetricsLine(all, 1, 2, 0, 1, false), 'ent 0.500 · sink 1.500 · prev 2.500 · self 3.500 · ind 4.500 · dup 5.500');
  assert.equal(allMetricsLine(all, 1, 2, 0, 0, true), 'ent Δ -1.000 · sink Δ -1.000 · prev Δ -1.000 · self Δ -1.000 · ind Δ -1.000 · dup Δ -1.000');
});

test('stripBars: sqrt heights with a 2% floor, NaN bars, the five most different marked', () => {
  const positions = Array.from({ length: 7 }, (_, i) => ({ a: i, b: i + 1, text: i === 0 ? ' x' : 'y' }));
  const kl = [4, 1, 0, NaN, 0.0001, 2, 3];
  const bars = stripBars({ positions, kl, shift: [0.5, NaN, 0, 0, 0, 0, 0], klMax: 4, mostDifferent: [0, 6, 5, 1, 4, 2] });
  assert.deepEqual(bars.map((b) => b.height), ['100%', '50%', '2%', '2%', '2%', `${Math.sqrt(0.5) * 100}%`, `${Math.sqrt(0.75) * 100}%`]);
  assert.deepEqual(bars.map((b) => b.nan), [false, false, false, true, false, false, false]);
  assert.deepEqual(bars.map((b) => b.most), [true, true, false, false, true, true, true], 'only the first five of mostDifferent');
  assert.equal(bars[0]!.title, '“·x” (A 0 · B 1): KL 4.000 nats · attention shift 0.500');
  assert.equal(bars[1]!.title, '“y” (A 1 · B 2): KL 1.000 nats');
});
