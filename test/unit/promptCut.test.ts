// The token limit of a run (src/engine/run.ts): a long prompt is cut before all of it is tokenized
// (the kept tokens equal the first tokens of the full tokenization), the count of dropped tokens is
// only claimed when it is known, the automatic limit is what fits in memory, and a limit that does
// not fit is refused in one line naming tokens and bytes (memoryEstimate.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../../src/engine/model';
import { cutPrompt, runInspection } from '../../src/engine/run';
import { EngineError } from '../../src/engine/errors';
import { estimateInspection, inspectionFits, tokensThatFit } from '../../src/engine/memoryEstimate';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

let root: string;
let model: Model;
before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-cut-'));
  const ck = makeTinyCheckpoint(path.join(root, 'm'), tinyVariant('llama-yarn')); // 1024 positions
  model = await Model.open(ck.dir, { cacheRoot: path.join(root, 'cache'), device: 'cpu' });
});
after(async () => {
  await model.release();
  fs.rmSync(root, { recursive: true, force: true });
});

const strip = (ts: { id: number; start: number; end: number }[]) => ts.map(({ id, start, end }) => ({ id, start, end }));

test('cut: a long prompt keeps exactly the first tokens of the full tokenization, without tokenizing all of it', async () => {
  const prompt = 'the cat sat on the mat and the dog ran to the cat. '.repeat(400); // ~20,000 characters
  const all = await model.tokenizer.encode(prompt);
  for (const limit of [1, 7, 64, 300]) {
    const cut = await cutPrompt(model, prompt, limit);
    assert.deepEqual(strip(cut.tokens), strip(all.slice(0, limit)), `limit ${limit}`);
    assert.equal(cut.exact, false, 'the rest was not tokenized');
    assert.ok(cut.truncated > 0 && cut.truncated < all.length - limit, 'a lower bound, not the full count');
    assert.equal(cut.truncatedChars, prompt.length - all[limit - 1]!.end);
  }
  // Long enough prefixes: the whole prompt is tokenized and the count is exact.
  const short = 'the cat sat on the mat';
  const sAll = await model.tokenizer.encode(short);
  const c = await cutPrompt(model, short, 3);
  assert.deepEqual(strip(c.tokens), strip(sAll.slice(0, 3)));
  assert.deepEqual([c.exact, c.truncated, c.truncatedChars], [true, sAll.length - 3, short.length - sAll[2]!.end]);
  const none = await cutPrompt(model, short, 100);
  assert.deepEqual([none.tokens.length, none.truncated, none.truncatedChars, none.exact], [sAll.length, 0, 0, true]);
});

test('cut: text without whitespace, and surrogate pairs at the cut, still give the full tokenization\'s first tokens', async () => {
  for (const prompt of ['abcdefghij'.repeat(3000), '😀a'.repeat(6000)]) {
    const all = await model.tokenizer.encode(prompt);
    const cut = await cutPrompt(model, prompt, 50);
    assert.deepEqual(strip(cut.tokens), strip(all.slice(0, 50)));
  }
});

test('limit: explicit, model maximum, automatic from memory; a limit that does not fit is refused in one line', async () => {
  const d = model.dims;
  const prompt = 'the cat sat on the mat and the dog ran to the cat. '.repeat(100);
  const big = { available: 1e15, total: 1e15 };
  const warnings: string[] = [];
  const r = await runInspection(model, { prompt: prompt.slice(0, 408), maxTokens: 40 }, (w) => warnings.push(w), undefined, { qk: true, memory: big });
  assert.equal(r.tokens.length, 40);
  assert.equal(r.truncatedExact, true, 'this prompt is short enough to tokenize whole');
  assert.match(warnings[0]!, /^the prompt has \d+ tokens but the token limit is 40; the last \d+ were dropped$/);
  const w1: string[] = [];
  const long = await runInspection(model, { prompt, maxTokens: 40 }, (w) => w1.push(w), undefined, { qk: true, memory: big });
  assert.equal(long.truncatedExact, false);
  assert.equal(long.truncatedChars, prompt.length - long.tokens[39]!.end);
  assert.equal(w1[0], `the prompt has more than 40 tokens and the token limit is 40; the rest (${long.truncatedChars!.toLocaleString('en-US')} characters, not tokenized) was dropped`);
  // Automatic (no maxTokens): the model's maximum positions when it fits.
  const auto = await runInspection(model, { prompt: prompt.repeat(3) }, undefined, undefined, { qk: true, memory: big });
  assert.equal(auto.tokens.length, d.maxPositions);
  // Automatic with little memory: as many tokens as fit.
  const need = (T: number) => estimateInspection(d, T).total - estimateInspection(d, T).weights;
  const budget = { available: need(100) + 1, total: 1e15 };
  assert.equal(tokensThatFit(d, d.maxPositions, budget), 100);
  assert.ok(inspectionFits(d, 100, budget) && !inspectionFits(d, 101, budget));
  const w2: string[] = [];
  const small = await runInspection(model, { prompt }, (w) => w2.push(w), undefined, { qk: true, memory: budget });
  assert.equal(small.tokens.length, 100);
  assert.match(w2[0]!, /the memory this machine has free fits at most 100/);
  // An explicit limit that does not fit: refused before running, one line with tokens and bytes.
  await assert.rejects(runInspection(model, { prompt, maxTokens: 400 }, undefined, undefined, { qk: true, memory: budget }), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.code === 'PROMPT');
    assert.match(e.message, /^inspecting 400 tokens needs about \d+(\.\d)? [MG]B of memory \(.* for the run, .* for the model\) but only about .* is free for it; lower the token limit or use a shorter prompt$/);
    return true;
  });
  // Patterns kept (the CLI's attention 'all') need more than q/k: the same budget fits fewer tokens.
  assert.ok(tokensThatFit(d, d.maxPositions, budget, false, { kind: 'patterns', layers: d.layers }) < 100);
});
