// `attnscope` command line over the engine, in-process: inspect, generate, compare and bench here; the
// research subcommands in research.ts, cache and gpu in admin.ts, what they share in common.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { EngineError, isEngineError, oneLine } from '../engine/errors';
import type { DeviceRequest } from '../engine/runtime/ortSession';
import { checkHead, runInspection, type RunRequest } from '../engine/run';
import { headKey, METRICS } from '../shared/heads';
import { normalizeInterventions, type Interventions } from '../shared/interventions';
import { parseHeadList, parseScaleList, parseEmphasis, parseDevice, parsePositiveInt } from './args';
import { toJson } from './json';
import { bench, benchViews } from './bench';
import { generate } from '../engine/generate';
import { readRunFileAsync, savedRunFrom, writeRunFile } from '../engine/runs/runFile';
import { compareRuns } from '../engine/analysis/compare';
import { rolloutLast } from '../engine/analysis/rollout';
import type { Model } from '../engine/model';
import { readPrompt, resolveModel, warn, withModel, write } from './common';
import { ablateCmd, lensCmd, patchCmd } from './research';
import { cacheCmd, gpuCmd } from './admin';

export { defaultModelDir, readPrompt } from './common';

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
  attnscope bench --model <dir|org/name[@rev]> --tokens N [--runs R] [--json out] [--device auto|cpu|cuda] [--views] [--no-patterns]
  attnscope cache [--clear]    show (or empty) the compiled-model cache ($ATTNSCOPE_CACHE, limit $ATTNSCOPE_CACHE_MAX_GB)
  attnscope gpu [status|install] [--registry <url>]
                    status: whether --device auto uses CUDA, and what is missing if not
                    install: downloads onnxruntime's CUDA provider (Linux x64; needs CUDA 13 and cuDNN 9)`;

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
  // --save (with tensors) and --rollout need every head's pattern; the JSON still lists only the --attention heads.
  const needAll = (values.save && !values.slim) || values.rollout;
  // Without patterns the run is a kept (qk) inspection, in bounded memory: open only that session.
  const warm = !needAll && attention === 'none' ? 'kept' : 'plain';
  await withModel(values.model, device, async (model) => {
    flags.check(model);
    if (attention !== 'all' && attention !== 'none') for (const h of attention) checkHead(model, h, '--attention');
    if (values.slim && !values.save) throw new EngineError('BAD_ARGUMENT', '--slim needs --save <run.attnrun>');
    if (values.save && fs.existsSync(values.save)) throw new EngineError('BAD_ARGUMENT', `--save ${values.save}: already exists; choose another name (runs are never overwritten)`);
    const wide = { ...req, ...(values.save ? { allLogits: true } : {}), ...(needAll ? { attention: 'all' as const } : {}) };
    const result = await runInspection(model, wide, warn);
    if (values.save) writeRunFile(values.save, savedRunFrom(result, req.prompt, interventions, { tensors: !values.slim, autoSaved: false, decode: (id) => model.tokenizer.decodeToken(id) }));
    const rollout = values.rollout ? rolloutLast({ L: result.model.layers, H: result.model.heads, T: result.tokens.length, patterns: result.patterns }) : undefined;
    if (wide.attention !== req.attention && req.attention !== 'all') {
      const wanted = new Set((req.attention === 'none' || !req.attention ? [] : req.attention).map(headKey));
      result.attentionHeads = result.attentionHeads.filter((h) => wanted.has(headKey(h)));
    }
    write(values.json, JSON.stringify(toJson(result, { rollout })));
  }, warm);
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
  await withModel(values.model, device, async (model) => {
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
  });
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
    options: { model: { type: 'string' }, tokens: { type: 'string' }, runs: { type: 'string' }, json: { type: 'string' }, device: { type: 'string' }, views: { type: 'boolean' }, 'no-patterns': { type: 'boolean' } },
  });
  if (positionals.length) throw new EngineError('BAD_ARGUMENT', `bench takes no positional arguments (got ${positionals.join(' ')})`);
  if (values.tokens === undefined) throw new EngineError('BAD_ARGUMENT', `bench needs --tokens N; run "attnscope --help"`);
  const tokens = parsePositiveInt(values.tokens, '--tokens');
  const runs = values.runs === undefined ? 5 : parsePositiveInt(values.runs, '--runs');
  const device = parseDevice(values.device);
  const result = values.views
    ? await benchViews(await resolveModel(values.model), tokens, runs, device, path.join(__dirname, 'engineProcess.js'))
    : await bench(await resolveModel(values.model), tokens, runs, device, { patterns: !values['no-patterns'] });
  write(values.json, JSON.stringify(result));
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
