// `attnscope` command line: inspect and bench over the engine, in-process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { EngineError, isEngineError, oneLine } from '../engine/errors';
import { Model } from '../engine/model';
import { cudaReadinessNow, defaultCudaStore, type DeviceRequest } from '../engine/runtime/ortSession';
import { CUDA_PROVIDER, installCudaProvider, installedProvider, progressText, registryUrl, tarballUrl } from '../engine/runtime/cudaProvider';
import { checkHead, runInspection, type RunRequest } from '../engine/run';
import { headKey, METRICS } from '../shared/heads';
import { normalizeInterventions, type Interventions } from '../shared/interventions';
import { parseHeadList, parseScaleList, parseEmphasis, parseDevice, parsePositiveInt } from './args';
import { toJson } from './json';
import { bench, benchViews } from './bench';
import { generate } from '../engine/generate';
import { readRunFileAsync, savedRunFrom, writeRunFile } from '../engine/runs/runFile';
import { compareRuns } from '../engine/analysis/compare';
import { cacheMaxBytes, cacheUsage, clearCache, defaultCacheRoot, formatBytes } from '../engine/runtime/modelCache';
import { detectBinaryBytes } from '../engine/sources/promptText';
import { ABLATION_METRICS, ablateHeads, isAblationMetric } from '../engine/analysis/ablation';
import { rolloutLast } from '../engine/analysis/rollout';
import { logitLens } from '../engine/analysis/lens';
import { patchHeads } from '../engine/analysis/patching';
import { formatProgress, resolveModelSource, type SourceProgress } from '../engine/sources/hub';

// --save writes a full run (format 2 with every position's logits and every head's patterns, as
// before: what `compare` needs for per-position KL and attention shift); --slim leaves those two
// tensors out (prompt, tokens, metrics, each position's top-K with texts, the last position's logits).
const USAGE = `usage:
  attnscope inspect <promptFile> [--model <dir|org/name[@rev]>] [--json <out>] [--attention all|L.H,...] [--mask L.H,...]
                    [--scale L.H=x,...] [--emphasize START:END[:alpha]] [--steer-heads L.H,...] [--logits]
                    [--top K] [--device auto|cpu|cuda] [--save <run.attnrun> [--slim]] [--rollout] [--allow-binary]
  attnscope ablate <promptFile> [--model <dir|org/name[@rev]>] [--metric logprob|loss|kl] [--target-id N] [--json <out>]
                    [--device auto|cpu|cuda] [--allow-binary]
  attnscope lens <promptFile> [--model <dir|org/name[@rev]>] [--position Q] [--top K] [--watch ID,...] [--json <out>]
                    [--device auto|cpu|cuda] [--allow-binary]
                    logit lens: the top-K next tokens at position Q (default: the last) read from the residual
                    stream after each block (layer 0 = the embeddings, the last layer = the model's prediction)
  attnscope patch <cleanPromptFile> <corruptPromptFile> [--model <dir|org/name[@rev]>] [--target-id N] [--json <out>]
                    [--device auto|cpu|cuda] [--allow-binary]
                    activation patching: each head's output from the clean run patched into the corrupt run (same
                    token count); value = log p(target) at the last position, effect = (value − corrupt) / (clean − corrupt)
  attnscope compare <a.attnrun> <b.attnrun> [--json <out>] [--top K]
  (--save keeps every position's logits and every head's attention; --slim saves without them)
  attnscope generate <promptFile> [--model <dir|org/name[@rev]>] [--mask L.H,...] [--scale L.H=x,...] [--emphasize START:END[:alpha]]
                    [--steer-heads L.H,...] [--max-tokens N] [--temperature T] [--seed S] [--json <out>] [--device auto|cpu|cuda] [--allow-binary]
  attnscope bench --model <dir|org/name[@rev]> --tokens N [--runs R] [--json out] [--device auto|cpu|cuda] [--views]
  attnscope cache [--clear]    show (or empty) the compiled-model cache ($ATTNSCOPE_CACHE, limit $ATTNSCOPE_CACHE_MAX_GB)
  attnscope gpu [status|install] [--registry <url>]
                    status: whether --device auto uses CUDA, and what is missing if not
                    install: downloads onnxruntime's CUDA provider (Linux x64; needs CUDA 13 and cuDNN 9)`;

