// Independent float64 reference forward pass for the supported families, written
// from the Hugging Face transformers modeling code conventions and using HF tensor
// names directly. It deliberately shares no code with src/engine.
//
//   gpt2                   LayerNorm, learned positions, Conv1D ([in,out]) c_attn/c_proj/c_fc,
//                          gelu_new, ln_f, logits tied to wte (or lm_head.weight if present and untied).
//   llama, mistral, qwen2  RMSNorm, rotate_half RoPE over head_dim, GQA, optional q/k/v/o biases
//                          (used whenever the tensor exists), SwiGLU, final norm, lm_head or tied.
//   gpt_neox               LayerNorm with bias, fused per-head [q|k|v] query_key_value, partial rotary
//                          (rotary_ndims = floor(head_dim * rotary_pct)), parallel or sequential
//                          residual, exact erf gelu, embed_out.
//
//   qwen3                  as llama, plus per-head RMSNorm q_norm/k_norm [head_dim] on q and k before RoPE.
//   gemma, gemma2, gemma3  RMSNorm x/rms(x)·(1 + w); embeddings × sqrt(hidden_size) rounded to the stored dtype
//                          (torch_dtype); GeGLU with the tanh gelu (hidden_activation; gemma without it:
//                          gelu_pytorch_tanh, as transformers 4.39+); head_dim (256); gemma: Llama layout,
//                          scale head_dim^-0.5. gemma2/3: sandwich norms (post_attention_layernorm on the
//                          attention output, pre/post_feedforward_layernorm around the MLP), scale
//                          query_pre_attn_scalar^-0.5, score soft-capping c·tanh(s/c) (gemma2: 50 unless set
//                          or null) and logit soft-capping (gemma2: 30); sliding layers: layer_types, else gemma2
//                          every even layer, gemma3 unless (i+1) % sliding_window_pattern == 0. gemma3:
//                          per-head q_norm/k_norm (1 + w); sliding layers use plain RoPE at rope_local_base_freq,
//                          full ones rope_theta/rope_scaling (or rope_parameters per layer type); gemma3
//                          (multimodal) reads text_config and the language_model.model. / model.language_model.
//                          weights.
//   smollm3                as llama (biases when stored), without RoPE in layers where no_rope_layers[l] is 0
//                          (default: every no_rope_layer_interval-th layer, 4); rope_theta 2e6 when absent; a
//                          sliding window on no-RoPE layers (or layers typed sliding_attention) with use_sliding_window.
//   olmo2                  no input norms: x + post_attention_layernorm(attn(x)), then
//                          x + post_feedforward_layernorm(mlp(x)); q_norm/k_norm are RMSNorms over the whole
//                          q [H·hd] and k [KV·hd] projections before the head split and RoPE; SwiGLU; biases
//                          when stored.
//   phi3                   as mistral with fused projections: qkv_proj rows are [q heads | k heads | v heads],
//                          gate_up_proj rows [gate | up] (up · act(gate)); RoPE on the first
//                          head_dim·partial_rotary_factor dims of each head; rope type default or longrope
//                          (legacy names su, yarn), longrope's switch at the top-level
//                          original_max_position_embeddings (4096 when absent) with factor
//                          max_position_embeddings / original; sliding_window on every layer.
//
// RoPE frequencies (refRope) follow the published definitions in float64: default base^(-2i/d);
// linear divides by factor; dynamic NTK replaces the base by base·((f·T/P) − (f − 1))^(d/(d−2)) when
// T > P = max_position_embeddings; llama3 keeps short wavelengths, divides long ones by factor and
// interpolates between (smooth = (L₀/λ − low)/(high − low)); YaRN blends interpolated (÷ factor) and
// extrapolated frequencies with a linear ramp between the correction dims of beta_fast/beta_slow and
// multiplies cos/sin by 0.1·ln(factor) + 1 (or attention_factor); LongRoPE divides by short_factor
// for T ≤ original_max_position_embeddings, else long_factor, and multiplies cos/sin by
// sqrt(1 + ln(factor)/ln(original)). The config may spell them the transformers v4 way (rope_theta,
// rope_scaling) or the v5 way (rope_parameters, possibly per layer type).
// Sliding windows (mistral: every layer; qwen2/qwen3: layers typed sliding_attention, by layer_types
// or from max_window_layers on, when use_sliding_window): key j is seen by query i iff i − j < window.
// Ignored on purpose: dropout, buffers such as `attn.bias` / `rotary_emb.inv_freq`.


export type RefTensor = { shape: number[]; data: Float64Array };
export type RefTensors = Map<string, RefTensor>;

export interface ReferenceOptions {
  /** [layer][head]: multiplies each head's attention output before the output projection. */
  headScale?: number[][];
  /** [layer][head][keyPosition]: additive pre-softmax bias (on the scaled scores), applied to every query row. */
  bias?: number[][][];
  /** Observe or replace activations (logit lens, activation patching). */
  hooks?: ReferenceHooks;
}

/**
 * Hooks at TransformerLens' points: `resid` sees the residual stream [T][D] entering block
 * `layer` (layer 0: the embeddings, position embeddings included; layer L: after the last block,
 * before the final norm); `z` sees a layer's head outputs z [T][H·headDim] (softmax(scores)·V of
 * each head, before `headScale` and the output projection) and may return a replacement.
 */
export interface ReferenceHooks {
  resid?(layer: number, x: Float64Array[]): void;
  z?(layer: number, z: Float64Array[]): Float64Array[] | void;
}

