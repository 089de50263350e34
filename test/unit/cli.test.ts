// The `attnscope` CLI as a user runs it (a real process): the JSON contract, interventions, and a
// one-line error with the right exit code for every bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'attnscope.js');
let tmp: string;
let cache: string;
let llama: string; // a good llama-family checkpoint (BOS-adding tokenizer)
let gpt2: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-cli-'));
  cache = path.join(tmp, 'cache');
  llama = makeTinyCheckpoint(path.join(tmp, 'llama'), tinyVariant('llama-gqa')).dir;
  gpt2 = makeTinyCheckpoint(path.join(tmp, 'gpt2'), tinyVariant('gpt2')).dir;
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ATTNSCOPE_CACHE: cache }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function prompt(name: string, content: string | Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, content);
  return f;
}

/** A copy of a good checkpoint, changed by `edit`. */
function broken(name: string, from: string, edit: (dir: string) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(from, dir, { recursive: true });
  edit(dir);
  return dir;
}

function assertOneLineError(r: { code: number; stderr: string; stdout: string }, code: number, ...mustContain: (string | RegExp)[]): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, /^attnscope: /);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, 'no stack trace');
  for (const m of mustContain) {
    if (typeof m === 'string') assert.ok(lines[0]!.includes(m), `"${lines[0]}" should mention ${m}`);
    else assert.match(lines[0]!, m);
  }
  assert.equal(r.stdout, '', 'nothing on stdout');
}

function readHeader(file: string): { len: number; header: Record<string, any>; buf: Buffer } {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return { len, header: JSON.parse(buf.subarray(8, 8 + len).toString('utf8')), buf };
}

function writeHeader(file: string, header: Record<string, any>, data: Buffer): void {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const h = Buffer.from(json);
  const pre = Buffer.alloc(8);
  pre.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([pre, h, data]));
}