/** The model shipped with the package (models/default), used when --model is absent. */
export function defaultModelDir(): string {
  return path.join(__dirname, '..', 'models', 'default');
}

/**
 * --model as a checkpoint folder: a folder, or a Hub id org/name[@revision] found in the Hugging
 * Face cache or downloaded into it (progress on stderr; an interrupted download continues next time).
 */
async function resolveModel(spec: string | undefined): Promise<string> {
  if (spec) {
    let shown = '';
    const tty = process.stderr.isTTY;
    const onProgress = (p: SourceProgress) => {
      // On a terminal one line redrawn in place; in a log one line per file and 10%.
      const line = `attnscope: ${formatProgress(p)}`;
      const decile = `${p.file}|${Math.floor((10 * p.doneBytes) / Math.max(1, p.totalBytes))}`;
      if (tty) process.stderr.write(`\r${line}\x1b[K`);
      else if (decile !== shown) process.stderr.write(line + '\n');
      shown = decile;
    };
    let resolved: Awaited<ReturnType<typeof resolveModelSource>>;
    try {
      resolved = await resolveModelSource(spec, { onProgress });
    } finally {
      if (tty && shown) process.stderr.write('\n');
    }
    const { dir, hub } = resolved;
    if (hub?.downloaded) process.stderr.write(`attnscope: ${hub.id}@${hub.commit.slice(0, 12)} is in the Hugging Face cache at ${dir}\n`);
    return dir;
  }
  const d = defaultModelDir();
  if (!fs.existsSync(path.join(d, 'config.json'))) {
    throw new EngineError('MODEL', `no --model given and the embedded default model is missing at ${d}; pass --model <checkpoint folder or org/name>`);
  }
  return d;
}

/** Reads a prompt file as UTF-8; refuses binary content (an executable, an image) unless `allowBinary`. */
export function readPrompt(file: string, allowBinary = false): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError('PROMPT', `${file}: ${code === 'ENOENT' ? 'prompt file not found' : code === 'EISDIR' ? 'is a folder, not a prompt file' : `cannot read (${code})`}`);
  }
  const binary = detectBinaryBytes(bytes);
  if (binary && !allowBinary) {
    throw new EngineError('PROMPT', `${file}: looks like a binary file, not text (${binary.reason}); pass a text prompt, or add --allow-binary to inspect it anyway`);
  }
  let text: string;
  if (binary) {
    text = new TextDecoder('utf-8', { fatal: false }).decode(bytes); // undecodable bytes become U+FFFD
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      const at = firstInvalidUtf8(bytes);
      throw new EngineError('PROMPT', `${file}: not valid UTF-8 (first bad byte at offset ${at}); save the prompt as UTF-8`);
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) throw new EngineError('PROMPT', `${file}: the prompt is empty; write some text to inspect`);
  return text;
}

/** Byte offset where the first ill-formed UTF-8 sequence starts. */
function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return b.length;
}

function write(out: string | undefined, text: string): void {
  if (!out) {
    process.stdout.write(text + '\n');
    return;
  }
  try {
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text + '\n', 'utf8');
    fs.renameSync(tmp, out);
  } catch (e) {
    throw new EngineError('BAD_ARGUMENT', `--json ${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? oneLine(e)})`);
  }
}

/** Options shared by inspect and generate: the model, the device and the interventions. */
const RUN_OPTIONS = {
  model: { type: 'string' },
  json: { type: 'string' },
  mask: { type: 'string' },
  scale: { type: 'string' },
  emphasize: { type: 'string' },
  'steer-heads': { type: 'string' },
  device: { type: 'string' },
  'allow-binary': { type: 'boolean' },
} as const;

type RunOptionValues = { mask?: string; scale?: string; emphasize?: string; 'steer-heads'?: string };

/** The interventions flags, parsed; `check` names the flag of a head the model does not have. */
interface InterventionFlags {
  interventions: Interventions;
  check(model: Model): void;
}