export interface ReferenceResult {
  /** [T][vocab] */
  logits: Float64Array[];
  /** [layer][head], each T*T row-major; softmax probabilities including `bias`, before `headScale`; future entries 0. */
  attn: Float64Array[][];
}

type Vecs = Float64Array[];

// ---------------------------------------------------------------- math helpers

/**
 * erf(x) to ~1e-15: for |x| < 2.5 the positive-term series
 * erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!  (no cancellation);
 * otherwise 1 - erfc(x) with the continued fraction
 * erfc(x) = e^{-x^2}/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let n = 0; n < 200; n++) {
      term *= (2 * a * a) / (2 * n + 3);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
  } else if (a < 7) {
    let f = a;
    for (let k = 300; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  } else {
    r = 1; // erfc(7) ~ 4e-23
  }
  return x < 0 ? -r : r;
}

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** GPT-2 "gelu_new" (tanh approximation). */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

function activation(name: string): (x: number) => number {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return geluNew;
    case 'gelu':
      return geluErf;
    case 'silu':
    case 'swish':
      return silu;
    case 'relu':
      return (x) => Math.max(0, x);
    default:
      throw new Error(`reference: unsupported activation ${name}`);
  }
}

function need(t: RefTensors, name: string): RefTensor {
  const v = t.get(name);
  if (!v) throw new Error(`reference: missing tensor ${name}`);
  return v;
}

/** nn.Linear: weight [out, in]; y = W x + b. */
function linear(xs: Vecs, w: RefTensor, b?: RefTensor): Vecs {
  const [out, inn] = w.shape;
  return xs.map((x) => {
    if (x.length !== inn) throw new Error(`reference: linear expects ${inn} inputs, got ${x.length}`);
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      const row = o * inn;
      for (let i = 0; i < inn; i++) s += w.data[row + i] * x[i];
      y[o] = s;
    }
    return y;
  });
}

/** GPT-2 Conv1D: weight [in, out]; y = x W + b. */
function conv1d(xs: Vecs, w: RefTensor, b?: RefTensor): Vecs {
  const [inn, out] = w.shape;
  return xs.map((x) => {
    if (x.length !== inn) throw new Error(`reference: conv1d expects ${inn} inputs, got ${x.length}`);
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) y[o] = b ? b.data[o] : 0;
    for (let i = 0; i < inn; i++) {
      const xi = x[i];
      const row = i * out;
      for (let o = 0; o < out; o++) y[o] += xi * w.data[row + o];
    }
    return y;
  });
}

function layerNorm(xs: Vecs, w: RefTensor, b: RefTensor | undefined, eps: number): Vecs {
  return xs.map((x) => {
    const n = x.length;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[i] - mean) * (x[i] - mean);
    v /= n; // biased variance
    const inv = 1 / Math.sqrt(v + eps);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * w.data[i] + (b ? b.data[i] : 0);
    return y;
  });
}

function rmsNorm(xs: Vecs, w: RefTensor, eps: number): Vecs {
  return xs.map((x) => {
    const n = x.length;
    let ms = 0;
    for (let i = 0; i < n; i++) ms += x[i] * x[i];
    ms /= n;
    const inv = 1 / Math.sqrt(ms + eps);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = x[i] * inv * w.data[i];
    return y;
  });
}

function add(a: Vecs, ...rest: Vecs[]): Vecs {
  return a.map((x, t) => {
    const y = Float64Array.from(x);
    for (const r of rest) for (let i = 0; i < y.length; i++) y[i] += r[t][i];
    return y;
  });
}

function mapVecs(xs: Vecs, f: (v: number) => number): Vecs {
  return xs.map((x) => x.map(f));
}

/** Row `id` of a [rows, cols] matrix. */
function row(m: RefTensor, id: number): Float64Array {
  const cols = m.shape[1];
  if (!Number.isInteger(id) || id < 0 || id >= m.shape[0]) throw new Error(`reference: id ${id} out of range`);
  return m.data.slice(id * cols, (id + 1) * cols);
}

/** logits[t][v] = sum_i x[t][i] * W[v][i] for W [vocab, hidden]. */
function unembed(xs: Vecs, w: RefTensor): Vecs {
  return linear(xs, w);
}

/**
 * In-place rotate_half RoPE on x[off .. off+dims) at position `pos`:
 * inv_freq_i = base^(-2i/dims), x1 = first half, x2 = second half,
 * out = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1].
 */
export function applyRope(x: Float64Array, off: number, dims: number, pos: number, base: number | RefRope): void {
  const half = dims / 2;
  const rope = typeof base === 'number' ? { inv: Array.from({ length: half }, (_, i) => 1 / Math.pow(base, (2 * i) / dims)), scale: 1 } : base;
  for (let i = 0; i < half; i++) {
    const ang = pos * rope.inv[i];
    const c = Math.cos(ang) * rope.scale;
    const s = Math.sin(ang) * rope.scale;
    const x1 = x[off + i];
    const x2 = x[off + i + half];
    x[off + i] = x1 * c - x2 * s;
    x[off + i + half] = x2 * c + x1 * s;
  }
}

export interface RefRope {
  /** [dims/2] inverse frequencies */
  inv: number[];
  /** multiplies cos and sin */
  scale: number;
}