test('inspect writes the JSON contract', () => {
  const text = 'The cat sat. The cat sat. Café 🎉!';
  const p = prompt('good.prompt', text);
  const out = path.join(tmp, 'out.json');
  const r = run(['inspect', p, '--model', llama, '--json', out, '--attention', '0.1,1.3', '--logits', '--top', '5']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.deepEqual(j.model, { arch: 'llama', layers: 2, heads: 4, kvHeads: 2, hiddenSize: 32, vocabSize: j.model.vocabSize });
  assert.equal(j.device, 'cpu');
  assert.equal(j.tokens[0].special, true, 'BOS from the post-processor is marked special');
  assert.equal(j.tokens[0].start, 0);
  assert.equal(j.tokens[0].end, 0);
  let covered = '';
  for (const t of j.tokens.slice(1)) {
    assert.equal(t.special, false);
    assert.ok(t.start <= t.end && t.end <= text.length);
    covered += t.text;
  }
  assert.equal(covered, text, 'token texts cover the prompt');
  assert.equal(j.lastLogits.length, j.model.vocabSize);
  assert.equal(j.next.length, 5);
  for (let i = 1; i < 5; i++) assert.ok(j.next[i - 1].prob >= j.next[i].prob);
  assert.equal(j.heads.length, 8);
  assert.deepEqual(Object.keys(j.attention).sort(), ['0.1', '1.3']);
  const T = j.tokens.length;
  for (const rows of Object.values(j.attention) as number[][][]) {
    assert.equal(rows.length, T);
    rows.forEach((row, q) => {
      assert.equal(row.length, q + 1);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    });
  }
  for (const h of j.heads) for (const k of ['entropy', 'sink', 'prevToken', 'selfAttn']) assert.equal(typeof h[k], 'number');
  assert.ok(j.heads.some((h: any) => typeof h.induction === 'number'), 'the repeated phrase defines induction');
  assert.equal(typeof j.timings.loadMs, 'number');
  assert.equal(typeof j.timings.runMs, 'number');
});

test('inspect: --mask, --scale and --emphasize change the prediction; stdout without --json', () => {
  const p = prompt('steer.prompt', 'one two three four five six one two three');
  const base = JSON.parse(run(['inspect', p, '--model', gpt2, '--logits']).stdout);
  const masked = JSON.parse(run(['inspect', p, '--model', gpt2, '--logits', '--mask', '0.0,0.1,1.2']).stdout);
  const scaled = JSON.parse(run(['inspect', p, '--model', gpt2, '--logits', '--scale', '0.0=3,1.1=0.5']).stdout);
  const steered = JSON.parse(run(['inspect', p, '--model', gpt2, '--logits', '--emphasize', '0:13:0.01', '--steer-heads', '0.0,1.0']).stdout);
  const dist = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
  assert.ok(dist(base.lastLogits, masked.lastLogits) > 1e-3);
  assert.ok(dist(base.lastLogits, scaled.lastLogits) > 1e-3);
  assert.ok(dist(base.lastLogits, steered.lastLogits) > 1e-3);
  // Unsteered heads keep their own pattern in layer 0 (nothing upstream changed).
  const again = JSON.parse(run(['inspect', p, '--model', gpt2, '--attention', '0.1', '--emphasize', '0:13', '--steer-heads', '0.0']).stdout);
  const orig = JSON.parse(run(['inspect', p, '--model', gpt2, '--attention', '0.1']).stdout);
  assert.deepEqual(again.attention['0.1'], orig.attention['0.1']);
});

test('errors: model folder, config and architecture', () => {
  const p = prompt('p.prompt', 'hello world');
  assertOneLineError(run(['inspect', p, '--model', path.join(tmp, 'nope')]), 1, 'model folder not found');
  const notJson = broken('notjson', llama, (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "llama",'));
  assertOneLineError(run(['inspect', p, '--model', notJson]), 1, 'config.json', 'not valid JSON');
  const arch = broken('arch', llama, (d) => {
    const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, model_type: 'bert' }));
  });
  assertOneLineError(run(['inspect', p, '--model', arch]), 1, '"bert" is not supported', 'gpt2, llama, mistral, qwen2, gpt_neox');
  const scaling = broken('scaling', llama, (d) => {
    const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, rope_scaling: { rope_type: 'mrope', factor: 4 } }));
  });
  assertOneLineError(run(['inspect', p, '--model', scaling]), 1, 'rope_scaling.rope_type "mrope" is not supported');
  const shapes = broken('shapes', llama, (d) => {
    const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...c, intermediate_size: c.intermediate_size + 8 }));
  });
  assertOneLineError(run(['inspect', p, '--model', shapes]), 1, 'config.json and the weights disagree');
});

test('errors: safetensors file', () => {
  const p = prompt('p2.prompt', 'hello world');
  const st = (d: string) => path.join(d, 'model.safetensors');
  const truncated = broken('truncated', llama, (d) => {
    const buf = fs.readFileSync(st(d));
    fs.writeFileSync(st(d), buf.subarray(0, buf.length - 100));
  });
  assertOneLineError(run(['inspect', p, '--model', truncated]), 1, 'model.safetensors', /truncated/);
  const tiny = broken('tiny', llama, (d) => fs.writeFileSync(st(d), Buffer.from([1, 2, 3])));
  assertOneLineError(run(['inspect', p, '--model', tiny]), 1, 'truncated');
  const absurd = broken('absurd', llama, (d) => {
    const buf = fs.readFileSync(st(d));
    buf.writeBigUInt64LE(1n << 60n, 0);
    fs.writeFileSync(st(d), buf);
  });
  assertOneLineError(run(['inspect', p, '--model', absurd]), 1, 'header length', 'absurd');
  const offsets = broken('offsets', llama, (d) => {
    const { len, header, buf } = readHeader(st(d));
    const name = Object.keys(header).find((k) => k !== '__metadata__')!;
    const [b, e] = header[name].data_offsets;
    header[name].data_offsets = [b + 1_000_000, e + 1_000_000];
    writeHeader(st(d), header, buf.subarray(8 + len));
  });
  assertOneLineError(run(['inspect', p, '--model', offsets]), 1, 'points past the end of the file');
  const missing = broken('missing', llama, (d) => {
    // A well-formed file without the tensor: its bytes go too and later offsets move down (a gap is refused).
    const { len, header, buf } = readHeader(st(d));
    const gone = 'model.layers.1.mlp.down_proj.weight';
    const [gb, ge] = header[gone].data_offsets;
    delete header[gone];
    for (const [k, v] of Object.entries(header)) if (k !== '__metadata__' && v.data_offsets[0] >= ge) v.data_offsets = v.data_offsets.map((o: number) => o - (ge - gb));
    const data = buf.subarray(8 + len);
    writeHeader(st(d), header, Buffer.concat([data.subarray(0, gb), data.subarray(ge)]));
  });
  assertOneLineError(run(['inspect', p, '--model', missing]), 1, 'model.layers.1.mlp.down_proj.weight', 'missing');
  const none = broken('noweights', llama, (d) => fs.rmSync(st(d)));
  assertOneLineError(run(['inspect', p, '--model', none]), 1, 'no model.safetensors');
});