/** Parses the interventions and checks them against the prompt. */
function interventionsFrom(values: RunOptionValues, prompt: string): InterventionFlags {
  const emphasize = values.emphasize ? parseEmphasis(values.emphasize) : undefined;
  const steerHeads = values['steer-heads'] ? parseHeadList(values['steer-heads'], '--steer-heads') : undefined;
  if (steerHeads && !emphasize) throw new EngineError('BAD_ARGUMENT', '--steer-heads needs --emphasize START:END[:alpha]');
  if (emphasize && emphasize.end > prompt.length) {
    throw new EngineError('BAD_ARGUMENT', `--emphasize: end ${emphasize.end} is past the end of the prompt (${prompt.length} UTF-16 code units)`);
  }
  const mask = values.mask ? parseHeadList(values.mask, '--mask') : [];
  const scale = values.scale ? parseScaleList(values.scale) : [];
  const interventions = normalizeInterventions({
    scales: [...scale.map((s) => ({ ...s.head, value: s.value })), ...mask.map((h) => ({ ...h, value: 0 }))],
    emphasis: emphasize ? { ...emphasize, heads: steerHeads ?? 'all' } : null,
    sink: null,
  });
  return {
    interventions,
    check(model) {
      for (const h of mask) checkHead(model, h, '--mask');
      for (const s of scale) checkHead(model, s.head, '--scale');
      for (const h of steerHeads ?? []) checkHead(model, h, '--steer-heads');
    },
  };
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...RUN_OPTIONS, attention: { type: 'string' }, logits: { type: 'boolean' }, top: { type: 'string' }, save: { type: 'string' }, slim: { type: 'boolean' }, rollout: { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new EngineError('BAD_ARGUMENT', `inspect takes exactly one prompt file (got ${positionals.length}); run "attnscope --help"`);
  const device: DeviceRequest = parseDevice(values.device);
  const topK = values.top === undefined ? 10 : parsePositiveInt(values.top, '--top');
  const attention = values.attention === undefined ? 'none' : values.attention === 'all' ? 'all' : parseHeadList(values.attention, '--attention');
  const prompt = readPrompt(positionals[0]!, values['allow-binary'] ?? false);
  const flags = interventionsFrom(values, prompt);
  const interventions = flags.interventions;
  const req: RunRequest = { prompt, attention, logits: values.logits ?? false, topK, interventions };
  const model = await Model.open(await resolveModel(values.model), { device });
  try {
    flags.check(model);
    if (attention !== 'all' && attention !== 'none') for (const h of attention) checkHead(model, h, '--attention');
    if (values.slim && !values.save) throw new EngineError('BAD_ARGUMENT', '--slim needs --save <run.attnrun>');
    if (values.save && fs.existsSync(values.save)) throw new EngineError('BAD_ARGUMENT', `--save ${values.save}: already exists; choose another name (runs are never overwritten)`);
    // --save (with tensors) and --rollout need every head's pattern; the JSON still lists only the --attention heads.
    const needAll = (values.save && !values.slim) || values.rollout;
    const wide = { ...req, ...(values.save ? { allLogits: true } : {}), ...(needAll ? { attention: 'all' as const } : {}) };
    const result = await runInspection(model, wide, (w) => process.stderr.write(`attnscope: warning: ${w}\n`));
    if (values.save) writeRunFile(values.save, savedRunFrom(result, req.prompt, interventions, { tensors: !values.slim, autoSaved: false, decode: (id) => model.tokenizer.decodeToken(id) }));
    const rollout = values.rollout ? rolloutLast({ L: result.model.layers, H: result.model.heads, T: result.tokens.length, patterns: result.patterns }) : undefined;
    if (wide.attention !== req.attention && req.attention !== 'all') {
      const wanted = new Set((req.attention === 'none' || !req.attention ? [] : req.attention).map(headKey));
      result.attentionHeads = result.attentionHeads.filter((h) => wanted.has(headKey(h)));
    }
    write(values.json, JSON.stringify(toJson(result, { rollout })));
  } finally {
    await model.release();
  }
  return 0;
}

async function ablateCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { model: { type: 'string' }, json: { type: 'string' }, device: { type: 'string' }, metric: { type: 'string' }, 'target-id': { type: 'string' }, 'allow-binary': { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new EngineError('BAD_ARGUMENT', `ablate takes exactly one prompt file (got ${positionals.length}); run "attnscope --help"`);
  const device = parseDevice(values.device);
  const metric = values.metric ?? 'logprob';
  if (!isAblationMetric(metric)) throw new EngineError('BAD_ARGUMENT', `--metric: "${metric}" is not one of ${ABLATION_METRICS.join(', ')}`);
  let targetId: number | undefined;
  if (values['target-id'] !== undefined) {
    if (metric !== 'logprob') throw new EngineError('BAD_ARGUMENT', `--target-id applies to --metric logprob only (not ${metric})`);
    const s = values['target-id'];
    targetId = Number(s);
    if (!/^\s*\d+\s*$/.test(s) || !Number.isSafeInteger(targetId)) throw new EngineError('BAD_ARGUMENT', `--target-id: "${s}" must be a token id (a non-negative integer)`);
  }
  const prompt = readPrompt(positionals[0]!, values['allow-binary'] ?? false);
  const model = await Model.open(await resolveModel(values.model), { device });
  try {
    if (targetId !== undefined && targetId >= model.dims.vocabSize) throw new EngineError('BAD_ARGUMENT', `--target-id: ${targetId} is not in the vocabulary (0..${model.dims.vocabSize - 1})`);
    const r = await ablateHeads(model, { prompt, metric, targetId }, { onWarning: (w) => process.stderr.write(`attnscope: warning: ${w}\n`) });
    const f = (v: number) => Number(v.toPrecision(8));
    write(values.json, JSON.stringify({
      metric: r.metric,
      baseline: f(r.baseline),
      ...(r.targetId !== undefined ? { targetId: r.targetId, targetText: r.targetText } : {}),
      heads: r.heads.map((h) => ({ layer: h.layer, head: h.head, value: f(h.value), delta: f(h.delta) })),
      tokens: r.tokens.length,
      device: model.device,
      timings: { loadMs: Math.round(model.loadMs * 10) / 10, runMs: Math.round(r.timings.runMs * 10) / 10 },
    }));
  } finally {
    await model.release();
  }
  return 0;
}

/** A token id flag: a non-negative integer (checked against the vocabulary once the model is open). */
function parseTokenId(s: string, flag: string): number {
  const n = Number(s);
  if (!/^\s*\d+\s*$/.test(s) || !Number.isSafeInteger(n)) throw new EngineError('BAD_ARGUMENT', `${flag}: "${s}" must be a token id (a non-negative integer)`);
  return n;
}

function checkTokenIdFlag(model: Model, id: number, flag: string): void {
  if (id >= model.dims.vocabSize) throw new EngineError('BAD_ARGUMENT', `${flag}: ${id} is not in the vocabulary (0..${model.dims.vocabSize - 1})`);
}

/** `attnscope lens`: the logit lens at one position (src/engine/analysis/lens.ts). */
async function lensCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { model: { type: 'string' }, json: { type: 'string' }, device: { type: 'string' }, position: { type: 'string' }, top: { type: 'string' }, watch: { type: 'string' }, 'allow-binary': { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new EngineError('BAD_ARGUMENT', `lens takes exactly one prompt file (got ${positionals.length}); run "attnscope --help"`);
  const device = parseDevice(values.device);
  const topK = values.top === undefined ? 10 : parsePositiveInt(values.top, '--top');
  let position: number | undefined;
  if (values.position !== undefined) {
    position = Number(values.position);
    if (!/^\s*\d+\s*$/.test(values.position) || !Number.isSafeInteger(position)) throw new EngineError('BAD_ARGUMENT', `--position: "${values.position}" must be a token position (a non-negative integer)`);
  }
  const watch = values.watch === undefined ? [] : values.watch.split(',').map((w) => parseTokenId(w, '--watch'));
  const prompt = readPrompt(positionals[0]!, values['allow-binary'] ?? false);
  const model = await Model.open(await resolveModel(values.model), { device });
  try {
    for (const id of watch) checkTokenIdFlag(model, id, '--watch');
    if (position !== undefined) {
      const T = Math.min((await model.tokenizer.encode(prompt)).length, model.dims.maxPositions);
      if (position >= T) throw new EngineError('BAD_ARGUMENT', `--position: ${position} is past the last token; the prompt has ${T} tokens (positions 0..${T - 1})`);
    }
    const r = await logitLens(model, { prompt, position, topK, watch }, (w) => process.stderr.write(`attnscope: warning: ${w}\n`));
    const f = (v: number) => Number(v.toPrecision(8));
    write(values.json, JSON.stringify({
      position: r.position,
      token: r.tokens[r.position]!.text,
      layers: r.layers.map((l) => ({
        layer: l.layer,
        top: l.top.map((t) => ({ id: t.id, text: t.text, prob: f(t.prob) })),
        ...(watch.length ? { watched: l.watched.map((w) => ({ id: w.id, text: w.text, prob: f(w.prob), logprob: f(w.logprob), logit: f(w.logit), rank: w.rank })) } : {}),
      })),
      tokens: r.tokens.length,
      device: model.device,
      timings: { loadMs: Math.round(model.loadMs * 10) / 10, runMs: Math.round(r.timings.runMs * 10) / 10 },
    }));
  } finally {
    await model.release();
  }
  return 0;
}

/** `attnscope patch`: per-head activation patching from a clean into a corrupt prompt (src/engine/analysis/patching.ts). */
async function patchCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { model: { type: 'string' }, json: { type: 'string' }, device: { type: 'string' }, 'target-id': { type: 'string' }, 'allow-binary': { type: 'boolean' } },
  });
  if (positionals.length !== 2) throw new EngineError('BAD_ARGUMENT', `patch takes a clean and a corrupt prompt file (got ${positionals.length} files); run "attnscope --help"`);
  const device = parseDevice(values.device);
  const targetId = values['target-id'] === undefined ? undefined : parseTokenId(values['target-id'], '--target-id');
  const clean = readPrompt(positionals[0]!, values['allow-binary'] ?? false);
  const corrupt = readPrompt(positionals[1]!, values['allow-binary'] ?? false);
  const model = await Model.open(await resolveModel(values.model), { device });
  try {
    if (targetId !== undefined) checkTokenIdFlag(model, targetId, '--target-id');
    const r = await patchHeads(model, { clean, corrupt, targetId }, { onWarning: (w) => process.stderr.write(`attnscope: warning: ${w}\n`) });
    const f = (v: number) => Number(v.toPrecision(8));
    write(values.json, JSON.stringify({
      clean: f(r.clean),
      corrupt: f(r.corrupt),
      targetId: r.targetId,
      targetText: r.targetText,
      heads: r.heads.map((h) => ({ layer: h.layer, head: h.head, value: f(h.value), effect: h.effect === null ? null : f(h.effect) })),
      tokens: r.cleanTokens.length,
      device: model.device,
      timings: { loadMs: Math.round(model.loadMs * 10) / 10, runMs: Math.round(r.timings.runMs * 10) / 10 },
    }));
  } finally {
    await model.release();
  }
  return 0;
}