/** The rope settings of a config in either spelling: [theta, rope dict (type and parameters)]. */
function ropeSettings(cfg: any, layerType: string | undefined, thetaDefault: number): { theta: number; p: any } {
  let p = cfg.rope_parameters;
  if (p && layerType && p[layerType] && typeof p[layerType] === 'object') p = p[layerType];
  if (p) return { theta: p.rope_theta ?? cfg.rope_theta ?? thetaDefault, p };
  return { theta: cfg.rope_theta ?? thetaDefault, p: cfg.rope_scaling ?? {} };
}

/** Rotary frequencies and cos/sin factor for a sequence of T tokens (float64, from the definitions). */
export function refRope(cfg: any, dims: number, T: number, layerType?: string, thetaDefault = 10000): RefRope {
  const { theta, p } = ropeSettings(cfg, layerType, thetaDefault);
  const type = p.rope_type ?? p.type ?? 'default';
  const P: number = cfg.max_position_embeddings;
  const half = dims / 2;
  const plain = (base: number) => Array.from({ length: half }, (_, i) => Math.pow(base, -(2 * i) / dims));
  switch (type) {
    case 'default':
      return { inv: plain(theta), scale: 1 };
    case 'linear':
      return { inv: plain(theta).map((v) => v / p.factor), scale: 1 };
    case 'dynamic': {
      const base = T > P ? theta * Math.pow((p.factor * T) / P - (p.factor - 1), dims / (dims - 2)) : theta;
      return { inv: plain(base), scale: 1 };
    }
    case 'llama3': {
      const old = p.original_max_position_embeddings;
      const inv = plain(theta).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < old / p.high_freq_factor) return f;
        if (wavelen > old / p.low_freq_factor) return f / p.factor;
        const smooth = (old / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
        return ((1 - smooth) * f) / p.factor + smooth * f;
      });
      return { inv, scale: 1 };
    }
    case 'yarn': {
      const orig = p.original_max_position_embeddings ?? P;
      const factor = p.factor ?? P / orig;
      const corrDim = (rotations: number) => (dims * Math.log(orig / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
      const lo = Math.max(Math.floor(corrDim(p.beta_fast ?? 32)), 0);
      let hi = Math.min(Math.ceil(corrDim(p.beta_slow ?? 1)), dims - 1);
      if (hi === lo) hi += 0.001;
      const inv = plain(theta).map((f, i) => {
        const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
        // ramp 0: keep the original frequency (extrapolate); ramp 1: interpolate (÷ factor).
        return (f / factor) * ramp + f * (1 - ramp);
      });
      const scale = p.attention_factor ?? (factor <= 1 ? 1 : 0.1 * Math.log(factor) + 1);
      return { inv, scale };
    }
    case 'longrope': {
      const orig = p.original_max_position_embeddings ?? cfg.original_max_position_embeddings ?? P;
      const factor = p.factor ?? P / orig;
      const ext: number[] = T > orig ? p.long_factor : p.short_factor;
      const scale = p.attention_factor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig)));
      return { inv: plain(theta).map((f, i) => f / ext[i]), scale };
    }
    default:
      throw new Error(`reference: rope type ${type}`);
  }
}

/** Per layer: [layer type, sliding window or 0]. */
/** SmolLM3: does layer l use RoPE (no_rope_layers[l] === 1, or not every interval-th layer)? */
function smolRope(cfg: any, l: number): boolean {
  if (Array.isArray(cfg.no_rope_layers)) return cfg.no_rope_layers[l] === 1;
  return (l + 1) % (cfg.no_rope_layer_interval ?? 4) !== 0;
}

function layerWindows(cfg: any, L: number): { type: string; window: number }[] {
  return Array.from({ length: L }, (_, l) => {
    if (cfg.model_type === 'smollm3') {
      const use = cfg.use_sliding_window === true;
      const type: string = cfg.layer_types?.[l] ?? (use && cfg.sliding_window != null && !smolRope(cfg, l) ? 'sliding_attention' : 'full_attention');
      return { type, window: use && type === 'sliding_attention' ? cfg.sliding_window : 0 };
    }
    if (cfg.model_type === 'mistral') return { type: 'full_attention', window: cfg.sliding_window ?? 0 };
    if (cfg.model_type !== 'qwen2' && cfg.model_type !== 'qwen3') return { type: 'full_attention', window: 0 };
    const type: string = cfg.layer_types?.[l] ?? (cfg.use_sliding_window && l >= (cfg.max_window_layers ?? 28) ? 'sliding_attention' : 'full_attention');
    return { type, window: cfg.use_sliding_window && type === 'sliding_attention' ? cfg.sliding_window : 0 };
  });
}

// ---------------------------------------------------------------- attention core

interface AttnIn {
  layer: number;
  nHeads: number;
  nKv: number;
  headDim: number;
  /** q[t] has nHeads*headDim values, k[t]/v[t] nKv*headDim; heads contiguous. */
  q: Vecs;
  k: Vecs;
  v: Vecs;
  scale: number;
  opts: ReferenceOptions;
  /** keys i − j ≥ window are not seen (0: none) */
  window?: number;
  /** Gemma 2 soft-capping: scaled scores s become c·tanh(s / c) before the bias and the mask */
  softcap?: number;
}