test('errors: tokenizer', () => {
  const p = prompt('p3.prompt', 'hello world');
  const missing = broken('tok-missing', llama, (d) => fs.rmSync(path.join(d, 'tokenizer.json')));
  assertOneLineError(run(['inspect', p, '--model', missing]), 1, 'tokenizer.json');
  const bad = broken('tok-bad', llama, (d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": 3}}'));
  assertOneLineError(run(['inspect', p, '--model', bad]), 1, 'tokenizer.json');
});

test('errors: prompt', () => {
  assertOneLineError(run(['inspect', prompt('empty.prompt', ''), '--model', llama]), 1, 'empty.prompt', 'empty');
  assertOneLineError(run(['inspect', prompt('latin1.prompt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x61])), '--model', llama]), 1, 'latin1.prompt', 'not valid UTF-8', 'offset 3');
  assertOneLineError(run(['inspect', path.join(tmp, 'absent.prompt'), '--model', llama]), 1, 'prompt file not found');
  // Longer than max positions (64): truncated with one warning line, still a result.
  const long = run(['inspect', prompt('long.prompt', 'a b '.repeat(80)), '--model', llama]);
  assert.equal(long.code, 0, long.stderr);
  assert.match(long.stderr.trim(), /^attnscope: warning: the prompt has \d+ tokens but the model takes at most 64; the last \d+ were dropped$/);
  const j = JSON.parse(long.stdout);
  assert.equal(j.tokens.length, 64);
  assert.ok(j.truncated > 0);
});

test('errors: arguments (exit code 2)', () => {
  const p = prompt('p4.prompt', 'hello world');
  assertOneLineError(run(['inspect', p, '--model', llama, '--mask', '2.0']), 2, 'head 2.0 does not exist', 'layers 0..1');
  assertOneLineError(run(['inspect', p, '--model', llama, '--scale', '0.9=2']), 2, 'head 0.9 does not exist');
  assertOneLineError(run(['inspect', p, '--model', llama, '--scale', '0.1=abc']), 2, 'not a number');
  assertOneLineError(run(['inspect', p, '--model', llama, '--mask', 'L0H1']), 2, 'LAYER.HEAD');
  assertOneLineError(run(['inspect', p, '--model', llama, '--attention', '0.7']), 2, 'does not exist');
  assertOneLineError(run(['inspect', p, '--model', llama, '--emphasize', '5']), 2, 'START:END');
  assertOneLineError(run(['inspect', p, '--model', llama, '--emphasize', '0:5:-1']), 2, 'alpha');
  assertOneLineError(run(['inspect', p, '--model', llama, '--emphasize', '0:500']), 2, 'past the end of the prompt');
  assertOneLineError(run(['inspect', p, '--model', llama, '--steer-heads', '0.1']), 2, '--emphasize');
  assertOneLineError(run(['inspect', p, '--model', llama, '--device', 'tpu']), 2, 'auto, cpu, cuda');
  // No CUDA provider here: asking for it is a clear error, never a crash; auto falls back to CPU.
  if (!fs.existsSync(path.join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime_providers_cuda.so'))) {
    assertOneLineError(run(['inspect', p, '--model', llama, '--device', 'cuda']), 1, 'CUDA was requested but');
    assert.equal(JSON.parse(run(['inspect', p, '--model', llama, '--device', 'auto']).stdout).device, 'cpu');
  }
  assertOneLineError(run(['inspect', p, '--model', llama, '--top', '0']), 2, 'positive integer');
  assertOneLineError(run(['inspect', p, '--model', llama, '--bogus']), 2, 'bogus');
  assertOneLineError(run(['inspect']), 2, 'exactly one prompt file');
  assertOneLineError(run(['frobnicate']), 2, 'unknown command');
  assertOneLineError(run(['bench', '--model', llama]), 2, '--tokens');
  assertOneLineError(run(['bench', '--model', llama, '--tokens', '100']), 2, 'more than the model');
});

test('bench writes the contract', () => {
  const r = run(['bench', '--model', gpt2, '--tokens', '32', '--runs', '2']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.tokens, 32);
  assert.equal(j.runs, 2);
  assert.equal(j.device, 'cpu');
  assert.ok(j.plainMs > 0 && j.inspectMs > 0);
  const v = run(['bench', '--model', gpt2, '--tokens', '40', '--runs', '2', '--views']);
  assert.equal(v.code, 0, v.stderr);
  const jv = JSON.parse(v.stdout);
  assert.ok(jv.tokens >= 40 && jv.tokens <= 64, `a prompt of about 40 tokens, got ${jv.tokens}`);
  assert.ok(jv.cursorMs >= 0 && jv.cursorP95Ms >= jv.cursorMs && jv.maskToggleMs > 0);
});

test('generate: seeded sampling is reproducible, interventions apply, bad arguments exit 2', () => {
  const p = prompt('gen.prompt', 'The cat sat on the mat. The cat');
  const a = run(['generate', p, '--model', llama, '--max-tokens', '6', '--temperature', '1.2', '--seed', '7']);
  const b = run(['generate', p, '--model', llama, '--max-tokens', '6', '--temperature', '1.2', '--seed', '7']);
  assert.equal(a.code, 0, a.stderr);
  const ja = JSON.parse(a.stdout);
  assert.deepEqual(ja.tokens, JSON.parse(b.stdout).tokens);
  assert.ok(ja.tokens.length >= 1 && ja.tokens.length <= 6);
  assert.ok(['maxTokens', 'stopToken'].includes(ja.stopReason));
  assert.equal(typeof ja.timings.perTokenMs, 'number');
  const greedy = JSON.parse(run(['generate', p, '--model', gpt2, '--max-tokens', '5']).stdout);
  const masked = JSON.parse(run(['generate', p, '--model', gpt2, '--max-tokens', '5', '--mask', '0.0,0.1,0.2,0.3,1.0,1.1']).stdout);
  assert.notDeepEqual(greedy.tokens, masked.tokens);
  assertOneLineError(run(['generate', p, '--model', llama, '--max-tokens', '0']), 2, 'positive integer');
  assertOneLineError(run(['generate', p, '--model', llama, '--temperature=-1']), 2, '--temperature');
  assertOneLineError(run(['generate', p, '--model', llama, '--seed', 'x']), 2, '--seed');
  assertOneLineError(run(['generate', p, '--model', llama, '--mask', '7.7']), 2, 'does not exist');
  assertOneLineError(run(['generate', prompt('gen-empty.prompt', ''), '--model', llama]), 1, 'empty');
});

/** Sets every value of one F32 tensor in the copy's model.safetensors. */
function fillTensor(dir: string, name: string, value: number): void {
  const file = path.join(dir, 'model.safetensors');
  const { len, header, buf } = readHeader(file);
  const [b, e] = header[name].data_offsets;
  for (let o = 8 + len + b; o < 8 + len + e; o += 4) buf.writeFloatLE(value, o);
  fs.writeFileSync(file, buf);
}

test('NaN/Infinity from the model is one NUMERIC line, not a result: inspect and generate', () => {
  const p = prompt('num.prompt', 'hello world hello');
  // Huge but finite weights: the final norm's output overflows float32 after every attention layer.
  const afterAttn = broken('num-norm', llama, (d) => fillTensor(d, 'model.norm.weight', 3e38));
  assertOneLineError(run(['inspect', p, '--model', afterAttn]), 1, 'produced Infinity in its final hidden state at position 0', "every layer's attention is finite", 'after layer 1');
  assertOneLineError(run(['generate', p, '--model', afterAttn, '--max-tokens', '3']), 1, 'the model (on the prompt, before generating) produced Infinity', 'position 0');
  // Layer 0's MLP overflows: layer 1's attention is the first non-finite one.
  const mlp = broken('num-mlp', llama, (d) => fillTensor(d, 'model.layers.0.mlp.down_proj.weight', 1e38));
  assertOneLineError(run(['inspect', p, '--model', mlp, '--logits']), 1, 'produced NaN', "layer 1's attention is the first that is non-finite", "layer 0's attention output or MLP");
  // Only the output head: the logits, at the last position.
  const head = broken('num-head', llama, (d) => fillTensor(d, 'lm_head.weight', 3e38));
  assertOneLineError(run(['inspect', p, '--model', head]), 1, /produced -?Infinity in its logits at position \d+ \("/);
  // An extreme (allowed) head scale overflows the same way and is reported the same way.
  const scaled = run(['inspect', p, '--model', llama, '--scale', '1.0=3e38']);
  assertOneLineError(scaled, 1, /^attnscope: the model produced (NaN|-?Infinity) in its /);
});

test('a binary file as a prompt is refused in one line; --allow-binary inspects it anyway', () => {
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]), Buffer.from('some text and more text')]);
  const p = prompt('binary.prompt', elf);
  assertOneLineError(run(['inspect', p, '--model', llama]), 1, 'binary.prompt', 'looks like a binary file', 'NUL byte at offset 7', '--allow-binary');
  assertOneLineError(run(['generate', p, '--model', llama]), 1, 'looks like a binary file');
  const ok = run(['inspect', p, '--model', llama, '--allow-binary']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(JSON.parse(ok.stdout).tokens.length > 10);
  // Mostly control characters, no NUL.
  assertOneLineError(run(['inspect', prompt('ctl.prompt', Buffer.from([0x61, 1, 2, 3, 4, 5, 0x62, 0x63])), '--model', llama]), 1, 'control or undecodable characters');
  // Text with a tab, an ANSI colour and an emoji is text.
  const text = run(['inspect', prompt('tab.prompt', 'a\tb \x1b[31mred\x1b[0m 🎉\r\n'), '--model', llama]);
  assert.equal(text.code, 0, text.stderr);
});

test('a token id past vocab_size never reaches onnxruntime: one TOKENIZER line', () => {
  // The tokenizer counts entries, not ids: a vocab with a hole passes the size check at open.
  const holed = broken('tok-hole', llama, (d) => {
    const f = path.join(d, 'tokenizer.json');
    const tok = JSON.parse(fs.readFileSync(f, 'utf8'));
    const k = Object.keys(tok.model.vocab).find((x) => tok.model.vocab[x] === 200)!;
    tok.model.vocab[k] = 5000;
    fs.writeFileSync(f, JSON.stringify(tok));
  });
  const p = prompt('hole.prompt', 'a zz b\n');
  assertOneLineError(run(['inspect', p, '--model', holed]), 1, 'tokenizer.json', 'has id 5000', "vocab_size is 320");
  assertOneLineError(run(['generate', p, '--model', holed]), 1, 'has id 5000');
});
