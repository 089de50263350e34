// The embedded default model (models/default) through AttnScope's own engine: it has a
// previous-token head and induction heads that the metrics find, copies a repeated word, and
// masking its top two induction heads breaks that. Cross-checked against the numbers the training
// tool measured with its independent torch implementation (tools/train-default-model/probe.json).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { runInspection, type HeadSummary } from '../../src/engine/run';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const MODEL = path.join(ROOT, 'models', 'default');
const probe = JSON.parse(fs.readFileSync(path.join(ROOT, 'tools', 'train-default-model', 'probe.json'), 'utf8'));
const TOL = 2e-3; // float32 engine vs the torch float32 reference

let model: Model;
let cache: string;
before(async () => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-default-'));
  model = await Model.open(MODEL, { device: 'cpu', cacheRoot: cache });
});
after(async () => {
  await model.release();
  fs.rmSync(cache, { recursive: true, force: true });
});

const label = (h: { layer: number; head: number }) => `L${h.layer}H${h.head}`;
const parse = (id: string) => {
  const m = /^L(\d+)H(\d+)$/.exec(id)!;
  return { layer: Number(m[1]), head: Number(m[2]) };
};

async function pNext(mask: { layer: number; head: number }[] = [], prompt: string = probe.prompt, target: number = probe.expected_next_id) {
  const r = await runInspection(model, { prompt, topK: 5, logits: true, interventions: { scales: mask.map((h) => ({ ...h, value: 0 })), emphasis: null, sink: null } });
  const max = Math.max(...r.lastLogits!);
  let z = 0;
  for (const v of r.lastLogits!) z += Math.exp(v - max);
  return { r, p: Math.exp(r.lastLogits![target]! - max) / z };
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('default model: the tokenizer gives the training tool\'s ids, with a BOS sink first', async () => {
  const toks = await model.tokenizer.encode(probe.prompt);
  assert.deepEqual(toks.map((t) => t.id), probe.token_ids);
  assert.equal(toks[0]!.special, true);
  assert.equal(model.dims.arch, 'llama');
});

test('default model: induction and previous-token heads, found by the metrics', async () => {
  const { r, p } = await pNext();
  const by = (k: keyof HeadSummary) => [...r.heads].sort((a, b) => ((b[k] as number) ?? -1) - ((a[k] as number) ?? -1));
  const ind = by('induction');
  const prev = by('prevToken');
  assert.ok(ind[0]!.induction! >= 0.3, `best induction head ${label(ind[0]!)} scores ${ind[0]!.induction}`);
  assert.ok(prev[0]!.prevToken! >= 0.5, `best previous-token head ${label(prev[0]!)} scores ${prev[0]!.prevToken}`);
  assert.equal(label(ind[0]!), probe.best_induction_head);
  assert.ok(Math.abs(ind[0]!.induction! - probe.best_induction) < TOL, `induction ${ind[0]!.induction} vs torch ${probe.best_induction}`);
  assert.equal(label(prev[0]!), probe.best_prevToken_head);
  assert.ok(Math.abs(prev[0]!.prevToken! - probe.best_prevToken) < TOL);
  // the previous-token head sits in an earlier layer than the induction head it feeds
  assert.ok(prev[0]!.layer < ind[0]!.layer, `${label(prev[0]!)} before ${label(ind[0]!)}`);
  // every head's metrics agree with the torch implementation
  for (const h of r.heads) {
    const want = probe.heads[label(h)];
    for (const k of ['sink', 'prevToken', 'induction'] as const) {
      if (want[k] === undefined || want[k] === null) continue;
      assert.ok(Math.abs((h[k] as number) - want[k]) < TOL, `${label(h)} ${k}: ${h[k]} vs ${want[k]}`);
    }
  }
  assert.ok(p >= 0.2, `p(${JSON.stringify(probe.expected_next)}) = ${p}`);
  assert.ok(Math.abs(p - probe.p_next) < TOL, `p ${p} vs torch ${probe.p_next}`);
});

test('default model: masking the top two induction heads at least halves the copied token\'s probability', async () => {
  const base = await pNext();
  const top2 = [...base.r.heads].sort((a, b) => (b.induction ?? -1) - (a.induction ?? -1)).slice(0, 2);
  const masked = await pNext(top2.map((h) => ({ layer: h.layer, head: h.head })));
  assert.ok(masked.p <= base.p / 2, `p ${base.p} -> ${masked.p} after masking ${top2.map(label).join(', ')}`);
  const theirs = await pNext(probe.mask_heads.map(parse));
  assert.ok(Math.abs(theirs.p - probe.p_next_masked) < TOL, `masked p ${theirs.p} vs torch ${probe.p_next_masked}`);
});

test('default model: over 20 more random word lists, the induction heads copy and masking them breaks it', async () => {
  const prompts: { prompt: string; expected_next_id: number }[] = probe.seeded.prompts;
  assert.equal(prompts.length, 20);
  const base = await Promise.all(prompts.map((q) => pNext([], q.prompt, q.expected_next_id)));
  // rank heads by their mean induction score over the prompts, as AttnScope's metrics give it
  const L = model.dims.layers;
  const H = model.dims.heads;
  const score = new Map<string, number>();
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      score.set(`L${l}H${h}`, mean(base.map(({ r }) => r.heads.find((x) => x.layer === l && x.head === h)!.induction ?? 0)));
    }
  }
  const ranked = [...score.entries()].sort((a, b) => b[1] - a[1]);
  assert.ok(ranked[0]![1] >= 0.3, `best mean induction ${ranked[0]![0]} ${ranked[0]![1]}`);
  assert.deepEqual(ranked.slice(0, 2).map((e) => e[0]), probe.seeded.top2_induction_heads);
  const p = mean(base.map((b) => b.p));
  assert.ok(p >= 0.2, `mean p(next word) = ${p}`);
  assert.ok(Math.abs(p - probe.seeded.mean_p_next) < TOL, `mean p ${p} vs torch ${probe.seeded.mean_p_next}`);
  const top2 = ranked.slice(0, 2).map((e) => parse(e[0]));
  const masked = mean(await Promise.all(prompts.map(async (q) => (await pNext(top2, q.prompt, q.expected_next_id)).p)));
  assert.ok(masked <= p / 2, `mean p ${p} -> ${masked} after masking ${ranked[0]![0]}, ${ranked[1]![0]}`);
  assert.ok(Math.abs(masked - probe.seeded.mean_p_next_masked_top2) < TOL);
  // control: masking two heads that are not induction heads costs far less than masking the
  // induction heads (the effect is specific to them, not to removing any two heads)
  const control = mean(await Promise.all(prompts.map(async (q) => (await pNext(probe.seeded.control_heads.map(parse), q.prompt, q.expected_next_id)).p)));
  assert.ok(control > 10 * masked, `control heads ${probe.seeded.control_heads.join(', ')}: ${p} -> ${control}; induction heads: ${masked}`);
  assert.ok(Math.abs(control - probe.seeded.mean_p_next_masked_control) < TOL);
});