/** Causal softmax attention; returns per-position concatenated head outputs and the probabilities. */
function attention(a: AttnIn): { out: Vecs; probs: Float64Array[] } {
  const T = a.q.length;
  const { nHeads, nKv, headDim: hd } = a;
  if (nHeads % nKv !== 0) throw new Error(`reference: ${nHeads} heads not divisible by ${nKv} kv heads`);
  const group = nHeads / nKv;
  const out = Array.from({ length: T }, () => new Float64Array(nHeads * hd));
  const probs: Float64Array[] = [];
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    const bias = a.opts.bias?.[a.layer]?.[h];
    const P = new Float64Array(T * T);
    for (let i = 0; i < T; i++) {
      const s = new Float64Array(i + 1);
      let max = -Infinity;
      const from = a.window ? Math.max(0, i - a.window + 1) : 0;
      for (let j = 0; j < from; j++) s[j] = -Infinity;
      for (let j = from; j <= i; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += a.q[i][h * hd + d] * a.k[j][g * hd + d];
        const scaled = a.softcap ? a.softcap * Math.tanh((dot * a.scale) / a.softcap) : dot * a.scale;
        s[j] = scaled + (bias?.[j] ?? 0);
        if (s[j] > max) max = s[j];
      }
      let z = 0;
      for (let j = 0; j <= i; j++) {
        s[j] = j < from ? 0 : Math.exp(s[j] - max);
        z += s[j];
      }
      for (let j = 0; j <= i; j++) P[i * T + j] = s[j] / z;
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j <= i; j++) acc += P[i * T + j] * a.v[j][g * hd + d];
        out[i][h * hd + d] = acc;
      }
    }
    probs.push(P);
  }
  // z (hooked, perhaps replaced), then each head scaled by its headScale.
  const z = a.opts.hooks?.z?.(a.layer, out) ?? out;
  const scaled = z.map((zi) => {
    const o = Float64Array.from(zi);
    for (let h = 0; h < nHeads; h++) {
      const hs = a.opts.headScale?.[a.layer]?.[h] ?? 1;
      for (let d = 0; d < hd; d++) o[h * hd + d] *= hs;
    }
    return o;
  });
  return { out: scaled, probs };
}

// ---------------------------------------------------------------- families

function gpt2Forward(cfg: any, t: RefTensors, ids: number[], opts: ReferenceOptions): ReferenceResult {
  const p = t.has('transformer.wte.weight') ? 'transformer.' : '';
  const E: number = cfg.n_embd;
  const H: number = cfg.n_head;
  const L: number = cfg.n_layer;
  const eps: number = cfg.layer_norm_epsilon ?? 1e-5;
  const act = activation(cfg.activation_function ?? 'gelu_new');
  const hd = E / H;
  const wte = need(t, `${p}wte.weight`);
  const wpe = need(t, `${p}wpe.weight`);
  let x: Vecs = ids.map((id, pos) => {
    const e = row(wte, id);
    const pe = row(wpe, pos);
    for (let i = 0; i < E; i++) e[i] += pe[i];
    return e;
  });
  const attn: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    opts.hooks?.resid?.(l, x);
    const b = `${p}h.${l}.`;
    const h1 = layerNorm(x, need(t, b + 'ln_1.weight'), t.get(b + 'ln_1.bias'), eps);
    const qkv = conv1d(h1, need(t, b + 'attn.c_attn.weight'), t.get(b + 'attn.c_attn.bias'));
    let scale = cfg.scale_attn_weights === false ? 1 : 1 / Math.sqrt(hd);
    if (cfg.scale_attn_by_inverse_layer_idx) scale /= l + 1;
    const { out, probs } = attention({
      layer: l, nHeads: H, nKv: H, headDim: hd, scale, opts,
      q: qkv.map((r) => r.slice(0, E)),
      k: qkv.map((r) => r.slice(E, 2 * E)),
      v: qkv.map((r) => r.slice(2 * E, 3 * E)),
    });
    attn.push(probs);
    x = add(x, conv1d(out, need(t, b + 'attn.c_proj.weight'), t.get(b + 'attn.c_proj.bias')));
    const h2 = layerNorm(x, need(t, b + 'ln_2.weight'), t.get(b + 'ln_2.bias'), eps);
    const m = mapVecs(conv1d(h2, need(t, b + 'mlp.c_fc.weight'), t.get(b + 'mlp.c_fc.bias')), act);
    x = add(x, conv1d(m, need(t, b + 'mlp.c_proj.weight'), t.get(b + 'mlp.c_proj.bias')));
  }
  opts.hooks?.resid?.(L, x);
  x = layerNorm(x, need(t, `${p}ln_f.weight`), t.get(`${p}ln_f.bias`), eps);
  const untied = cfg.tie_word_embeddings === false && t.has('lm_head.weight');
  return { logits: unembed(x, untied ? need(t, 'lm_head.weight') : wte), attn };
}

