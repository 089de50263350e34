// Self-checks of the float64 reference (test/reference/forward.ts), the safetensors
// writer and the tiny checkpoints they are used with.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bf16Bits, f16Bits, roundTo, StoredDtype, writeSafetensors } from '../fixtures/safetensorsWriter';
import { makeTinyCheckpoint, mulberry32, TINY_VARIANTS, TinyCheckpoint } from '../fixtures/tinyModels';
import { erf, referenceForward, RefTensors } from '../reference/forward';

let root = '';
const ckpts = new Map<string, TinyCheckpoint>();
before(() => {
  root = mkdtempSync(join(tmpdir(), 'attnscope-ref-'));
  for (const v of TINY_VARIANTS) ckpts.set(v.name, makeTinyCheckpoint(join(root, v.name), v));
});
after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});
const ck = (name: string) => ckpts.get(name)!;

// ---------------------------------------------------------------- helpers

/** Independent safetensors parse: returns name -> {dtype, shape, values}. */
function parseSafetensors(path: string): { meta: any; tensors: Map<string, { dtype: string; shape: number[]; values: number[] }> } {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal(n % 8, 0, 'header length is a multiple of 8');
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const data = buf.subarray(8 + n);
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, any][];
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let expect = 0;
  const tensors = new Map<string, { dtype: string; shape: number[]; values: number[] }>();
  for (const [name, e] of entries) {
    const [b, end] = e.data_offsets;
    assert.equal(b, expect, `${name} offsets are contiguous`);
    expect = end;
    const count = e.shape.reduce((x: number, y: number) => x * y, 1);
    const width = e.dtype === 'F32' ? 4 : 2;
    assert.equal(end - b, count * width, `${name} byte size`);
    const values: number[] = [];
    for (let i = 0; i < count; i++) {
      const off = b + i * width;
      if (e.dtype === 'F32') values.push(data.readFloatLE(off));
      else if (e.dtype === 'BF16') values.push(new Float32Array(new Uint32Array([data.readUInt16LE(off) << 16]).buffer)[0]);
      else {
        const h = data.readUInt16LE(off);
        const exp = (h & 0x7c00) >> 10;
        const frac = h & 0x3ff;
        const mag = exp === 0 ? frac * Math.pow(2, -24) : exp === 31 ? (frac ? NaN : Infinity) : Math.pow(2, exp - 15) * (1 + frac / 1024);
        values.push(h & 0x8000 ? -mag : mag);
      }
    }
    tensors.set(name, { dtype: e.dtype, shape: e.shape, values });
  }
  assert.equal(expect, data.length, 'data section ends at the last tensor');
  return { meta: header.__metadata__, tensors };
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - b[i]) <= tol)) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

