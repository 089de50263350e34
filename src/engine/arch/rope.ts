// Rotary embedding parameters from config.json in both spellings, computed as transformers'
// ROPE_INIT_FUNCTIONS do (inv_freq in float32, the attention factor applied to cos and sin):
//   transformers v4: top-level `rope_theta`, `rope_scaling` {rope_type|type, ...}, `partial_rotary_factor`
//   transformers v5: `rope_parameters` {rope_theta, rope_type, partial_rotary_factor?, ...}, or one such
//                    object per layer type {"full_attention": {...}, "sliding_attention": {...}}
// Every key of the rope object is either used or refused; none is ignored.
import type { RopeSpec } from '../spec';
import type { ConfigReader } from './common';

const f = Math.fround;

export interface RopeContext {
  headDim: number;
  /** config max_position_embeddings */
  maxPositions: number;
  /** rope_theta when none is written (10000 for every supported family) */
  defaultTheta: number;
  /** partial_rotary_factor when none is written (1, or GPT-NeoX's rotary_pct) */
  defaultPartial: number;
  /** the layer types in use (v5 per-layer-type rope_parameters); undefined: the family has none */
  layerTypes?: string[];
  /** a legacy top-level theta key of the family (GPT-NeoX: rotary_emb_base), read before rope_theta */
  legacyThetaKey?: string;
  /** false where the family rotates the whole head whatever partial_rotary_factor says (transformers' Llama fails on it) */
  partialAllowed?: boolean;
  /** the rope types the family accepts (default: every type here) */
  types?: readonly string[];
  /** legacy type names the family's config maps to a type (Phi-3: su, yarn -> longrope) */
  typeAliases?: Readonly<Record<string, string>>;
  /**
   * Phi-3's longrope: the config class always has a top-level original_max_position_embeddings (this
   * default when absent) and transformers then takes factor = max_position_embeddings / it.
   */
  longropeOriginalDefault?: number;
  /**
   * Read the entry of this layer type from a per-layer-type rope_parameters object, whatever the other
   * entries say (families whose layer types have their own RoPE: Gemma 3). Without it the entries must agree.
   */
  layerType?: string;
}

/** Keys each rope_type reads (besides rope_type/type, rope_theta and partial_rotary_factor). */
const TYPE_KEYS: Record<string, readonly string[]> = {
  default: [],
  linear: ['factor'],
  dynamic: ['factor'],
  llama3: ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'],
  yarn: ['factor', 'attention_factor', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'original_max_position_embeddings', 'truncate'],
  longrope: ['factor', 'attention_factor', 'short_factor', 'long_factor', 'original_max_position_embeddings'],
};
const COMMON_KEYS = ['rope_type', 'type', 'rope_theta', 'partial_rotary_factor'];

/** float32 base^(2i/dim) for i < dim/2, as torch computes `base ** (arange(0, dim, 2).float() / dim)`. */
function powers(base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = f(Math.pow(f(base), f((2 * i) / dim)));
  return out;
}

function reciprocal(a: Float32Array): Float32Array {
  return a.map((x) => f(1 / x));
}

/** Plain RoPE (rope_type default) with this base over `dim` rotary dims, as transformers computes it. */
export function defaultRope(base: number, dim: number): RopeSpec {
  return { type: 'default', invFreq: reciprocal(powers(base, dim)), attentionFactor: 1 };
}