function llamaForward(cfg: any, t: RefTensors, ids: number[], opts: ReferenceOptions): ReferenceResult {
  const E: number = cfg.hidden_size;
  const H: number = cfg.num_attention_heads;
  const KV: number = cfg.num_key_value_heads ?? H;
  const L: number = cfg.num_hidden_layers;
  const hd: number = cfg.head_dim ?? (cfg.model_type === 'qwen3' ? 128 : E / H);
  const eps: number = cfg.rms_norm_eps ?? 1e-6;
  const act = activation(cfg.hidden_act ?? 'silu');
  const windows = layerWindows(cfg, L);
  const emb = need(t, 'model.embed_tokens.weight');
  let x: Vecs = ids.map((id) => row(emb, id));
  const attn: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    opts.hooks?.resid?.(l, x);
    const b = `model.layers.${l}.`;
    const h1 = rmsNorm(x, need(t, b + 'input_layernorm.weight'), eps);
    const proj = (n: string) => linear(h1, need(t, `${b}self_attn.${n}.weight`), t.get(`${b}self_attn.${n}.bias`));
    const q = proj('q_proj');
    const k = proj('k_proj');
    const v = proj('v_proj');
    if (cfg.model_type === 'qwen3') {
      // q_norm / k_norm: RMSNorm over each head's head_dim values.
      const perHead = (xs: Vecs, n: number, w: RefTensor) =>
        xs.map((x) => {
          const y = new Float64Array(x.length);
          for (let h = 0; h < n; h++) y.set(rmsNorm([x.slice(h * hd, (h + 1) * hd)], w, eps)[0], h * hd);
          return y;
        });
      q.splice(0, q.length, ...perHead(q, H, need(t, b + 'self_attn.q_norm.weight')));
      k.splice(0, k.length, ...perHead(k, KV, need(t, b + 'self_attn.k_norm.weight')));
    }
    const smol = cfg.model_type === 'smollm3';
    const rope = refRope(cfg, hd, ids.length, windows[l].type, smol ? 2e6 : 10000);
    for (let pos = 0; pos < ids.length && (!smol || smolRope(cfg, l)); pos++) {
      for (let h = 0; h < H; h++) applyRope(q[pos], h * hd, hd, pos, rope);
      for (let h = 0; h < KV; h++) applyRope(k[pos], h * hd, hd, pos, rope);
    }
    const { out, probs } = attention({ layer: l, nHeads: H, nKv: KV, headDim: hd, q, k, v, scale: 1 / Math.sqrt(hd), opts, window: windows[l].window });
    attn.push(probs);
    x = add(x, linear(out, need(t, b + 'self_attn.o_proj.weight'), t.get(b + 'self_attn.o_proj.bias')));
    const h2 = rmsNorm(x, need(t, b + 'post_attention_layernorm.weight'), eps);
    const gate = linear(h2, need(t, b + 'mlp.gate_proj.weight'), t.get(b + 'mlp.gate_proj.bias'));
    const up = linear(h2, need(t, b + 'mlp.up_proj.weight'), t.get(b + 'mlp.up_proj.bias'));
    const m = gate.map((g, i) => g.map((gv, j) => act(gv) * up[i][j]));
    x = add(x, linear(m, need(t, b + 'mlp.down_proj.weight'), t.get(b + 'mlp.down_proj.bias')));
  }
  opts.hooks?.resid?.(L, x);
  x = rmsNorm(x, need(t, 'model.norm.weight'), eps);
  const lm = cfg.tie_word_embeddings === true ? emb : need(t, 'lm_head.weight');
  return { logits: unembed(x, lm), attn };
}

function phi3Forward(cfg: any, t: RefTensors, ids: number[], opts: ReferenceOptions): ReferenceResult {
  const E: number = cfg.hidden_size;
  const H: number = cfg.num_attention_heads;
  const KV: number = cfg.num_key_value_heads ?? H;
  const L: number = cfg.num_hidden_layers;
  const I: number = cfg.intermediate_size;
  const hd: number = cfg.head_dim ?? Math.floor(E / H);
  const eps: number = cfg.rms_norm_eps ?? 1e-5;
  const act = activation(cfg.hidden_act ?? 'silu');
  const rot = Math.floor(hd * (cfg.partial_rotary_factor ?? 1));
  const scaling = cfg.rope_scaling ?? cfg.rope_parameters;
  let ropeCfg = cfg;
  if (scaling && ['longrope', 'su', 'yarn'].includes(scaling.rope_type ?? scaling.type)) {
    const orig = cfg.original_max_position_embeddings ?? 4096;
    ropeCfg = { ...cfg, rope_parameters: undefined, rope_scaling: { ...scaling, rope_type: 'longrope', type: undefined, original_max_position_embeddings: orig, factor: cfg.max_position_embeddings / orig } };
  }
  const rope = refRope(ropeCfg, rot, ids.length);
  const emb = need(t, 'model.embed_tokens.weight');
  let x: Vecs = ids.map((id) => row(emb, id));
  const attn: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    opts.hooks?.resid?.(l, x);
    const b = `model.layers.${l}.`;
    const h1 = rmsNorm(x, need(t, b + 'input_layernorm.weight'), eps);
    const qkv = linear(h1, need(t, b + 'self_attn.qkv_proj.weight'));
    const q = qkv.map((r) => r.slice(0, H * hd));
    const k = qkv.map((r) => r.slice(H * hd, (H + KV) * hd));
    const v = qkv.map((r) => r.slice((H + KV) * hd));
    for (let pos = 0; pos < ids.length; pos++) {
      for (let h = 0; h < H; h++) applyRope(q[pos], h * hd, rot, pos, rope);
      for (let h = 0; h < KV; h++) applyRope(k[pos], h * hd, rot, pos, rope);
    }
    const { out, probs } = attention({ layer: l, nHeads: H, nKv: KV, headDim: hd, q, k, v, scale: 1 / Math.sqrt(hd), opts, window: cfg.sliding_window ?? 0 });
    attn.push(probs);
    x = add(x, linear(out, need(t, b + 'self_attn.o_proj.weight')));
    const h2 = rmsNorm(x, need(t, b + 'post_attention_layernorm.weight'), eps);
    const gu = linear(h2, need(t, b + 'mlp.gate_up_proj.weight'));
    const m = gu.map((r) => Float64Array.from({ length: I }, (_, j) => r[I + j] * act(r[j])));
    x = add(x, linear(m, need(t, b + 'mlp.down_proj.weight')));
  }
  opts.hooks?.resid?.(L, x);
  x = rmsNorm(x, need(t, 'model.norm.weight'), eps);
  const lm = cfg.tie_word_embeddings === true ? emb : need(t, 'lm_head.weight');
  return { logits: unembed(x, lm), attn };
}


