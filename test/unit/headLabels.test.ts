// Automatic head labels (src/shared/headLabels.ts): patterns built for one role get that role
// through the float64 metrics; the thresholds are inclusive and null metrics give no role; on the
// embedded default model its previous-token head, induction head and sinks are labelled, and the
// graph's duplicate-token metric agrees with the reference there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { headRoles, ROLE_INFO, ROLE_THRESHOLDS, uniformEntropy, type HeadRole } from '../../src/shared/headLabels';
import { headLabel, type HeadMetrics } from '../../src/shared/heads';
import { headMetricsFromProbs } from '../reference/metrics';
import { fixturePattern } from '../fixtures/webviewFixtures';
import { Model } from '../../src/engine/model';
import { runInspection } from '../../src/engine/run';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const IDS = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]; // a repeated stretch: induction and duplicates defined
const T = IDS.length;

/** A causal pattern [T, T] whose row q is `row(q)` (weights on keys 0..q, normalised here). */
function pattern(row: (q: number) => number[]): Float64Array {
  const p = new Float64Array(T * T);
  for (let q = 0; q < T; q++) {
    const w = row(q);
    assert.equal(w.length, q + 1);
    const s = w.reduce((a, b) => a + b, 0);
    w.forEach((v, k) => (p[q * T + k] = v / s));
  }
  return p;
}
const one = (q: number, k: number, rest = 0) => Array.from({ length: q + 1 }, (_, j) => (j === k ? 1 : rest));
const firstAt = (q: number) => IDS.indexOf(IDS[q]!);
const rolesOf = (p: Float64Array) => headRoles(headMetricsFromProbs(p, 1, T, IDS)[0]!, T);

test('head roles: a pattern built for one role gets exactly that role', () => {
  const cases: [string, Float64Array, HeadRole[]][] = [
    ['sink', pattern((q) => one(q, 0, 0.01)), ['sink']],
    ['previous token', pattern((q) => one(q, Math.max(0, q - 1), 0.01)), ['previous-token']],
    ['self', pattern((q) => one(q, q, 0.01)), ['self']],
    ['uniform', pattern((q) => new Array(q + 1).fill(1)), ['broad']],
    // repeated rows look at the token after the first occurrence; the others at the first token
    ['induction', pattern((q) => (firstAt(q) < q - 1 ? one(q, firstAt(q) + 1) : one(q, 0))), ['induction']],
    // repeated rows look at the earlier occurrence; the others spread evenly
    ['duplicate token', pattern((q) => (firstAt(q) < q ? one(q, firstAt(q)) : new Array(q + 1).fill(1))), ['duplicate-token']],
    ['mixed', pattern((q) => Array.from({ length: q + 1 }, (_, k) => (k === 0 ? 3 : 0) + (k === q - 1 ? 3 : 0) + (k === q ? 4 : 0))), []],
  ];
  for (const [name, p, want] of cases) assert.deepEqual(rolesOf(p), want, name);
});

test('head roles: seeded noisy fixture patterns are recognised', () => {
  const ids = [...IDS, ...IDS, 6, 7, 8, 0, 1, 2, 9, 10];
  const n = ids.length;
  for (const [role, want] of [['prev', 'previous-token'], ['induction', 'induction'], ['sink', 'sink'], ['self', 'self']] as const) {
    for (const seed of [1, 2, 3]) {
      const m = headMetricsFromProbs(fixturePattern(role, ids, seed), 1, n, ids)[0]!;
      assert.ok(headRoles(m, n).includes(want), `${role} (seed ${seed}): ${headRoles(m, n)} from ${JSON.stringify(m)}`);
    }
  }
});