/** Reads the rotary settings; returns the rotary dim and the RopeSpec. */
export function readRope(c: ConfigReader, ctx: RopeContext): { rotaryDim: number; rope: RopeSpec } {
  let r: ConfigReader;
  let ropeObj: Record<string, unknown>;
  const params = c.obj('rope_parameters');
  const scaling = c.obj('rope_scaling');
  if (params) {
    if (scaling && JSON.stringify(scaling) !== JSON.stringify(params)) {
      c.fail('"rope_parameters" and "rope_scaling" are both set and differ; keep one (rope_parameters is the transformers v5 spelling)');
    }
    const values = Object.values(params);
    const perType = values.length > 0 && values.every((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    if (perType && ctx.layerType !== undefined) {
      if (!Object.prototype.hasOwnProperty.call(params, ctx.layerType)) c.fail(`"rope_parameters" has no entry for layer type "${ctx.layerType}"`);
      ropeObj = params[ctx.layerType] as Record<string, unknown>;
      r = c.nested(`rope_parameters.${ctx.layerType}`, ropeObj);
    } else if (perType) {
      if (!ctx.layerTypes) c.fail('"rope_parameters" holds one entry per layer type, but this family has no layer types; write a single rope_parameters object');
      const used = [...new Set(ctx.layerTypes)];
      for (const t of used) if (!Object.prototype.hasOwnProperty.call(params, t)) c.fail(`"rope_parameters" has no entry for layer type "${t}"`);
      const first = JSON.stringify(params[used[0]!]);
      for (const t of used) {
        if (JSON.stringify(params[t]) !== first) c.fail(`"rope_parameters" differs between layer types (${used.join(', ')}); per-layer-type RoPE is not supported for this family`);
      }
      ropeObj = params[used[0]!] as Record<string, unknown>;
      r = c.nested(`rope_parameters.${used[0]}`, ropeObj);
    } else {
      ropeObj = params;
      r = c.nested('rope_parameters', params);
    }
  } else {
    ropeObj = scaling ?? {};
    r = c.nested('rope_scaling', ropeObj);
  }

  // rope_theta: inside rope_parameters (v5) or top level (v4, or v5 configs that also keep it).
  const topTheta = ctx.legacyThetaKey && c.has(ctx.legacyThetaKey) ? c.num(ctx.legacyThetaKey, 0, { above: 0 }) : c.num('rope_theta', ctx.defaultTheta, { above: 0 });
  let theta = topTheta;
  if (params) {
    theta = r.num('rope_theta', topTheta, { above: 0 });
    const topName = ctx.legacyThetaKey && c.has(ctx.legacyThetaKey) ? ctx.legacyThetaKey : 'rope_theta';
    if (c.has(topName) && theta !== topTheta) c.fail(`"${r.name('rope_theta')}" (${theta}) and "${topName}" (${topTheta}) disagree; keep one`);
  } else if (r.has('rope_theta')) {
    c.fail(`"rope_scaling.rope_theta" is not a transformers v4 key; use "rope_theta" or a v5 "rope_parameters" object`);
  }
  const topPartial = c.num('partial_rotary_factor', ctx.defaultPartial, { above: 0, max: 1 });
  const partial = r.num('partial_rotary_factor', topPartial, { above: 0, max: 1 });
  if (c.has('partial_rotary_factor') && r.has('partial_rotary_factor') && partial !== topPartial) {
    c.fail(`"${r.name('partial_rotary_factor')}" and "partial_rotary_factor" disagree; keep one`);
  }
  if (ctx.partialAllowed === false && partial !== 1) c.fail(`"${r.has('partial_rotary_factor') ? r.name('partial_rotary_factor') : 'partial_rotary_factor'}" ${partial} is not supported for this family (it rotates the whole head)`);
  const dim = Math.floor(ctx.headDim * partial);
  if (dim < 2 || dim % 2 !== 0) c.fail(`partial_rotary_factor ${partial} gives a rotary dimension of ${dim} for head_dim ${ctx.headDim}; it must be even and at least 2`);

  const written = r.str('rope_type', r.str('type', 'default'));
  if (r.has('rope_type') && r.has('type') && r.str('type', '') !== written) c.fail(`"${r.name('rope_type')}" and "${r.name('type')}" disagree`);
  const aliases = ctx.typeAliases ?? {};
  const type = Object.prototype.hasOwnProperty.call(aliases, written) ? aliases[written]! : written;
  const allowed = ctx.types ?? Object.keys(TYPE_KEYS);
  if (!Object.prototype.hasOwnProperty.call(TYPE_KEYS, type) || !allowed.includes(type)) {
    c.fail(`${r.name('rope_type')} "${written}" is not supported for this model_type (supported: ${allowed.join(', ')})`);
  }
  const known = new Set([...COMMON_KEYS, ...TYPE_KEYS[type]!]);
  for (const k of Object.keys(ropeObj)) {
    if (!known.has(k) && ropeObj[k] !== null) c.fail(`"${r.name(k)}" is not used by rope_type "${type}" here and is not supported; remove it or fix the rope_type`);
  }

  const base = theta;
  const P = ctx.maxPositions;
  const origMax = (fallback: number) => r.int('original_max_position_embeddings', fallback);
  switch (type) {
    case 'default':
      return { rotaryDim: dim, rope: { type, invFreq: reciprocal(powers(base, dim)), attentionFactor: 1 } };
    case 'linear': {
      const factor = r.needNum('factor', { above: 0 });
      return { rotaryDim: dim, rope: { type, invFreq: reciprocal(powers(base, dim)).map((x) => f(x / f(factor))), attentionFactor: 1 } };
    }
    case 'dynamic': {
      const factor = r.needNum('factor', { above: 0 });
      // transformers measures growth against max_position_embeddings; a different original length is ambiguous.
      if (r.has('original_max_position_embeddings') && origMax(P) !== P) {
        c.fail(`"${r.name('original_max_position_embeddings')}" differs from max_position_embeddings for dynamic RoPE, which transformers versions read differently; remove it`);
      }
      // Up to P positions transformers keeps the frequencies computed at init (seq_len = P, in float64).
      const initBase = base * Math.pow((factor * P) / P - (factor - 1), dim / (dim - 2));
      return { rotaryDim: dim, rope: { type, invFreq: reciprocal(powers(initBase, dim)), attentionFactor: 1, byLength: { kind: 'dynamic', originalMax: P, base, factor } } };
    }
    case 'llama3': {
      const factor = r.needNum('factor', { above: 0 });
      const low = r.needNum('low_freq_factor', { above: 0 });
      const high = r.needNum('high_freq_factor', { above: 0 });
      if (!(high > low)) c.fail(`"${r.name('high_freq_factor')}" must be greater than "${r.name('low_freq_factor')}"`);
      const old = r.int('original_max_position_embeddings');
      const inv = reciprocal(powers(base, dim));
      const lowWavelen = f(old / low);
      const highWavelen = f(old / high);
      const out = new Float32Array(inv.length);
      for (let i = 0; i < inv.length; i++) {
        const wavelen = f(f(1 / inv[i]!) * f(2 * Math.PI));
        let v = wavelen > lowWavelen ? f(inv[i]! / f(factor)) : inv[i]!;
        const smooth = f(f(f(f(1 / wavelen) * f(old)) - f(low)) / f(high - low));
        const smoothed = f(f(f(f(f(1 - smooth) * v) / f(factor))) + f(smooth * v));
        if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) v = smoothed;
        out[i] = v;
      }
      return { rotaryDim: dim, rope: { type, invFreq: out, attentionFactor: 1 } };
    }
    case 'yarn': {
      const orig = origMax(P);
      const factor = r.has('factor') ? r.num('factor', 1, { above: 0 }) : P / orig;
      const mscale = r.num('mscale', 0, { min: 0 });
      const mscaleAll = r.num('mscale_all_dim', 0, { min: 0 });
      const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const attentionFactor = r.has('attention_factor')
        ? r.num('attention_factor', 1, { above: 0 })
        : mscale && mscaleAll
          ? getMscale(factor, mscale) / getMscale(factor, mscaleAll)
          : getMscale(factor);
      const betaFast = r.num('beta_fast', 0) || 32;
      const betaSlow = r.num('beta_slow', 0) || 1;
      const truncate = r.bool('truncate', true);
      const corr = (rot: number) => (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(base));
      let lo = corr(betaFast);
      let hi = corr(betaSlow);
      if (truncate) {
        lo = Math.floor(lo);
        hi = Math.ceil(hi);
      }
      lo = Math.max(lo, 0);
      hi = Math.min(hi, dim - 1);
      if (lo === hi) hi += 0.001;
      const pos = powers(base, dim);
      const out = new Float32Array(dim / 2);
      for (let i = 0; i < dim / 2; i++) {
        const extrap = f(1 / pos[i]!);
        const interp = f(1 / f(f(factor) * pos[i]!));
        const ramp = Math.min(1, Math.max(0, f(f(i - f(lo)) / f(hi - lo))));
        const ef = f(1 - ramp);
        out[i] = f(f(interp * f(1 - ef)) + f(extrap * ef));
      }
      return { rotaryDim: dim, rope: { type, invFreq: out, attentionFactor } };
    }
    case 'longrope': {
      let orig: number;
      let factor: number;
      if (ctx.longropeOriginalDefault !== undefined) {
        // Phi-3: the top-level original length decides, and factor = max_position_embeddings / original.
        orig = c.int('original_max_position_embeddings', ctx.longropeOriginalDefault);
        if (r.has('original_max_position_embeddings') && origMax(orig) !== orig) c.fail(`"${r.name('original_max_position_embeddings')}" differs from the top-level "original_max_position_embeddings", which this family uses; keep one`);
        factor = P / orig;
        if (r.has('factor') && r.num('factor', factor, { above: 0 }) !== factor) c.fail(`"${r.name('factor')}" differs from max_position_embeddings / original_max_position_embeddings (${factor}), which this family uses; remove it`);
      } else {
        orig = r.has('original_max_position_embeddings') ? origMax(P) : c.int('original_max_position_embeddings', P);
        factor = r.has('factor') ? r.num('factor', 1, { above: 0 }) : P / orig;
      }
      const attentionFactor = r.has('attention_factor')
        ? r.num('attention_factor', 1, { above: 0 })
        : factor <= 1
          ? 1
          : Math.sqrt(1 + Math.log(factor) / Math.log(orig));
      const pw = powers(base, dim);
      const freqs = (key: string) => {
        const ext = r.numbers(key, dim / 2, { above: 0 });
        return pw.map((p, i) => f(1 / f(f(ext[i]!) * p)));
      };
      return {
        rotaryDim: dim,
        rope: { type, invFreq: freqs('short_factor'), attentionFactor, byLength: { kind: 'longrope', originalMax: orig, longInvFreq: freqs('long_factor') } },
      };
    }
  }
  return c.fail(`rope_type "${type}" is not supported`);
}