function gemmaForward(top: any, t: RefTensors, ids: number[], opts: ReferenceOptions): ReferenceResult {
  const mt: string = top.model_type;
  const cfg = mt === 'gemma3' ? top.text_config : top;
  const v3 = mt === 'gemma3' || mt === 'gemma3_text';
  const v2 = mt === 'gemma2';
  const E: number = cfg.hidden_size;
  const H: number = cfg.num_attention_heads;
  const KV: number = cfg.num_key_value_heads;
  const L: number = cfg.num_hidden_layers;
  const hd: number = cfg.head_dim ?? 256;
  const eps: number = cfg.rms_norm_eps ?? 1e-6;
  const act = activation(cfg.hidden_activation ?? 'gelu_pytorch_tanh');
  const p = t.has('model.embed_tokens.weight') ? 'model.' : t.has('model.language_model.embed_tokens.weight') ? 'model.language_model.' : 'language_model.model.';
  const norm = (xs: Vecs, name: string) => {
    const w = need(t, name);
    return rmsNorm(xs, { shape: w.shape, data: w.data.map((x) => 1 + x) }, eps);
  };
  const scale = (v2 || v3 ? cfg.query_pre_attn_scalar : hd) ** -0.5;
  const capOf = (key: string, dflt: number) => (!v2 && !v3 ? undefined : cfg[key] === null ? undefined : (cfg[key] ?? (v2 ? dflt : undefined)));
  const attnCap = capOf('attn_logit_softcapping', 50);
  const finalCap = capOf('final_logit_softcapping', 30);
  const types: string[] = Array.from({ length: L }, (_, l) => {
    if (cfg.layer_types) return cfg.layer_types[l];
    if (v2) return l % 2 === 0 ? 'sliding_attention' : 'full_attention';
    if (v3) return (l + 1) % (cfg.sliding_window_pattern ?? 6) !== 0 ? 'sliding_attention' : 'full_attention';
    return 'full_attention';
  });
  const T = ids.length;
  const ropeOf = (type: string): RefRope => {
    const perType = cfg.rope_parameters && typeof cfg.rope_parameters[type] === 'object';
    if (perType) return refRope(cfg, hd, T, type);
    if (v3 && type === 'sliding_attention') return refRope({ max_position_embeddings: cfg.max_position_embeddings, rope_theta: cfg.rope_local_base_freq ?? 10000 }, hd, T);
    return refRope(cfg, hd, T, undefined, v3 ? 1e6 : 10000);
  };
  const emb = need(t, p + 'embed_tokens.weight');
  // transformers multiplies by sqrt(hidden_size) in the compute dtype; the reference computes as
  // transformers does with the model loaded in float32 (the float32 value of the square root).
  const normalizer = Math.fround(Math.sqrt(E));
  let x: Vecs = ids.map((id) => row(emb, id).map((v) => v * normalizer));
  const attn: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    opts.hooks?.resid?.(l, x);
    const b = `${p}layers.${l}.`;
    const h1 = norm(x, b + 'input_layernorm.weight');
    const proj = (n: string) => linear(h1, need(t, `${b}self_attn.${n}.weight`), t.get(`${b}self_attn.${n}.bias`));
    let q = proj('q_proj');
    let k = proj('k_proj');
    const v = proj('v_proj');
    if (v3) {
      const perHead = (xs: Vecs, n: number, name: string) =>
        xs.map((r) => {
          const y = new Float64Array(r.length);
          for (let h = 0; h < n; h++) y.set(norm([r.slice(h * hd, (h + 1) * hd)], name)[0], h * hd);
          return y;
        });
      q = perHead(q, H, b + 'self_attn.q_norm.weight');
      k = perHead(k, KV, b + 'self_attn.k_norm.weight');
    }
    const rope = ropeOf(types[l]);
    for (let pos = 0; pos < T; pos++) {
      for (let h = 0; h < H; h++) applyRope(q[pos], h * hd, hd, pos, rope);
      for (let h = 0; h < KV; h++) applyRope(k[pos], h * hd, hd, pos, rope);
    }
    const window = types[l] === 'sliding_attention' ? (cfg.sliding_window ?? 4096) : 0;
    const { out, probs } = attention({ layer: l, nHeads: H, nKv: KV, headDim: hd, q, k, v, scale, opts, window, softcap: attnCap });
    attn.push(probs);
    let a = linear(out, need(t, b + 'self_attn.o_proj.weight'), t.get(b + 'self_attn.o_proj.bias'));
    if (v2 || v3) a = norm(a, b + 'post_attention_layernorm.weight');
    x = add(x, a);
    const h2 = norm(x, b + (v2 || v3 ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight'));
    const gate = linear(h2, need(t, b + 'mlp.gate_proj.weight'));
    const up = linear(h2, need(t, b + 'mlp.up_proj.weight'));
    let m = linear(gate.map((gr, i) => gr.map((gv, j) => act(gv) * up[i][j])), need(t, b + 'mlp.down_proj.weight'));
    if (v2 || v3) m = norm(m, b + 'post_feedforward_layernorm.weight');
    x = add(x, m);
  }
  opts.hooks?.resid?.(L, x);
  x = norm(x, p + 'norm.weight');
  const untied = cfg.tie_word_embeddings === false;
  const lm = untied ? need(t, t.has('lm_head.weight') ? 'lm_head.weight' : 'language_model.lm_head.weight') : emb;
  let logits = unembed(x, lm);
  if (finalCap) logits = logits.map((r) => r.map((z) => finalCap * Math.tanh(z / finalCap)));
  return { logits, attn };
}

function olmo2Forward(cfg: any, t: RefTensors, ids: number[], opts: ReferenceOptions): ReferenceResult {
  const E: number = cfg.hidden_size;
  const H: number = cfg.num_attention_heads;
  const KV: number = cfg.num_key_value_heads ?? H;
  const L: number = cfg.num_hidden_layers;
  const hd: number = cfg.head_dim ?? E / H;
  const eps: number = cfg.rms_norm_eps ?? 1e-5;
  const act = activation(cfg.hidden_act ?? 'silu');
  const rope = refRope(cfg, hd, ids.length);
  const emb = need(t, 'model.embed_tokens.weight');
  let x: Vecs = ids.map((id) => row(emb, id));
  const attn: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    opts.hooks?.resid?.(l, x);
    const b = `model.layers.${l}.`;
    const proj = (n: string) => linear(x, need(t, `${b}self_attn.${n}.weight`), t.get(`${b}self_attn.${n}.bias`));
    const q = rmsNorm(proj('q_proj'), need(t, b + 'self_attn.q_norm.weight'), eps);
    const k = rmsNorm(proj('k_proj'), need(t, b + 'self_attn.k_norm.weight'), eps);
    const v = proj('v_proj');
    for (let pos = 0; pos < ids.length; pos++) {
      for (let h = 0; h < H; h++) applyRope(q[pos], h * hd, hd, pos, rope);
      for (let h = 0; h < KV; h++) applyRope(k[pos], h * hd, hd, pos, rope);
    }
    const { out, probs } = attention({ layer: l, nHeads: H, nKv: KV, headDim: hd, q, k, v, scale: 1 / Math.sqrt(hd), opts });
    attn.push(probs);
    x = add(x, rmsNorm(linear(out, need(t, b + 'self_attn.o_proj.weight'), t.get(b + 'self_attn.o_proj.bias')), need(t, b + 'post_attention_layernorm.weight'), eps));
    const gate = linear(x, need(t, b + 'mlp.gate_proj.weight'));
    const up = linear(x, need(t, b + 'mlp.up_proj.weight'));
    const m = linear(gate.map((gr, i) => gr.map((gv, j) => act(gv) * up[i][j])), need(t, b + 'mlp.down_proj.weight'));
    x = add(x, rmsNorm(m, need(t, b + 'post_feedforward_layernorm.weight'), eps));
  }
  opts.hooks?.resid?.(L, x);
  x = rmsNorm(x, need(t, 'model.norm.weight'), eps);
  const lm = cfg.tie_word_embeddings === true ? emb : need(t, 'lm_head.weight');
  return { logits: unembed(x, lm), attn };
}