test('head roles: thresholds are inclusive; null metrics and short prompts give no role', () => {
  const none: HeadMetrics = { entropy: 0, sink: 0, prevToken: 0, selfAttn: 0, induction: null, duplicateToken: null };
  const th = ROLE_THRESHOLDS;
  const at = (m: Partial<HeadMetrics>, n = 20) => headRoles({ ...none, ...m }, n);
  assert.deepEqual(at({}), []);
  assert.deepEqual(at({ sink: th.sink }), ['sink']);
  assert.deepEqual(at({ sink: th.sink - 1e-9 }), []);
  assert.deepEqual(at({ prevToken: th.prevToken }), ['previous-token']);
  assert.deepEqual(at({ induction: th.induction }), ['induction']);
  assert.deepEqual(at({ induction: th.induction - 1e-9 }), []);
  assert.deepEqual(at({ duplicateToken: th.duplicateToken }), ['duplicate-token']);
  assert.deepEqual(at({ selfAttn: th.selfAttn }), ['self']);
  assert.deepEqual(at({ entropy: th.broadEntropy * uniformEntropy(20) }), ['broad']);
  assert.deepEqual(at({ entropy: th.broadEntropy * uniformEntropy(20) - 1e-9 }), []);
  assert.deepEqual(at({ sink: 0.6, induction: 0.4, duplicateToken: 0.35 }), ['sink', 'induction', 'duplicate-token'], 'several roles, fixed order');
  assert.deepEqual(at({ sink: 1 }, th.minRows), [], 'too few rows');
  assert.deepEqual(at({ sink: 1 }, th.minRows + 1), ['sink']);
  assert.deepEqual(headRoles({ entropy: null, sink: null, prevToken: null, selfAttn: null, induction: null, duplicateToken: null }, 20), []);
  assert.ok(Math.abs(uniformEntropy(3) - (Math.log(2) + Math.log(3)) / 2) < 1e-15);
  assert.equal(uniformEntropy(1), 0);
  for (const r of Object.values(ROLE_INFO)) assert.ok(r.label && r.description && r.cite);
});

test('default model: its previous-token head, induction head and sinks are labelled; duplicate-token agrees with the reference', async () => {
  const probe = JSON.parse(fs.readFileSync(path.join(ROOT, 'tools', 'train-default-model', 'probe.json'), 'utf8'));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-labels-'));
  const model = await Model.open(path.join(ROOT, 'models', 'default'), { device: 'cpu', cacheRoot: cache });
  try {
    const prompt = fs.readFileSync(path.join(ROOT, 'examples', 'repeated-words.prompt'), 'utf8');
    const r = await runInspection(model, { prompt, attention: 'all' });
    const n = r.tokens.length;
    const ids = r.tokens.map((t) => t.id);
    const roles = new Map(r.heads.map((h) => [headLabel(h), headRoles(h, n)]));
    const summary = [...roles].filter(([, v]) => v.length).map(([k, v]) => `${k} ${v.join('+')}`).join(', ');
    console.log(`default model roles on repeated-words: ${summary}`);
    assert.ok(roles.get(probe.best_prevToken_head)!.includes('previous-token'), `${probe.best_prevToken_head}: ${roles.get(probe.best_prevToken_head)}`);
    assert.ok(roles.get(probe.best_induction_head)!.includes('induction'), `${probe.best_induction_head}: ${roles.get(probe.best_induction_head)}`);
    // the labels are the thresholds applied to the graph's metrics, for every head
    for (const h of r.heads) {
      assert.equal(roles.get(headLabel(h))!.includes('induction'), h.induction !== null && h.induction >= ROLE_THRESHOLDS.induction);
      assert.equal(roles.get(headLabel(h))!.includes('sink'), h.sink! >= ROLE_THRESHOLDS.sink);
    }
    assert.ok(r.heads.some((h) => roles.get(headLabel(h))!.includes('sink')), 'some head is a sink on this BOS-led prompt');
    // the graph's duplicate-token metric on a real model equals the float64 metric of its own patterns
    for (const h of r.heads) {
      const want = headMetricsFromProbs(r.patterns.get(h.layer)!, 1, n, ids, h.head * n * n)[0]!.duplicateToken!;
      assert.ok(Math.abs(h.duplicateToken! - want) < 1e-5, `${headLabel(h)} duplicateToken ${h.duplicateToken} vs ${want}`);
    }
  } finally {
    await model.release();
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