async function generateCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...RUN_OPTIONS, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, seed: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new EngineError('BAD_ARGUMENT', `generate takes exactly one prompt file (got ${positionals.length}); run "attnscope --help"`);
  const device = parseDevice(values.device);
  const maxTokens = values['max-tokens'] === undefined ? 32 : parsePositiveInt(values['max-tokens'], '--max-tokens');
  const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
  if (!Number.isFinite(temperature) || temperature < 0 || values.temperature?.trim() === '') throw new EngineError('BAD_ARGUMENT', `--temperature: "${values.temperature}" must be 0 (greedy) or a positive number`);
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new EngineError('BAD_ARGUMENT', `--seed: "${values.seed}" must be a non-negative integer`);
  const prompt = readPrompt(positionals[0]!, values['allow-binary'] ?? false);
  const flags = interventionsFrom(values, prompt);
  const model = await Model.open(await resolveModel(values.model), { device });
  try {
    flags.check(model);
    const r = await generate(model, { prompt, maxTokens, temperature, seed, interventions: flags.interventions });
    const round = (v: number) => Math.round(v * 10) / 10;
    write(values.json, JSON.stringify({
      model: { arch: model.dims.arch, layers: model.dims.layers, heads: model.dims.heads, kvHeads: model.dims.kvHeads, hiddenSize: model.dims.hiddenSize, vocabSize: model.dims.vocabSize },
      device: model.device,
      promptTokens: r.promptTokens.length,
      text: r.text,
      tokens: r.tokens.map((t) => ({ id: t.id, text: t.text, prob: Number(t.prob.toPrecision(6)) })),
      stopReason: r.stopReason,
      settings: { maxTokens, temperature, seed },
      timings: { loadMs: round(model.loadMs), prefillMs: round(r.timings.prefillMs), perTokenMs: round(r.timings.perTokenMs) },
    }));
  } finally {
    await model.release();
  }
  return 0;
}