function neoxForward(cfg: any, t: RefTensors, ids: number[], opts: ReferenceOptions): ReferenceResult {
  const E: number = cfg.hidden_size;
  const H: number = cfg.num_attention_heads;
  const L: number = cfg.num_hidden_layers;
  const hd = E / H;
  const eps: number = cfg.layer_norm_eps ?? 1e-5;
  const rotDims = Math.floor(hd * (cfg.rotary_pct ?? 1));
  const rope = refRope(cfg, rotDims, ids.length, undefined, cfg.rotary_emb_base ?? 10000);
  const parallel = cfg.use_parallel_residual ?? true;
  const act = activation(cfg.hidden_act ?? 'gelu');
  const emb = need(t, 'gpt_neox.embed_in.weight');
  let x: Vecs = ids.map((id) => row(emb, id));
  const attn: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    opts.hooks?.resid?.(l, x);
    const b = `gpt_neox.layers.${l}.`;
    const h1 = layerNorm(x, need(t, b + 'input_layernorm.weight'), t.get(b + 'input_layernorm.bias'), eps);
    const qkv = linear(h1, need(t, b + 'attention.query_key_value.weight'), t.get(b + 'attention.query_key_value.bias'));
    // Output features are laid out per head as [q(hd) | k(hd) | v(hd)].
    const pick = (r: Float64Array, j: number) => {
      const o = new Float64Array(E);
      for (let h = 0; h < H; h++) for (let d = 0; d < hd; d++) o[h * hd + d] = r[h * 3 * hd + j * hd + d];
      return o;
    };
    const q = qkv.map((r) => pick(r, 0));
    const k = qkv.map((r) => pick(r, 1));
    const v = qkv.map((r) => pick(r, 2));
    if (rotDims > 0) {
      for (let pos = 0; pos < ids.length; pos++) {
        for (let h = 0; h < H; h++) {
          applyRope(q[pos], h * hd, rotDims, pos, rope);
          applyRope(k[pos], h * hd, rotDims, pos, rope);
        }
      }
    }
    const { out, probs } = attention({ layer: l, nHeads: H, nKv: H, headDim: hd, q, k, v, scale: 1 / Math.sqrt(hd), opts });
    attn.push(probs);
    const a = linear(out, need(t, b + 'attention.dense.weight'), t.get(b + 'attention.dense.bias'));
    const mlp = (hs: Vecs) => {
      const h2 = layerNorm(hs, need(t, b + 'post_attention_layernorm.weight'), t.get(b + 'post_attention_layernorm.bias'), eps);
      const m = mapVecs(linear(h2, need(t, b + 'mlp.dense_h_to_4h.weight'), t.get(b + 'mlp.dense_h_to_4h.bias')), act);
      return linear(m, need(t, b + 'mlp.dense_4h_to_h.weight'), t.get(b + 'mlp.dense_4h_to_h.bias'));
    };
    if (parallel) {
      x = add(x, a, mlp(x));
    } else {
      const xa = add(x, a);
      x = add(xa, mlp(xa));
    }
  }
  opts.hooks?.resid?.(L, x);
  x = layerNorm(x, need(t, 'gpt_neox.final_layer_norm.weight'), t.get('gpt_neox.final_layer_norm.bias'), eps);
  const lm = cfg.tie_word_embeddings === true ? emb : need(t, 'embed_out.weight');
  return { logits: unembed(x, lm), attn };
}