function closeRows(a: ArrayLike<number>[], b: ArrayLike<number>[], tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: rows`);
  a.forEach((r, i) => close(r, b[i], tol, `${what}[${i}]`));
}

function sampleIds(c: TinyCheckpoint, T: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: T }, () => 2 + Math.floor(r() * (c.tokenizerVocabSize - 3)));
}

function cloneTensors(t: RefTensors): RefTensors {
  return new Map([...t].map(([k, v]) => [k, { shape: [...v.shape], data: Float64Array.from(v.data) }]));
}

// (gemma3 multimodal checkpoints keep the text model's settings under text_config)
const nLayers = (cfg: any): number => cfg.n_layer ?? (cfg.text_config ?? cfg).num_hidden_layers;
const nHeads = (cfg: any): number => cfg.n_head ?? (cfg.text_config ?? cfg).num_attention_heads;
const T = 10;

// ---------------------------------------------------------------- storage

describe('safetensors writer', () => {
  test('f16 / bf16 rounding hits known bit patterns', () => {
    const cases: [number, number, number][] = [
      // value, f16 bits, bf16 bits
      [1 / 3, 0x3555, 0x3eab],
      [65504, 0x7bff, 0x4780],
      [1e-8, 0x0000, 0x322c],
      [-0, 0x8000, 0x8000],
      [1, 0x3c00, 0x3f80],
      [-2, 0xc000, 0xc000],
      [0.1, 0x2e66, 0x3dcd],
      [2 ** -24, 0x0001, 0x3380],
      [2 ** -25, 0x0000, 0x3300], // f16 tie -> even (0)
      [3 * 2 ** -25, 0x0002, 0x33c0], // f16 tie -> even (2)
      [6.1e-5, 0x03ff, 0x3880],
      [65519, 0x7bff, 0x4780],
      [65520, 0x7c00, 0x4780], // f16 overflow
    ];
    for (const [x, h, b] of cases) {
      assert.equal(f16Bits(x), h, `f16 ${x}`);
      assert.equal(bf16Bits(x), b, `bf16 ${x}`);
    }
    assert.equal(roundTo('F16', Float64Array.of(1 / 3))[0], 0.333251953125);
    assert.equal(roundTo('BF16', Float64Array.of(1 / 3))[0], 0.333984375);
    assert.equal(roundTo('BF16', Float64Array.of(65504))[0], 65536);
    assert.equal(roundTo('F16', Float64Array.of(1e-8))[0], 0);
    assert.ok(Object.is(roundTo('F16', Float64Array.of(-0))[0], -0));
    assert.ok(Object.is(roundTo('BF16', Float64Array.of(-0))[0], -0));
    assert.equal(roundTo('F32', Float64Array.of(1 / 3))[0], Math.fround(1 / 3));
  });

  test('round trips through an independent parse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnscope-st-'));
    try {
      const r = mulberry32(7);
      const mk = (n: number) => Float64Array.from({ length: n }, () => (r() - 0.5) * 10);
      const specs: { name: string; dtype: StoredDtype; shape: number[] }[] = [
        { name: 'a.weight', dtype: 'F32', shape: [3, 5] },
        { name: 'b', dtype: 'F16', shape: [7] },
        { name: 'c.bias', dtype: 'BF16', shape: [1, 3, 1] },
        { name: 'ünï', dtype: 'F16', shape: [2, 2] },
      ];
      const tensors = specs.map((s) => ({ ...s, data: mk(s.shape.reduce((a, b) => a * b, 1)) }));
      const path = join(dir, 'x.safetensors');
      writeSafetensors(path, tensors, { format: 'pt', note: 'tiny' });
      const parsed = parseSafetensors(path);
      assert.deepEqual(parsed.meta, { format: 'pt', note: 'tiny' });
      assert.equal(parsed.tensors.size, tensors.length);
      for (const t of tensors) {
        const p = parsed.tensors.get(t.name)!;
        assert.equal(p.dtype, t.dtype);
        assert.deepEqual(p.shape, t.shape);
        assert.deepEqual(p.values, [...roundTo(t.dtype, t.data)]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tiny checkpoints', () => {
  test('files hold exactly the returned tensors; config is sane', () => {
    const dtypes = new Set<string>();
    let sharded = 0;
    for (const v of TINY_VARIANTS) {
      const c = ck(v.name);
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(join(c.dir, f)), `${v.name}/${f}`);
      const files = new Map<string, string[]>();
      const indexPath = join(c.dir, 'model.safetensors.index.json');
      let totalSize = -1;
      if (existsSync(indexPath)) {
        sharded++;
        const idx = JSON.parse(readFileSync(indexPath, 'utf8'));
        totalSize = idx.metadata.total_size;
        for (const [name, file] of Object.entries(idx.weight_map) as [string, string][]) {
          files.set(file, [...(files.get(file) ?? []), name]);
        }
        assert.ok(files.size >= 2, `${v.name} has >= 2 shards`);
        assert.ok(!existsSync(join(c.dir, 'model.safetensors')));
      } else {
        files.set('model.safetensors', [...c.tensors.keys()]);
      }
      let seen = 0;
      let bytes = 0;
      for (const [file, names] of files) {
        const parsed = parseSafetensors(join(c.dir, file)).tensors;
        assert.equal(parsed.size, names.length, `${v.name}/${file} tensor count`);
        for (const name of names) {
          const p = parsed.get(name)!;
          const t = c.tensors.get(name)!;
          assert.ok(p && t, `${v.name}: ${name}`);
          assert.deepEqual(p.shape, t.shape);
          assert.deepEqual(p.values, [...t.data], `${v.name}: ${name} values`);
          dtypes.add(p.dtype);
          bytes += p.values.length * (p.dtype === 'F32' ? 4 : 2);
          seen++;
        }
      }
      assert.equal(seen, c.tensors.size);
      if (totalSize >= 0) assert.equal(totalSize, bytes);
      assert.equal((c.config.text_config ?? c.config).vocab_size, c.vocabSize);
      assert.ok(c.vocabSize >= c.tokenizerVocabSize && c.vocabSize >= 300);
      assert.equal(c.config.model_type, v.family);
    }
    assert.deepEqual([...dtypes].sort(), ['BF16', 'F16', 'F32']);
    assert.ok(sharded >= 1);
    assert.ok(ck('gpt2').tensors.has('transformer.wte.weight') && !ck('gpt2').tensors.has('lm_head.weight'));
    assert.ok(ck('gpt2-bare-keys').tensors.has('wte.weight'));
  });
});

// ---------------------------------------------------------------- reference

describe('reference forward', () => {
  test('erf matches known values', () => {
    const known: [number, number][] = [
      [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527],
      [3, 0.9999779095030014], [-0.7, -0.6778011938374184], [1e-8, 1.1283791670955126e-8],
    ];
    for (const [x, y] of known) assert.ok(Math.abs(erf(x) - y) <= 2e-15 * Math.abs(y), `erf(${x}) = ${erf(x)}`);
  });

  test('attention rows are causal distributions, logits finite, attention not uniform', () => {
    for (const v of TINY_VARIANTS) {
      const c = ck(v.name);
      const { logits, attn } = referenceForward(c.config, c.tensors, sampleIds(c, T, 1));
      assert.equal(logits.length, T);
      for (const l of logits) {
        assert.equal(l.length, c.vocabSize);
        assert.ok(l.every(Number.isFinite), `${v.name}: finite logits`);
      }
      assert.equal(attn.length, nLayers(c.config));
      let peak = 0;
      for (const layer of attn) {
        assert.equal(layer.length, nHeads(c.config));
        for (const P of layer) {
          for (let i = 0; i < T; i++) {
            let s = 0;
            for (let j = 0; j < T; j++) {
              const p = P[i * T + j];
              if (j > i) assert.equal(p, 0, `${v.name}: future entry`);
              else assert.ok(p >= 0);
              s += p;
            }
            assert.ok(Math.abs(s - 1) < 1e-12, `${v.name}: row sums to ${s}`);
            if (i >= 4) peak = Math.max(peak, Math.max(...P.subarray(i * T, i * T + i + 1)));
          }
        }
      }
      assert.ok(peak > 0.5, `${v.name}: some attention row is peaky (max ${peak})`);
    }
  });

  test('causality: a later token does not change earlier logits or attention', () => {
    for (const v of TINY_VARIANTS) {
      const c = ck(v.name);
      const a = sampleIds(c, T, 2);
      const b = [...a];
      b[T - 1] = a[T - 1] === 5 ? 6 : 5;
      const ra = referenceForward(c.config, c.tensors, a);
      const rb = referenceForward(c.config, c.tensors, b);
      assert.deepEqual(ra.logits.slice(0, T - 1), rb.logits.slice(0, T - 1), v.name);
      assert.notDeepEqual(ra.logits[T - 1], rb.logits[T - 1], v.name);
      ra.attn.forEach((layer, l) => layer.forEach((P, h) => assert.deepEqual(P.subarray(0, (T - 1) * T), rb.attn[l][h].subarray(0, (T - 1) * T))));
    }
  });

  test('GQA equals MHA with duplicated k/v heads', () => {
    for (const name of ['llama-gqa', 'mistral-gqa-f16', 'qwen2-untied', 'smollm-tied']) {
      const c = ck(name);
      const H = c.config.num_attention_heads;
      const KV = c.config.num_key_value_heads;
      assert.ok(KV < H, name);
      const hd = c.config.head_dim ?? c.config.hidden_size / H;
      const t = cloneTensors(c.tensors);
      for (let l = 0; l < c.config.num_hidden_layers; l++) {
        for (const p of ['k_proj', 'v_proj']) {
          for (const kind of ['weight', 'bias']) {
            const key = `model.layers.${l}.self_attn.${p}.${kind}`;
            const src = t.get(key);
            if (!src) continue;
            const cols = kind === 'weight' ? src.shape[1] : 1;
            const data = new Float64Array(H * hd * cols);
            for (let h = 0; h < H; h++) {
              const g = Math.floor(h / (H / KV));
              data.set(src.data.subarray(g * hd * cols, (g + 1) * hd * cols), h * hd * cols);
            }
            t.set(key, { shape: kind === 'weight' ? [H * hd, cols] : [H * hd], data });
          }
        }
      }
      const ids = sampleIds(c, T, 3);
      const gqa = referenceForward(c.config, c.tensors, ids);
      const mha = referenceForward({ ...c.config, num_key_value_heads: H }, t, ids);
      closeRows(mha.logits, gqa.logits, 1e-12, name);
      gqa.attn.forEach((layer, l) => layer.forEach((P, h) => close(mha.attn[l][h], P, 1e-12, `${name} attn ${l}.${h}`)));
    }
  });

  test('headScale s equals scaling that head\'s input slice of the output projection', () => {
    const projs: Record<string, (l: number) => { key: string; inputAxis: 0 | 1 }> = {
      'llama-gqa': (l) => ({ key: `model.layers.${l}.self_attn.o_proj.weight`, inputAxis: 1 }),
      'qwen2-tied-sharded': (l) => ({ key: `model.layers.${l}.self_attn.o_proj.weight`, inputAxis: 1 }),
      gpt2: (l) => ({ key: `transformer.h.${l}.attn.c_proj.weight`, inputAxis: 0 }), // Conv1D [in, out]
      'neox-parallel-rot25': (l) => ({ key: `gpt_neox.layers.${l}.attention.dense.weight`, inputAxis: 1 }),
      'neox-sequential-rot50': (l) => ({ key: `gpt_neox.layers.${l}.attention.dense.weight`, inputAxis: 1 }),
    };
    for (const [name, proj] of Object.entries(projs)) {
      const c = ck(name);
      const L = nLayers(c.config);
      const H = nHeads(c.config);
      const hd = (c.config.n_embd ?? c.config.hidden_size) / H;
      const ids = sampleIds(c, T, 4);
      const base = referenceForward(c.config, c.tensors, ids);
      for (const [l, h, s] of [[0, 1, 0], [L - 1, 2, 0], [0, 3, 2.5]] as const) {
        const headScale = Array.from({ length: L }, () => new Array<number>(H).fill(1));
        headScale[l][h] = s;
        const viaOpt = referenceForward(c.config, c.tensors, ids, { headScale });
        const t = cloneTensors(c.tensors);
        const { key, inputAxis } = proj(l);
        const w = t.get(key)!;
        const [r, cols] = w.shape;
        for (let i = 0; i < r; i++) {
          for (let j = 0; j < cols; j++) {
            const input = inputAxis === 0 ? i : j;
            if (Math.floor(input / hd) === h) w.data[i * cols + j] *= s;
          }
        }
        const viaWeights = referenceForward(c.config, t, ids);
        closeRows(viaOpt.logits, viaWeights.logits, 1e-10, `${name} headScale ${l}.${h}=${s}`);
        viaOpt.attn.forEach((layer, ll) => layer.forEach((P, hh) => close(P, viaWeights.attn[ll][hh], 1e-12, `${name} attn`)));
        assert.notDeepEqual(viaOpt.logits[T - 1], base.logits[T - 1], `${name}: headScale has an effect`);
      }
    }
  });

  test('bias ln(alpha) outside a span renormalizes like multiplying by alpha', () => {
    for (const name of ['gpt2', 'llama-gqa', 'qwen2-untied', 'neox-sequential-rot50', 'mistral-gqa-f16']) {
      const c = ck(name);
      const L = nLayers(c.config);
      const H = nHeads(c.config);
      const ids = sampleIds(c, T, 5);
      const base = referenceForward(c.config, c.tensors, ids);
      const [a, b] = [3, 6];
      for (const alpha of [0.25, 3, 0]) {
        for (const [l, h] of [[0, 0], [L - 1, 3]]) {
          const bias = Array.from({ length: L }, () => Array.from({ length: H }, () => new Array<number>(T).fill(0)));
          for (let j = 0; j < T; j++) if (j < a || j > b) bias[l][h][j] = Math.log(alpha);
          const r = referenceForward(c.config, c.tensors, ids, { bias });
          const P0 = base.attn[l][h];
          // With alpha = 0, rows before the span have every key at -Infinity (undefined); skip them.
          for (let i = alpha === 0 ? a : 0; i < T; i++) {
            const w = (j: number) => (j < a || j > b ? alpha : 1);
            let z = 0;
            for (let j = 0; j <= i; j++) z += P0[i * T + j] * w(j);
            const expect = Array.from({ length: T }, (_, j) => (j <= i ? (P0[i * T + j] * w(j)) / z : 0));
            close(r.attn[l][h].subarray(i * T, (i + 1) * T), expect, 1e-12, `${name} alpha=${alpha} ${l}.${h} row ${i}`);
          }
          for (let hh = 0; hh < H; hh++) if (hh !== h) close(r.attn[l][hh], base.attn[l][hh], 0, `${name} other head`);
        }
      }
    }
  });

  test('RoPE: layer-0 scores depend only on relative position; positions matter', () => {
    for (const name of ['llama-gqa', 'smollm-tied', 'qwen2-untied', 'mistral-gqa-f16', 'neox-parallel-rot25', 'neox-sequential-rot50']) {
      const c = ck(name);
      const H = nHeads(c.config);
      const body = sampleIds(c, 5, 6);
      for (const shift of [1, 7, 30]) {
        const prefix = sampleIds(c, shift, 100 + shift);
        const A = referenceForward(c.config, c.tensors, body).attn[0];
        const B = referenceForward(c.config, c.tensors, [...prefix, ...body]).attn[0];
        const TA = body.length;
        const TB = TA + shift;
        for (let h = 0; h < H; h++) {
          for (let i = 1; i < TA; i++) {
            for (let j = 1; j <= i; j++) {
              // Score differences s(i, j) - s(i, 0) are log probability ratios.
              const la = Math.log(A[h][i * TA + j] / A[h][i * TA]);
              const lb = Math.log(B[h][(i + shift) * TB + j + shift] / B[h][(i + shift) * TB + shift]);
              assert.ok(Math.abs(la - lb) < 1e-9, `${name} shift ${shift} head ${h} (${i},${j}): ${la} vs ${lb}`);
            }
          }
        }
      }
      // With identical tokens only RoPE distinguishes the keys: attention must not be uniform.
      const same = referenceForward(c.config, c.tensors, new Array(6).fill(body[0])).attn[0];
      const row = same[0].subarray(5 * 6, 6 * 6);
      assert.ok(Math.max(...row) - Math.min(...row) > 1e-3, `${name}: positions matter`);
    }
  });

  test('gpt2 and gpt_neox definitions agree on a converted model', () => {
    // GPT-2 with zero positions == GPT-NeoX with rotary_pct 0, sequential residual, gelu_new,
    // Conv1D weights transposed and the c_attn columns re-laid out per head as [q|k|v].
    const c = ck('gpt2');
    const E = c.config.n_embd;
    const H = c.config.n_head;
    const hd = E / H;
    const g = (k: string) => c.tensors.get(`transformer.${k}`)!;
    const tr = (w: { shape: number[]; data: Float64Array }) => {
      const [r, k] = w.shape;
      const d = new Float64Array(r * k);
      for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) d[j * r + i] = w.data[i * k + j];
      return { shape: [k, r], data: d };
    };
    const gt = cloneTensors(c.tensors);
    gt.get('transformer.wpe.weight')!.data.fill(0);
    const n: RefTensors = new Map();
    n.set('gpt_neox.embed_in.weight', g('wte.weight'));
    n.set('embed_out.weight', g('wte.weight'));
    n.set('gpt_neox.final_layer_norm.weight', g('ln_f.weight'));
    n.set('gpt_neox.final_layer_norm.bias', g('ln_f.bias'));
    for (let l = 0; l < c.config.n_layer; l++) {
      const p = `gpt_neox.layers.${l}.`;
      n.set(p + 'input_layernorm.weight', g(`h.${l}.ln_1.weight`));
      n.set(p + 'input_layernorm.bias', g(`h.${l}.ln_1.bias`));
      n.set(p + 'post_attention_layernorm.weight', g(`h.${l}.ln_2.weight`));
      n.set(p + 'post_attention_layernorm.bias', g(`h.${l}.ln_2.bias`));
      const w = g(`h.${l}.attn.c_attn.weight`);
      const bias = g(`h.${l}.attn.c_attn.bias`);
      const qkv = new Float64Array(3 * E * E);
      const qkvB = new Float64Array(3 * E);
      for (let h = 0; h < H; h++) {
        for (let j = 0; j < 3; j++) {
          for (let d = 0; d < hd; d++) {
            const row = h * 3 * hd + j * hd + d;
            const col = j * E + h * hd + d;
            for (let i = 0; i < E; i++) qkv[row * E + i] = w.data[i * 3 * E + col];
            qkvB[row] = bias.data[col];
          }
        }
      }
      n.set(p + 'attention.query_key_value.weight', { shape: [3 * E, E], data: qkv });
      n.set(p + 'attention.query_key_value.bias', { shape: [3 * E], data: qkvB });
      n.set(p + 'attention.dense.weight', tr(g(`h.${l}.attn.c_proj.weight`)));
      n.set(p + 'attention.dense.bias', g(`h.${l}.attn.c_proj.bias`));
      n.set(p + 'mlp.dense_h_to_4h.weight', tr(g(`h.${l}.mlp.c_fc.weight`)));
      n.set(p + 'mlp.dense_h_to_4h.bias', g(`h.${l}.mlp.c_fc.bias`));
      n.set(p + 'mlp.dense_4h_to_h.weight', tr(g(`h.${l}.mlp.c_proj.weight`)));
      n.set(p + 'mlp.dense_4h_to_h.bias', g(`h.${l}.mlp.c_proj.bias`));
    }
    const neoxCfg = {
      model_type: 'gpt_neox', hidden_size: E, num_attention_heads: H, num_hidden_layers: c.config.n_layer,
      rotary_pct: 0, rotary_emb_base: 10000, use_parallel_residual: false, layer_norm_eps: c.config.layer_norm_epsilon,
      hidden_act: 'gelu_new', tie_word_embeddings: false,
    };
    const ids = sampleIds(c, T, 8);
    const a = referenceForward(c.config, gt, ids);
    const b = referenceForward(neoxCfg, n, ids);
    closeRows(b.logits, a.logits, 1e-10, 'logits');
    a.attn.forEach((layer, l) => layer.forEach((P, h) => close(b.attn[l][h], P, 1e-12, `attn ${l}.${h}`)));
  });
});