async function compareCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { json: { type: 'string' }, top: { type: 'string' } } });
  if (positionals.length !== 2) throw new EngineError('BAD_ARGUMENT', `compare takes two .attnrun files (got ${positionals.length}); run "attnscope --help"`);
  const topK = values.top === undefined ? 5 : parsePositiveInt(values.top, '--top');
  const a = await readRunFileAsync(positionals[0]!);
  const b = await readRunFileAsync(positionals[1]!);
  const c = compareRuns(a, b, topK);
  const f = (v: number | null) => (v === null || !Number.isFinite(v) ? null : Number(v.toPrecision(6)));
  const pos = (p: (typeof c.positions)[number]) => ({ a: p.a, b: p.b, text: p.text, kl: f(p.kl), attentionShift: f(p.attentionShift), topA: p.topA.map((t) => ({ id: t.id, prob: f(t.prob) })), topB: p.topB.map((t) => ({ id: t.id, prob: f(t.prob) })), left: p.left, entered: p.entered });
  write(values.json, JSON.stringify({
    a: { file: positionals[0], prompt: a.header.prompt, model: a.header.model.hash, interventions: a.header.interventions, tokens: a.header.tokens.length },
    b: { file: positionals[1], prompt: b.header.prompt, model: b.header.model.hash, interventions: b.header.interventions, tokens: b.header.tokens.length },
    aligned: c.aligned,
    unalignedA: c.unalignedA,
    unalignedB: c.unalignedB,
    notComparable: c.notComparable,
    mostDifferent: c.mostDifferent.map(pos),
    positions: c.positions.map(pos),
    headDeltas: c.headDeltas.map((h) => ({ layer: h.layer, head: h.head, ...Object.fromEntries(METRICS.map((m) => [m, f(h[m])])) })),
  }));
  return 0;
}

