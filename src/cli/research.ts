// The research subcommands: `ablate` (head importance by masking each head), `lens` (the logit
// lens at a position) and `patch` (per-head activation patching from a clean into a corrupt prompt).
import { parseArgs } from 'node:util';
import { EngineError } from '../engine/errors';
import { ABLATION_METRICS, ablateHeads, isAblationMetric } from '../engine/analysis/ablation';
import { logitLens } from '../engine/analysis/lens';
import { patchHeads } from '../engine/analysis/patching';
import { parseDevice, parsePositiveInt } from './args';
import { checkTokenIdFlag, parseTokenId, readPrompt, warn, withModel, write } from './common';

export async function ablateCmd(argv: string[]): Promise<number> {
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
  await withModel(values.model, device, async (model) => {
    if (targetId !== undefined && targetId >= model.dims.vocabSize) throw new EngineError('BAD_ARGUMENT', `--target-id: ${targetId} is not in the vocabulary (0..${model.dims.vocabSize - 1})`);
    const r = await ablateHeads(model, { prompt, metric, targetId }, { onWarning: warn });
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
  });
  return 0;
}



/** `attnscope lens`: the logit lens at one position (src/engine/analysis/lens.ts). */
export async function lensCmd(argv: string[]): Promise<number> {
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
  await withModel(values.model, device, async (model) => {
    for (const id of watch) checkTokenIdFlag(model, id, '--watch');
    if (position !== undefined) {
      const T = Math.min((await model.tokenizer.encode(prompt)).length, model.dims.maxPositions);
      if (position >= T) throw new EngineError('BAD_ARGUMENT', `--position: ${position} is past the last token; the prompt has ${T} tokens (positions 0..${T - 1})`);
    }
    const r = await logitLens(model, { prompt, position, topK, watch }, warn);
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
  });
  return 0;
}

/** `attnscope patch`: per-head activation patching from a clean into a corrupt prompt (src/engine/analysis/patching.ts). */
export async function patchCmd(argv: string[]): Promise<number> {
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
  await withModel(values.model, device, async (model) => {
    if (targetId !== undefined) checkTokenIdFlag(model, targetId, '--target-id');
    const r = await patchHeads(model, { clean, corrupt, targetId }, { onWarning: warn });
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
  });
  return 0;
}