/** Float64 reference forward pass. `config` is the parsed config.json; `tensors` use HF names. */
export function referenceForward(
  config: any,
  tensors: RefTensors,
  ids: number[],
  opts: ReferenceOptions = {},
): ReferenceResult {
  if (ids.length === 0) throw new Error('reference: empty input');
  switch (config.model_type) {
    case 'gpt2':
      return gpt2Forward(config, tensors, ids, opts);
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'qwen3':
    case 'smollm3':
      return llamaForward(config, tensors, ids, opts);
    case 'gpt_neox':
      return neoxForward(config, tensors, ids, opts);
    case 'phi3':
      return phi3Forward(config, tensors, ids, opts);
    case 'gemma':
    case 'gemma2':
    case 'gemma3_text':
    case 'gemma3':
      return gemmaForward(config, tensors, ids, opts);
    case 'olmo2':
      return olmo2Forward(config, tensors, ids, opts);
    default:
      throw new Error(`reference: unsupported model_type ${config.model_type}`);
  }
}

/**
 * The model's own head on residual-stream vectors (logit lens): the family's final norm, then the
 * unembedding, as at the end of each family's forward above. Returns logits [n][vocab].
 */
export function referenceFinalHead(config: any, tensors: RefTensors, xs: Float64Array[]): Float64Array[] {
  const t = tensors;
  switch (config.model_type) {
    case 'gpt2': {
      const p = t.has('transformer.wte.weight') ? 'transformer.' : '';
      const normed = layerNorm(xs, need(t, `${p}ln_f.weight`), t.get(`${p}ln_f.bias`), config.layer_norm_epsilon ?? 1e-5);
      const untied = config.tie_word_embeddings === false && t.has('lm_head.weight');
      return unembed(normed, untied ? need(t, 'lm_head.weight') : need(t, `${p}wte.weight`));
    }
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'qwen3':
    case 'smollm3':
    case 'phi3':
    case 'olmo2': {
      const eps = config.rms_norm_eps ?? (config.model_type === 'phi3' || config.model_type === 'olmo2' ? 1e-5 : 1e-6);
      const normed = rmsNorm(xs, need(t, 'model.norm.weight'), eps);
      return unembed(normed, config.tie_word_embeddings === true ? need(t, 'model.embed_tokens.weight') : need(t, 'lm_head.weight'));
    }
    case 'gemma':
    case 'gemma2':
    case 'gemma3_text':
    case 'gemma3': {
      // RMSNorm with (1 + w), then the (tied) unembedding, then Gemma 2/3's final logit soft-capping.
      const mt: string = config.model_type;
      const cfg = mt === 'gemma3' ? config.text_config : config;
      const p = t.has('model.embed_tokens.weight') ? 'model.' : t.has('model.language_model.embed_tokens.weight') ? 'model.language_model.' : 'language_model.model.';
      const w = need(t, p + 'norm.weight');
      const normed = rmsNorm(xs, { shape: w.shape, data: w.data.map((v) => 1 + v) }, cfg.rms_norm_eps ?? 1e-6);
      const lm = cfg.tie_word_embeddings === false ? need(t, t.has('lm_head.weight') ? 'lm_head.weight' : 'language_model.lm_head.weight') : need(t, p + 'embed_tokens.weight');
      const v2 = mt === 'gemma2';
      const cap = mt === 'gemma' ? undefined : cfg.final_logit_softcapping === null ? undefined : (cfg.final_logit_softcapping ?? (v2 ? 30 : undefined));
      const logits = unembed(normed, lm);
      return cap ? logits.map((r) => r.map((z) => cap * Math.tanh(z / cap))) : logits;
    }
    case 'gpt_neox': {
      const normed = layerNorm(xs, need(t, 'gpt_neox.final_layer_norm.weight'), t.get('gpt_neox.final_layer_norm.bias'), config.layer_norm_eps ?? 1e-5);
      return unembed(normed, config.tie_word_embeddings === true ? need(t, 'gpt_neox.embed_in.weight') : need(t, 'embed_out.weight'));
    }
    default:
      throw new Error(`reference: no final head for model_type ${config.model_type}`);
  }
}