async function benchCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { model: { type: 'string' }, tokens: { type: 'string' }, runs: { type: 'string' }, json: { type: 'string' }, device: { type: 'string' }, views: { type: 'boolean' } },
  });
  if (positionals.length) throw new EngineError('BAD_ARGUMENT', `bench takes no positional arguments (got ${positionals.join(' ')})`);
  if (values.tokens === undefined) throw new EngineError('BAD_ARGUMENT', `bench needs --tokens N; run "attnscope --help"`);
  const tokens = parsePositiveInt(values.tokens, '--tokens');
  const runs = values.runs === undefined ? 5 : parsePositiveInt(values.runs, '--runs');
  const device = parseDevice(values.device);
  const result = values.views
    ? await benchViews(await resolveModel(values.model), tokens, runs, device, path.join(__dirname, 'engineProcess.js'))
    : await bench(await resolveModel(values.model), tokens, runs, device);
  write(values.json, JSON.stringify(result));
  return 0;
}

/** `attnscope cache [--clear]`: what the compiled-model cache holds, or empty it. */
function cacheCmd(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { clear: { type: 'boolean' } } });
  if (positionals.length) throw new EngineError('BAD_ARGUMENT', `cache takes no positional arguments (got ${positionals.join(' ')}); run "attnscope --help"`);
  const root = defaultCacheRoot();
  if (values.clear) {
    const r = clearCache(root);
    const kept = r.keptInUse ? `; ${r.keptInUse} in use kept` : '';
    process.stdout.write(`${root}: removed ${r.removed} compiled model${r.removed === 1 ? '' : 's'} (${formatBytes(r.bytes)})${kept}\n`);
    return 0;
  }
  const u = cacheUsage(root);
  const temp = u.tempBytes ? `, ${formatBytes(u.tempBytes)} in unfinished builds` : '';
  process.stdout.write(`${root}: ${u.entries.length} compiled model${u.entries.length === 1 ? '' : 's'}, ${formatBytes(u.bytes)}${temp} (limit ${formatBytes(cacheMaxBytes())})\n`);
  for (const e of u.entries) process.stdout.write(`  ${e.key}  ${formatBytes(e.bytes).padStart(9)}  last used ${new Date(e.lastUsed).toISOString()}\n`);
  return 0;
}