test('default model: PASTA emphasis matches the torch reference and moves the prediction', async () => {
  const s = probe.steering;
  const start = s.prompt.indexOf(s.span);
  const run = (emphasize?: { start: number; end: number; alpha: number }) => runInspection(model, { prompt: s.prompt, logits: true, interventions: { scales: [], emphasis: emphasize ? { ...emphasize, heads: 'all' } : null, sink: null } });
  const probs = (logits: Float32Array) => {
    const max = Math.max(...logits);
    const z = logits.reduce((a, v) => a + Math.exp(v - max), 0);
    return (id: number) => Math.exp(logits[id]! - max) / z;
  };
  const before = probs((await run()).lastLogits!);
  const after = probs((await run({ start, end: start + s.span.length, alpha: s.alpha })).lastLogits!);
  const spanId = (await model.tokenizer.encode(' ' + s.span)).find((t) => !t.special)!.id;
  assert.ok(after(spanId) > 2 * before(spanId), `emphasizing "${s.span}": p ${before(spanId)} -> ${after(spanId)}`);
  for (const word of Object.keys(s.before)) {
    const id = (await model.tokenizer.encode(' ' + word)).find((t) => !t.special)!.id;
    assert.ok(Math.abs(before(id) - s.before[word]) < TOL, `${word} before: ${before(id)} vs ${s.before[word]}`);
    assert.ok(Math.abs(after(id) - s.after[word]) < TOL, `${word} after: ${after(id)} vs ${s.after[word]}`);
  }
});