/** `attnscope gpu [status|install]`: onnxruntime's CUDA provider in AttnScope's cache (cudaProvider.ts). */
async function gpuCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { registry: { type: 'string' } } });
  const action = positionals[0] ?? 'status';
  if (positionals.length > 1 || (action !== 'status' && action !== 'install')) {
    throw new EngineError('BAD_ARGUMENT', `gpu takes "status" or "install" (got ${positionals.join(' ')}); run "attnscope --help"`);
  }
  if (values.registry !== undefined && !/^https?:\/\/\S+$/.test(values.registry)) throw new EngineError('BAD_ARGUMENT', `--registry: "${values.registry}" is not an http(s) URL`);
  const store = defaultCudaStore();
  if (action === 'install') {
    if (process.platform !== 'linux' || process.arch !== 'x64') throw new EngineError('RUNTIME', `GPU support is available for Linux x64 only (this is ${process.platform} ${process.arch})`);
    const ac = new AbortController();
    const onInt = () => ac.abort();
    process.once('SIGINT', onInt);
    const tty = process.stderr.isTTY === true;
    let shown = -1;
    const url = tarballUrl(registryUrl(values.registry));
    process.stderr.write(`attnscope: onnxruntime ${CUDA_PROVIDER.ortVersion} CUDA provider (CUDA ${CUDA_PROVIDER.cuda}, cuDNN ${CUDA_PROVIDER.cudnn}) from ${url}\n`);
    try {
      const r = await installCudaProvider({
        storeDir: store,
        registry: values.registry,
        signal: ac.signal,
        onProgress: (got, total) => {
          // a TTY line per percent, redrawn in place; otherwise a line per 10% (per 10 MB when the size is unknown)
          const pct = total ? Math.floor((100 * got) / total) : Math.floor(got / 1e7);
          const step = tty || !total ? pct : Math.floor(pct / 10);
          if (step === shown) return;
          shown = step;
          process.stderr.write(`${tty ? '\r' : ''}attnscope: downloading ${progressText(got, total)}${total ? ` (${pct}%)` : ''}${tty ? '' : '\n'}`);
        },
      });
      if (tty && shown !== -1) process.stderr.write('\n');
      process.stderr.write(`attnscope: ${r.downloaded ? 'verified and installed' : 'already installed'} in ${r.dir}\n`);
    } catch (e) {
      if (tty && shown !== -1) process.stderr.write('\n');
      throw e;
    } finally {
      process.off('SIGINT', onInt);
    }
  }
  const ready = cudaReadinessNow(action === 'install');
  const installed = installedProvider(store);
  if (!ready.blocker) {
    process.stdout.write(`GPU: --device auto uses CUDA (provider ${ready.providerFile}; NVIDIA libraries found: ${ready.libraries?.needed.join(', ')})\n`);
  } else if (ready.blocker === 'system' && ready.libraries?.certain === false) {
    process.stdout.write(`GPU: uncertain, --device auto tries CUDA and falls back to the CPU: ${ready.reason}\n`);
  } else {
    process.stdout.write(`GPU: not available, --device auto uses the CPU: ${ready.reason}\n`);
    if (installed) process.stdout.write(`     the provider libraries are installed in ${store}\n`);
    else if (ready.blocker === 'provider') process.stdout.write(`     'attnscope gpu install' downloads ${(CUDA_PROVIDER.size / 1e6).toFixed(0)} MB from ${registryUrl(values.registry)} into ${store}; CUDA then needs CUDA ${CUDA_PROVIDER.cuda} and cuDNN ${CUDA_PROVIDER.cudnn} on this machine\n`);
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'inspect':
        return await inspect(rest);
      case 'bench':
        return await benchCmd(rest);
      case 'generate':
        return await generateCmd(rest);
      case 'compare':
        return await compareCmd(rest);
      case 'cache':
        return cacheCmd(rest);
      case 'ablate':
        return await ablateCmd(rest);
      case 'lens':
        return await lensCmd(rest);
      case 'patch':
        return await patchCmd(rest);
      case 'gpu':
        return await gpuCmd(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        throw new EngineError('BAD_ARGUMENT', `unknown command "${cmd}"; commands: inspect, generate, compare, ablate, lens, patch, bench, cache, gpu`);
    }
  } catch (e) {
    if (isEngineError(e)) {
      process.stderr.write(`attnscope: ${e.message.split('\n')[0]}\n`);
      return e.code === 'BAD_ARGUMENT' ? 2 : 1;
    }
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`attnscope: ${oneLine(e)}; run "attnscope --help"\n`);
      return 2;
    }
    process.stderr.write(`attnscope: internal error: ${oneLine(e)} (please report this)\n`);
    if (process.env['ATTNSCOPE_DEBUG']) process.stderr.write(String((e as Error).stack) + '\n');
    return 1;
  }
}
