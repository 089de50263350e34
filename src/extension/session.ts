// The inspection session: one model in the engine worker, the inspected document, the interventions
// and the last run. Views (decorations, tree, hover, status bar, panel) read from it and listen to
// its change events; commands and the panel change it through its methods.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError, isEngineError, oneLine } from '../engine/errors';
import { detectBinaryText } from '../engine/sources/promptText';
import { formatInspectTrace, type EngineHost } from '../engine/worker/engineHost';
import { wallMs, type ModelInfo, type PatternTile, type TokenDetail } from '../engine/worker/calls';
import type { RunRequest, RunResult } from '../engine/run';
import { logSumExp, tokenStats } from '../shared/logits';
import { PATTERN_TILE_MAX, type Aggregation, type Direction, type HeadView, type InterventionsView, type LensLayerView, type ModelView, type RunView } from '../shared/protocol';
import { headKey, type HeadRef } from '../shared/heads';
import { hasInterventions, interventionProblems, noInterventions, normalizeInterventions, scaleMap, scaleOf, withScale, type Interventions } from '../shared/interventions';
import { readSettings, type Settings } from './settings';
import { runProgressDelayMs, runProgressStep } from './viewLogic';
import { parseHubId } from '../engine/sources/hub';
import { hubIdFromSnapshotDir } from '../engine/sources/hfCache';
import { aggregationWeights, tokenAtOffset } from '../shared/overlay';
import type { ImportanceMetric, ImportanceView } from '../shared/importance';
import { importanceKey, staleReason, type ImportanceKey } from '../shared/importance';
import { patchingStaleReason, type PatchingKey, type PatchingView } from '../shared/patching';
import { addWatched, emptyWatch, lookupOutcome, MAX_WATCHED, type WatchedToken, type WatchStat, type WatchView } from '../shared/watch';

/** Where a clean prompt for activation patching comes from. */
export interface CleanPrompt {
  text: string;
  /** shown with the result: "other.prompt", "selection in notes.md", "run foo.attnrun" */
  label: string;
  /** the open document it was read from (an edit there clears the result) */
  doc?: string;
}

export interface OverlayState {
  /** the run the values come from */
  runId: number;
  token: number;
  direction: Direction;
  values: Float32Array;
}

/** A run of a prompt not run before still going after this long shows a progress notification with Cancel (re-runs: viewLogic.runProgressDelayMs). */
export const RUN_PROGRESS_AFTER_MS = 1000;

export type SessionChange = 'run' | 'interventions' | 'overlay' | 'selection' | 'busy' | 'model' | 'importance' | 'patching' | 'watch';

export class Session implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<SessionChange>();
  readonly onDidChange = this.emitter.event;
  model: ModelInfo | undefined;
  doc: vscode.Uri | undefined;
  docVersion = 0;
  prompt = '';
  /** document offset of the prompt's first character (non-zero when a selection was inspected) */
  base = 0;
  run: RunView | undefined;
  runId = 0;
  lastRunMs = 0;
  /** the interventions every re-run applies (normal form; see shared/interventions.ts) */
  interventions: Interventions = noInterventions();
  selected: HeadRef | null = null;
  busy: string | null = null;
  error: string | null = null;
  /** why the last model failed to open (null once a model opens) */
  modelError: string | null = null;
  overlay: OverlayState | undefined;
  /** head importance by ablation, valid for the prompt, model and interventions in `key` */
  private ranked: { key: ImportanceKey; view: ImportanceView } | undefined;
  /** why the last ablation result was cleared; null when nothing was cleared since */
  importanceNote: string | null = null;
  /** activation patching into the current prompt, valid for the prompts, model and interventions in `key` */
  private patched: { key: PatchingKey; view: PatchingView; cleanDoc?: string } | undefined;
  /** why the last patching result was cleared; null when nothing was cleared since */
  patchingNote: string | null = null;
  /** the tokens the panel follows (cleared when another model opens: ids are per vocabulary) */
  watched: WatchedToken[] = [];
  /** the pair whose logit difference is shown (ids); null = the first two watched */
  watchPairIds: [number, number] | null = null;
  /** the watched tokens' values in the current run and the baseline without interventions */
  watch: WatchView = emptyWatch();
  private watchSeq = 0;
  /** baseline (no interventions) values of watched ids, by model, token limit, ids and prompt */
  private readonly baselineCache = new Map<string, WatchStat[]>();
  private readonly lensCache = new Map<string, LensLayerView[]>();
  /** the interventions the current run was made with */
  private runInterventions: Interventions = noInterventions();
  /** the shown run's last-position logits [V] (watched tokens are read from them) */
  private runLogits: Float32Array | undefined;
  private rolloutCache: { key: string; row: Float32Array } | undefined;
  private agg: { key: string; row: Float32Array } | undefined;
  private modelKey = '';
  private cursorOffset = 0;
  private disposed = false;
  /**
   * the re-run in flight: its ticket, how to stop waiting for it, a promise of its end, what it does;
   * `started` (performance.now()) and `previousMs` (the shown run's time, when it ran the same prompt) feed its notification
   */
  private inflight: { ticket: number; cancel(): void; done: Promise<void>; label: string; started: number; previousMs?: number } | undefined;
  private runTicket = 0;
  /** the stages of the last finished re-run with their ms (also in the output channel) */
  lastRunStages = '';
  /** aborted when a re-run starts: stops the lens runs asked for the run it replaces (see rerun) */
  private lensAbort = new AbortController();
  /** where the last overlay query's time went (for the stage line) */
  private lastOverlayNote = '';
  /** true when a cancelled run replaced the shown run in the engine (see onRunCancelled) */
  keptLost = false;
  /** a document the user chose to inspect although it looks binary (asked once per document) */
  private binaryAllowed: string | undefined;

  constructor(
    readonly engine: EngineHost,
    readonly log: vscode.LogOutputChannel,
    readonly defaultModelDir: string,
  ) {}

  get settings(): Settings {
    return readSettings();
  }

  private fire(what: SessionChange): void {
    if (!this.disposed) this.emitter.fire(what);
  }

  private setBusy(msg: string | null): void {
    this.busy = msg;
    this.fire('busy');
  }

  modelView(): ModelView | null {
    const m = this.model;
    return m ? { name: m.dir === this.defaultModelDir ? 'default model' : hubIdFromSnapshotDir(m.dir) ?? path.basename(m.dir), arch: m.modelType, layers: m.layers, heads: m.heads, kvHeads: m.kvHeads, device: m.device } : null;
  }

  interventionsView(): InterventionsView {
    const { scales, emphasis: e, sink } = this.interventions;
    return { scales, emphasis: e ? { ...e, text: this.prompt.slice(e.start, e.end) } : null, sink };
  }

  hasInterventions(): boolean {
    return hasInterventions(this.interventions);
  }

  private setInterventions(iv: Interventions): void {
    this.interventions = normalizeInterventions(iv);
    this.fire('interventions');
    this.checkImportance();
    this.checkPatching();
  }

  /** The ablation result for the current prompt, model and interventions (undefined when none or out of date). */
  get importance(): ImportanceView | undefined {
    return this.ranked && this.currentKey() && staleReason(this.ranked.key, this.currentKey()!) === null ? this.ranked.view : undefined;
  }

  private currentKey(): ImportanceKey | undefined {
    return this.model ? importanceKey(this.model.hash, this.doc?.toString() ?? '', this.prompt, this.interventions, this.settings.maxTokens) : undefined;
  }

  /** Clears an ablation result whose prompt, model or interventions are no longer current, saying why. */
  private checkImportance(): void {
    if (!this.ranked) return;
    const now = this.currentKey();
    const why = now ? staleReason(this.ranked.key, now) : 'the model changed';
    if (why === null) return;
    this.ranked = undefined;
    this.importanceNote = `The ablation ranking was cleared: ${why} since it was computed. Run "AttnScope: Rank Heads by Ablation" again.`;
    this.fire('importance');
  }

  /** The patching result for the current prompts, model and interventions (undefined when none or out of date). */
  get patching(): PatchingView | undefined {
    if (!this.patched) return undefined;
    const now = this.currentKey();
    return now && patchingStaleReason(this.patched.key, { ...now, clean: this.patched.key.clean }) === null ? this.patched.view : undefined;
  }

  /** Clears a patching result whose prompts, model or interventions are no longer current, saying why. */
  private checkPatching(why?: string): void {
    if (!this.patched) return;
    const now = this.currentKey();
    const reason = why ?? (now ? patchingStaleReason(this.patched.key, { ...now, clean: this.patched.key.clean }) : 'the model changed');
    if (reason === null) return;
    this.patched = undefined;
    this.patchingNote = `The patching result was cleared: ${reason} since it was computed. Run "AttnScope: Patch Heads from a Clean Prompt" again.`;
    this.fire('patching');
  }

  /**
   * Activation patching per head, clean → the inspected prompt (the corrupt run): one run per head
   * in the engine process, each with one head's output copied from the clean run. `signal` cancels
   * between runs. The runs use the plain model (no interventions); the result is kept until either
   * prompt, the model or the interventions change.
   */
  async patchFrom(clean: CleanPrompt, onProgress: (done: number, total: number) => void, signal?: AbortSignal): Promise<PatchingView | undefined> {
    const run = this.run;
    const key = this.currentKey();
    if (!run || !key || !this.doc) throw new EngineError('PROMPT', 'nothing to patch into yet; run "Inspect Attention" on the corrupt prompt first');
    if (run.truncated) throw new EngineError('PROMPT', `the inspected prompt was cut to ${run.tokens.length} tokens (attnscope.maxTokens); patching runs whole prompts: shorten it or raise the limit`);
    if (clean.text.length === 0) throw new EngineError('PROMPT', `the clean prompt (${clean.label}) is empty`);
    const pkey: PatchingKey = { ...key, clean: clean.text };
    const job = this.engine.patch({ clean: clean.text, corrupt: this.request(false).prompt }, onProgress);
    const stop = () => job.stop();
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    const ignored = this.hasInterventions();
    this.setBusy('Patching heads from the clean prompt…');
    try {
      const r = await job.done;
      const now = this.currentKey();
      const why = now ? patchingStaleReason(pkey, { ...now, clean: clean.text }) : 'the model changed';
      if (why !== null) throw new EngineError('CANCELLED', `the patching result was dropped: ${why} while it ran`);
      if (r.tokenCount !== run.tokens.length) throw new EngineError('RUNTIME', `the patching saw ${r.tokenCount} tokens but the run has ${run.tokens.length}; inspect again`);
      const view: PatchingView = {
        targetId: r.targetId,
        targetText: r.targetText,
        clean: r.clean,
        corrupt: r.corrupt,
        heads: r.heads.map((h) => ({ layer: h.layer, head: h.head, value: h.value, effect: h.effect })),
        cleanLabel: clean.label,
        tokens: r.tokenCount,
        runId: this.runId,
        interventionsIgnored: ignored,
      };
      this.patched = { key: pkey, view, cleanDoc: clean.doc };
      this.patchingNote = null;
      this.log.info(`activation patching from ${clean.label} over ${r.heads.length} heads in ${r.timings.runMs.toFixed(0)} ms; log p(${JSON.stringify(r.targetText)}) clean ${r.clean.toFixed(4)}, corrupt ${r.corrupt.toFixed(4)}`);
      this.fire('patching');
      return view;
    } finally {
      signal?.removeEventListener('abort', stop);
      this.setBusy(null);
    }
  }

  // ------------------------------------------------------------ watched tokens

  /** Pins a token by id (its text comes from the model's vocabulary). */
  async watchToken(id: number): Promise<WatchedToken> {
    if (!this.model) throw new EngineError('MODEL', 'no model is open; inspect a prompt first');
    if (!Number.isInteger(id) || id < 0 || id >= this.model.vocabSize) throw new EngineError('BAD_ARGUMENT', `token id ${id} is not in the vocabulary (0..${this.model.vocabSize - 1})`);
    const t = (await this.engine.lookupToken({ id })).pieces[0]!;
    this.addWatched(t);
    await this.refreshWatch();
    return t;
  }

  /**
   * Pins a token by its text ("#123" = by id). Text that is several tokens, or ambiguous (the text
   * and the text after a space are two different tokens), is not pinned: the answer says why and
   * lists the tokens to choose from.
   */
  async watchText(text: string): Promise<{ added: WatchedToken | null; message: string | null; candidates: WatchedToken[] }> {
    const byId = /^\s*#(\d+)\s*$/.exec(text);
    if (byId) return { added: await this.watchToken(Number(byId[1])), message: null, candidates: [] };
    if (!this.model) throw new EngineError('MODEL', 'no model is open; inspect a prompt first');
    if (text.length === 0) throw new EngineError('BAD_ARGUMENT', 'type the token to watch (e.g. " table", with its leading space, or #id)');
    const o = lookupOutcome(text, await this.engine.lookupToken({ text }));
    if ('message' in o) return { added: null, message: o.message, candidates: o.candidates };
    this.addWatched(o.token);
    await this.refreshWatch();
    return { added: o.token, message: null, candidates: [] };
  }

  private addWatched(t: WatchedToken): void {
    try {
      this.watched = addWatched(this.watched, t);
    } catch {
      throw new EngineError('BAD_ARGUMENT', `at most ${MAX_WATCHED} tokens can be watched; unpin one first`);
    }
  }

  async unwatchToken(id: number): Promise<void> {
    this.watched = this.watched.filter((t) => t.id !== id);
    if (this.watchPairIds?.includes(id)) this.watchPairIds = null;
    this.lensCache.clear();
    await this.refreshWatch();
  }

  /** The pair whose logit difference is shown (both must be watched); null = the first two. */
  setWatchPair(pair: [number, number] | null): void {
    if (pair && (pair[0] === pair[1] || !pair.every((id) => this.watched.some((t) => t.id === id)))) throw new EngineError('BAD_ARGUMENT', 'the logit difference needs two different watched tokens');
    this.watchPairIds = pair;
    this.watch = { ...this.watch, pair };
    this.fire('watch');
  }

  /**
   * The watched ids' values at the last position of the prompt, with or without the run's
   * interventions: from the shown run's own last logits when it is that run (no extra forward pass;
   * the same numbers as its next-token list), else from a logit-lens run (its last layer).
   */
  private async watchStats(ids: number[], iv: Interventions | undefined, tokens: number): Promise<WatchStat[]> {
    const own = this.runLogits;
    if (own && this.run?.tokens.length === tokens && JSON.stringify(iv ?? noInterventions()) === JSON.stringify(this.runInterventions)) {
      const lse = logSumExp(own, 0, own.length);
      return ids.map((id) => tokenStats(own, 0, own.length, id, lse));
    }
    const r = await this.engine.lens({ prompt: this.request(false).prompt, topK: 1, watch: ids, maxTokens: this.settings.maxTokens || undefined, ...(iv ? { interventions: iv } : {}) }, this.lensAbort.signal);
    if (r.tokenCount !== tokens) throw new EngineError('RUNTIME', `the watched-token run saw ${r.tokenCount} tokens but the run has ${tokens}; inspect again`);
    return r.layers[r.layers.length - 1]!.watched.map((w) => ({ prob: w.prob, logprob: w.logprob, logit: w.logit, rank: w.rank }));
  }

  /** Recomputes the watched tokens' values for the current run (and the cached clean baseline). */
  async refreshWatch(): Promise<void> {
    const seq = ++this.watchSeq;
    const run = this.run;
    const pair = this.watchPairIds;
    const steered = hasInterventions(this.runInterventions);
    const keep = this.watch.runId === run?.runId ? new Map(this.watch.tokens.map((t) => [t.id, t])) : new Map();
    const pending = this.watched.map((t) => ({ ...t, current: keep.get(t.id)?.current ?? null, baseline: keep.get(t.id)?.baseline ?? null }));
    if (!run || !this.model || this.watched.length === 0) {
      this.watch = { tokens: pending, pair, runId: null, steered, error: null };
      this.fire('watch');
      return;
    }
    this.watch = { tokens: pending, pair, runId: null, steered, error: null };
    this.fire('watch');
    const ids = this.watched.map((t) => t.id);
    try {
      const current = await this.watchStats(ids, this.runInterventions, run.tokens.length);
      let baseline = current;
      if (steered) {
        const key = `${this.model.hash}|${this.settings.maxTokens}|${ids.join(',')}|${this.prompt}`;
        baseline = this.baselineCache.get(key) ?? (await this.watchStats(ids, undefined, run.tokens.length));
        this.baselineCache.delete(key);
        this.baselineCache.set(key, baseline);
        while (this.baselineCache.size > 8) this.baselineCache.delete(this.baselineCache.keys().next().value!);
      }
      if (seq !== this.watchSeq || run !== this.run) return;
      this.watch = { tokens: this.watched.map((t, i) => ({ ...t, current: current[i]!, baseline: baseline[i]! })), pair, runId: run.runId, steered, error: null };
    } catch (e) {
      if (seq !== this.watchSeq || run !== this.run) return;
      if (isEngineError(e) && e.code === 'CANCELLED') return;
      this.watch = { tokens: pending, pair, runId: null, steered, error: `Could not compute the watched tokens: ${oneLine(e)}` };
      this.log.warn(this.watch.error!);
    }
    this.fire('watch');
  }

  /**
   * The logit lens of the current run at a token (with the run's interventions): every layer's
   * top 10 and the watched tokens. Cached per run, position and watch list.
   */
  async lensAt(runId: number, position: number): Promise<LensLayerView[]> {
    // A lens is a forward pass of its own, and the engine runs one at a time: asked while a re-run is
    // in flight, it is for the run being replaced (the new run's overlay brings a new request), and
    // would run after the re-run for nothing and delay what comes next.
    while (this.inflight) await this.inflight.done;
    const run = this.run;
    if (!run || run.runId !== runId) throw new EngineError('CANCELLED', 'that run was replaced by a newer one');
    if (!Number.isInteger(position) || position < 0 || position >= run.tokens.length) throw new EngineError('BAD_ARGUMENT', `token ${position} is outside the run (0..${run.tokens.length - 1})`);
    const ids = this.watched.map((t) => t.id);
    const key = `${runId}|${position}|${ids.join(',')}`;
    const hit = this.lensCache.get(key);
    if (hit) return hit;
    const r = await this.engine.lens({ prompt: this.request(false).prompt, position, topK: 10, watch: ids, maxTokens: this.settings.maxTokens || undefined, interventions: this.runInterventions }, this.lensAbort.signal);
    if (r.tokenCount !== run.tokens.length) throw new EngineError('RUNTIME', `the logit lens saw ${r.tokenCount} tokens but the run has ${run.tokens.length}; inspect again`);
    const layers: LensLayerView[] = r.layers.map((l) => ({ layer: l.layer, top: l.top.map((t) => ({ id: t.id, text: t.text, prob: t.prob })), watched: l.watched.map((w) => ({ id: w.id, prob: w.prob, logit: w.logit, rank: w.rank })) }));
    this.lensCache.set(key, layers);
    while (this.lensCache.size > 32) this.lensCache.delete(this.lensCache.keys().next().value!);
    return layers;
  }

  /**
   * Ranks every head by ablation on the current prompt with the current interventions (one masked
   * run per head in the engine process). `signal` cancels between head runs. The result is kept
   * until the prompt, model or interventions change.
   */
  async ablate(metric: ImportanceMetric, onProgress: (done: number, total: number) => void, signal?: AbortSignal): Promise<ImportanceView | undefined> {
    const run = this.run;
    const key = this.currentKey();
    if (!run || !key || !this.doc) throw new EngineError('PROMPT', 'nothing to rank yet; run "Inspect Attention" on a prompt first');
    const top1 = run.next[0];
    const job = this.engine.ablate(
      {
        prompt: this.request(false).prompt,
        metric,
        interventions: this.interventions,
        maxTokens: this.settings.maxTokens || undefined,
        // the current run's top-1: what the panel and the hover show as the prediction
        ...(metric === 'logprob' && top1 ? { targetId: top1.id } : {}),
      },
      onProgress,
    );
    const stop = () => job.stop();
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    this.setBusy(`Ranking heads by ablation (${metric})…`);
    try {
      const r = await job.done;
      const now = this.currentKey();
      if (!now || staleReason(key, now) !== null) {
        throw new EngineError('CANCELLED', `the ablation result was dropped: ${now ? staleReason(key, now) : 'the model changed'} while it ran`);
      }
      if (r.tokenCount !== run.tokens.length) throw new EngineError('RUNTIME', `the ablation saw ${r.tokenCount} tokens but the run has ${run.tokens.length}; inspect again`);
      const view: ImportanceView = { metric, baseline: r.baseline, targetText: r.targetText ?? null, heads: r.heads.map((h) => ({ layer: h.layer, head: h.head, value: h.value, delta: h.delta })), runId: this.runId };
      this.ranked = { key, view };
      this.importanceNote = null;
      this.log.info(`ablation (${metric}) over ${r.heads.length} heads in ${r.timings.runMs.toFixed(0)} ms; baseline ${r.baseline.toFixed(4)}`);
      this.fire('importance');
      return view;
    } finally {
      signal?.removeEventListener('abort', stop);
      this.setBusy(null);
    }
  }

  /** Opens the configured model in the engine when it is not open yet (or the setting changed). */
  async ensureModel(): Promise<ModelInfo> {
    const s = this.settings;
    return this.openModel(s.model || this.defaultModelDir);
  }

  /**
   * Opens a model in the engine: a checkpoint folder or a Hub id org/name[@revision], which the
   * engine finds in the Hugging Face cache or downloads (progress in the notification, which can
   * cancel it). Select Model tries a model this way before writing the setting, so one that fails
   * to open never stays selected. On failure the previous model's numbers are no longer shown as
   * current: `error` says what failed until a model opens.
   */
  async openModel(spec: string): Promise<ModelInfo> {
    const s = this.settings;
    const key = `${spec}|${s.device}`;
    if (this.model && this.modelKey === key) return this.model;
    const hubId = parseHubId(spec) && !fs.existsSync(spec) ? spec : undefined;
    const name = spec === this.defaultModelDir ? 'the default model' : hubId ?? path.basename(spec);
    this.setBusy(`Loading ${name}…`);
    try {
      const info = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'AttnScope', cancellable: !!hubId },
        async (progress, token) => {
          progress.report({ message: hubId ? `opening ${hubId} (downloaded into the Hugging Face cache when it is not there yet)…` : `loading ${name} (first open converts the weights)…` });
          const abort = new AbortController();
          const sub = token.onCancellationRequested(() => abort.abort());
          try {
            return await this.engine.open({ modelDir: spec, device: s.device, cacheRoot: s.cacheRoot }, (m) => progress.report({ message: m }), abort.signal);
          } finally {
            sub.dispose();
          }
        },
      );
      this.log.info(`model ${info.dir}: ${info.modelType}, ${info.layers}×${info.heads} heads, device ${info.device}${info.deviceNote ? ` (${info.deviceNote})` : ''}, load ${info.loadMs.toFixed(0)} ms`);
      if (this.model && this.model.hash !== info.hash) this.resetState();
      this.model = info;
      this.modelKey = key;
      this.error = null;
      this.modelError = null;
      this.fire('model');
      this.checkImportance();
      this.checkPatching();
      return info;
    } catch (e) {
      // The engine released the previous model before failing to open this one, so the next call
      // must re-open even when the setting goes back to the previous model's key.
      this.modelKey = '';
      if (!(isEngineError(e) && e.code === 'CANCELLED')) {
        this.error = this.modelError = e instanceof Error ? e.message : String(e);
        this.fire('busy');
      }
      throw e;
    } finally {
      this.setBusy(null);
    }
  }

  private resetState(): void {
    this.interventions = noInterventions();
    this.selected = null;
    this.run = undefined;
    this.agg = undefined;
    this.overlay = undefined;
    this.rolloutCache = undefined;
    // Token ids belong to a vocabulary: another model's ids mean other tokens.
    this.watched = [];
    this.watchPairIds = null;
    this.watch = emptyWatch();
    this.baselineCache.clear();
    this.lensCache.clear();
  }

  /** Inspects a document (or re-runs the current one with the current interventions). */
  async inspect(doc: vscode.TextDocument, range?: vscode.Range): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      throw new EngineError('MODEL', 'AttnScope runs models only in trusted workspaces; trust this folder (Manage Workspace Trust) to inspect');
    }
    const text = doc.getText(range);
    if (text.trim().length === 0) throw new EngineError('PROMPT', `${path.basename(doc.fileName)}${range ? ' (selection)' : ''} is empty; write a prompt to inspect`);
    const binary = detectBinaryText(text);
    if (binary && this.binaryAllowed !== doc.uri.toString()) {
      // A binary file tokenizes into thousands of meaningless tokens: ask before running the model on it.
      const pick = await vscode.window.showWarningMessage(`AttnScope: ${path.basename(doc.fileName)} looks like a binary file (${binary.reason}). Inspect it anyway?`, { modal: true }, 'Inspect Anyway');
      if (pick !== 'Inspect Anyway') throw new EngineError('CANCELLED', 'not a text prompt');
      this.binaryAllowed = doc.uri.toString();
    }
    const base = range ? doc.offsetAt(range.start) : 0;
    if (this.interventions.emphasis && (this.doc?.toString() !== doc.uri.toString() || base !== this.base || text !== this.prompt)) {
      // The span was on another text; the other interventions carry over (shown in the panel and the Heads view).
      this.interventions = { ...this.interventions, emphasis: null };
      this.fire('interventions');
    }
    this.doc = doc.uri;
    this.docVersion = doc.version;
    this.prompt = text;
    this.base = base;
    await this.rerun();
  }

  /**
   * Runs the model on the current prompt with the current interventions. A run still going after
   * runProgressDelayMs (1 s; 1.5× this prompt's last run for a re-run, at most 3 s) shows a notification with Cancel (see showRunProgress); `cancelRun()`
   * stops waiting for it: the previous run's views stay, and the interventions go back to that
   * run's. Each finished run logs its stages in ms (the output channel) so the time a re-run costs
   * in the editor can be compared with `attnscope bench --views`, which times the engine run and
   * the overlay query only.
   */
  async rerun(): Promise<void> {
    if (!this.doc) return;
    const stages = new StageTimer();
    // Lens runs for the run being replaced that the engine has not started yet are dropped: they
    // would queue this run behind forward passes nobody will look at.
    this.lensAbort.abort();
    this.lensAbort = new AbortController();
    await this.ensureModel();
    stages.mark('model');
    // The last position's logits come back too (V floats): the watched tokens' values are read from them.
    const req = { ...this.request(true), logits: true };
    const ticket = ++this.runTicket;
    let cancel!: () => void;
    const abort = new AbortController();
    const cancelled = new Promise<'cancelled'>((resolve) => (cancel = () => {
      abort.abort();
      resolve('cancelled');
    }));
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const label = this.runLabel();
    const t0 = performance.now();
    this.inflight = { ticket, cancel, done, label, started: t0, previousMs: this.run && this.run.prompt === this.prompt ? this.lastRunMs : undefined };
    this.setBusy(label);
    const progressTimer = setTimeout(() => this.showRunProgress(ticket), runProgressDelayMs(this.inflight.previousMs));
    try {
      const engineRun = this.engine.inspect(req, true, abort.signal);
      const outcome = await Promise.race([engineRun, cancelled]);
      if (outcome === 'cancelled') {
        this.onRunCancelled(ticket, engineRun);
        return;
      }
      const { result, warnings, runId } = outcome;
      stages.mark('inspect', formatInspectTrace(outcome.trace, result.timings));
      for (const w of warnings) this.log.warn(w);
      this.error = null;
      this.runId = runId;
      this.run = toRunView(result, runId, this.prompt, this.interventions);
      this.runLogits = result.lastLogits;
      this.runInterventions = req.interventions ?? noInterventions();
      this.lastRunMs = performance.now() - t0;
      this.agg = undefined;
      this.rolloutCache = undefined;
      this.keptLost = false;
      await vscode.commands.executeCommand('setContext', 'attnscope.hasRun', true);
      this.checkImportance();
      this.checkPatching();
      if (this.ranked) this.ranked.view = { ...this.ranked.view, runId };
      if (this.patched) this.patched.view = { ...this.patched.view, runId };
      stages.mark('view');
      // The new run's overlay is asked for before the views hear of the run, so the editor goes
      // from the previous run's tint straight to this one's: a 'run' without its overlay would
      // clear the tint first, and each repaint re-renders every tinted line of the editor.
      try {
        await this.refreshOverlay(stages, false);
      } finally {
        this.fire('run');
        stages.mark('views(run)');
      }
      if (this.overlay?.runId === runId && this.run?.runId === runId) {
        this.fire('overlay');
        stages.mark('views(overlay)');
      }
      if (this.watched.length) {
        await this.refreshWatch();
        stages.mark('watched');
      }
      this.lastRunStages = `${result.tokens.length} tokens; ${stages.summary()}`;
      this.log.info(`run ${runId}: ${this.lastRunStages}`);
      if (result.truncated || result.truncatedChars) {
        const dropped = result.truncatedExact === false ? `the last ${result.truncatedChars} characters were not tokenized` : `${result.truncated} dropped`;
        vscode.window.showWarningMessage(`AttnScope: the prompt was cut to ${result.tokens.length} tokens (${dropped}; setting attnscope.maxTokens, the model's limit or free memory).`);
      }
    } catch (e) {
      if (isEngineError(e) && e.code === 'CANCELLED') return;
      if (ticket !== this.runTicket) return; // a newer run is in flight; its outcome is what counts
      this.error = e instanceof Error ? e.message : String(e);
      this.fire('busy');
      throw e;
    } finally {
      clearTimeout(progressTimer);
      ended();
      if (this.inflight?.ticket === ticket) {
        this.inflight = undefined;
        this.setBusy(null);
      }
    }
  }

  /** What the run in flight is doing, for the status bar, the panel and the progress notification. */
  private runLabel(): string {
    const run = this.run;
    const size = run && run.prompt === this.prompt ? `${run.tokens.length.toLocaleString('en-US')} tokens` : `${this.prompt.length.toLocaleString('en-US')} characters`;
    return `Running ${size}…`;
  }

  /** The re-run in flight (undefined when none). */
  get running(): boolean {
    return this.inflight !== undefined;
  }

  /**
   * Stops waiting for the run in flight: the previous run's views stay, its interventions come back
   * (the change that started the run did not happen) and cursor moves keep being answered from the
   * previous run. False when no run was in flight.
   */
  cancelRun(): boolean {
    const f = this.inflight;
    if (!f) return false;
    f.cancel();
    return true;
  }

  /**
   * A notification with Cancel for a run that is still going after runProgressDelayMs: a
   * notification, not the window's status area, because only notifications offer Cancel (the
   * status bar item says "Running N tokens…" all the same). It closes when the run ends.
   */
  private showRunProgress(ticket: number): void {
    const f = this.inflight;
    if (!f || f.ticket !== ticket) return;
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'AttnScope', cancellable: true }, async (progress, token) => {
      // No animation (see runProgressStep): a still bar, and the seconds counted once a second.
      const report = () => progress.report(runProgressStep(f.label, performance.now() - f.started, f.previousMs));
      report();
      const tick = setInterval(report, 1000);
      const sub = token.onCancellationRequested(() => {
        if (this.inflight?.ticket === ticket) this.cancelRun();
      });
      try {
        await f.done;
      } finally {
        clearInterval(tick);
        sub.dispose();
      }
    });
  }

  /**
   * After Cancel: the interventions go back to the shown run's (when the prompt is still its
   * prompt). The engine cannot stop an inspection part way through a forward pass; it hears the stop
   * while the pass runs and drops the result, so the shown run stays queryable. Only when the pass
   * had already finished before the stop arrived does the cancelled run replace the engine's kept
   * run, after which the shown run can no longer be queried: say so then.
   */
  private onRunCancelled(ticket: number, engineRun: Promise<unknown>): void {
    this.log.info(`run cancelled${this.run ? `; run ${this.run.runId} stays on screen` : ''}`);
    if (this.run && this.prompt === this.run.prompt && JSON.stringify(this.interventions) !== JSON.stringify(this.runInterventions)) this.setInterventions(this.runInterventions);
    // The re-run stopped the lens asked for the run that stays: the overlay again makes the panel
    // ask for it again (a lens it already shows is not asked for).
    if (this.overlay) this.fire('overlay');
    // and the watched tokens' lens run, when the re-run stopped it before it finished
    if (this.run && this.watched.length && this.watch.runId !== this.run.runId) void this.refreshWatch().catch(() => undefined);
    engineRun.then(
      (late) => {
        const r = late as { runId: number };
        // Replaced in the engine by the cancelled run, and nothing newer was started since.
        if (ticket !== this.runTicket || !this.run || r.runId === this.run.runId) return;
        this.keptLost = true;
        this.error = 'The cancelled run could not be stopped inside the engine; it finished there and replaced the run on screen, whose overlay and patterns can no longer be computed: re-run (edit the prompt or Inspect Attention) to continue.';
        this.log.warn(this.error);
        this.fire('busy');
      },
      () => undefined,
    );
  }

  /**
   * The inspection request for the current prompt, with or without the current interventions.
   * No `allLogits`: the worker keeps the run's final hidden states and computes every position's
   * logits only when the run is saved as an .attnrun (runs/runsFeature.ts), so interactive re-runs
   * skip the T×V product.
   */
  request(withInterventions: boolean): RunRequest {
    const req: RunRequest = { prompt: this.prompt.length > 0 ? this.prompt : ' ', topK: 10, maxTokens: this.settings.maxTokens || undefined };
    return withInterventions ? { ...req, interventions: this.interventions } : req;
  }

  /** Per-head weights [L*H]; rollout uses every enabled head. */
  private weights(): Float32Array {
    const m = this.model!;
    const mode = this.settings.aggregation;
    return aggregationWeights(m.layers, m.heads, scaleMap(this.interventions), mode === 'rollout' ? 'mean' : mode, this.selected);
  }

  /**
   * Row q of the attention rollout over the enabled heads (engine query on the kept run, cached for
   * the last token asked). Rollout is a from-row: where token q's top-layer representation came from.
   */
  async rolloutRow(q: number): Promise<Float32Array | undefined> {
    if (!this.run || !this.model) return undefined;
    const key = `${this.runId}|${q}|${JSON.stringify(this.interventions.scales)}`;
    if (this.rolloutCache?.key === key) return this.rolloutCache.row;
    const { row } = await this.engine.query(this.runId, { what: 'rollout', q, weights: this.weights() });
    this.rolloutCache = { key, row: row! };
    return row;
  }

  /**
   * The overlay for token q under the current settings: row q (from) or column q (to) of the
   * aggregate over the weighted heads, [T], computed by the engine from the kept run without forming
   * the [T, T] aggregate (cached for the last token asked).
   */
  private async overlayRow(q: number, direction: Direction): Promise<Float32Array | undefined> {
    if (!this.run || !this.model) return undefined;
    const mode: Aggregation = this.settings.aggregation;
    const key = `${this.runId}|${mode}|${mode === 'mean' || !this.selected ? '' : headKey(this.selected)}|${JSON.stringify(this.interventions.scales)}|${q}|${direction}`;
    if (this.agg?.key === key) return this.agg.row;
    const t0 = performance.now();
    const sent = wallMs();
    const { row, engineMs, receivedAt } = await this.engine.query(this.runId, { what: 'overlay', q, direction, weights: this.weights() });
    const back = wallMs();
    this.lastOverlayNote = `token ${q} ${direction}; ${(performance.now() - t0).toFixed(0)} ms: to engine ${receivedAt !== undefined ? (receivedAt - sent).toFixed(0) : '?'}, in the engine ${engineMs?.toFixed(0)}, back ${receivedAt !== undefined && engineMs !== undefined ? (back - receivedAt - engineMs).toFixed(0) : '?'}`;
    this.agg = { key, row: row! };
    return row;
  }

  /** Sets the cursor (UTF-16 offset into the document) and recomputes the overlay without re-running. */
  async setCursor(docOffset: number): Promise<void> {
    this.cursorOffset = docOffset - this.base;
    await this.refreshOverlay();
  }

  /** The token at a document offset. */
  tokenAt(docOffset: number): number | undefined {
    return this.run ? tokenAtOffset(this.run.tokens, docOffset - this.base) : undefined;
  }

  /** Recomputes the overlay for the cursor token; `announce` false: set it without the 'overlay' event (rerun announces it after 'run'). */
  async refreshOverlay(stages?: StageTimer, announce = true): Promise<void> {
    this.lastOverlayNote = '';
    const run = this.run;
    if (!run) return;
    const q = tokenAtOffset(run.tokens, this.cursorOffset);
    if (q === undefined) return;
    const rollout = this.settings.aggregation === 'rollout';
    // Rollout is a from-row whatever the direction setting says (the hover and status bar say so).
    const direction = rollout ? 'from' : this.settings.direction;
    let values: Float32Array | undefined;
    try {
      values = rollout ? await this.rolloutRow(q) : await this.overlayRow(q, direction);
    } catch (e) {
      if (isEngineError(e) && e.code === 'CANCELLED') return;
      throw e;
    }
    stages?.mark('overlay query', this.lastOverlayNote || undefined);
    if (!values || run !== this.run) return;
    this.overlay = { runId: run.runId, token: q, direction, values: values.slice() };
    if (!announce) return;
    this.fire('overlay');
    stages?.mark('views(overlay)');
  }

  async tokenDetail(q: number): Promise<TokenDetail | undefined> {
    if (!this.run || !this.model) return undefined;
    if (this.settings.aggregation === 'rollout') {
      // Rollout has no per-head share: the items are the tokens with the largest rollout values.
      const row = await this.rolloutRow(q);
      if (!row) return undefined;
      const order = Array.from(row.keys()).filter((k) => row[k]! > 0).sort((a, b) => row[b]! - row[a]!).slice(0, 5);
      return { q, direction: 'from', items: order.map((k) => ({ token: k, value: row[k]!, heads: [] })) };
    }
    const { detail } = await this.engine.query(this.runId, { what: 'tokenDetail', q, direction: this.settings.direction, weights: this.weights(), top: 5 });
    return detail;
  }

  async pattern(h: HeadRef): Promise<Float32Array | undefined> {
    if (!this.run) return undefined;
    return (await this.engine.query(this.runId, { what: 'pattern', layer: h.layer, head: h.head })).matrix;
  }

  /**
   * A window of one head's pattern of run `runId` (exact when it fits in size × size cells, else
   * max-pooled blocks; see the engine's patternTile). The window is checked against the run here:
   * the panel's request is untrusted.
   */
  async patternTile(h: HeadRef, runId: number, w: { q0: number; q1: number; k0: number; k1: number }, size: number): Promise<PatternTile> {
    // A window of a long run costs about as much engine time as the run itself and blocks the
    // engine's event loop (the overlay query would wait behind it): while a re-run is in flight,
    // wait for it; its new run makes this window stale (the panel then asks for the new run's).
    while (this.inflight) await this.inflight.done;
    const run = this.run;
    if (!run) throw new EngineError('PROMPT', 'no run to show; inspect a prompt first');
    if (runId !== run.runId) throw new EngineError('CANCELLED', 'that run was replaced by a newer one');
    this.checkHead(h);
    const T = run.tokens.length;
    const ok = (a: number, b: number) => Number.isInteger(a) && Number.isInteger(b) && 0 <= a && a < b && b <= T;
    if (!ok(w.q0, w.q1) || !ok(w.k0, w.k1)) throw new EngineError('BAD_ARGUMENT', `pattern window queries ${w.q0}..${w.q1} × keys ${w.k0}..${w.k1} is not inside the run's ${T} tokens`);
    if (!Number.isInteger(size) || size < 1 || size > PATTERN_TILE_MAX) throw new EngineError('BAD_ARGUMENT', `pattern tile size ${size} must be a whole number from 1 to ${PATTERN_TILE_MAX}`);
    const { tile } = await this.engine.query(run.runId, { what: 'patternTile', layer: h.layer, head: h.head, ...w, size });
    if (!tile) throw new EngineError('RUNTIME', 'the engine answered the pattern window with no tile');
    return tile;
  }

  checkHead(h: HeadRef): void {
    const m = this.model;
    if (!m || !Number.isInteger(h.layer) || !Number.isInteger(h.head) || h.layer < 0 || h.head < 0 || h.layer >= m.layers || h.head >= m.heads) {
      throw new EngineError('BAD_ARGUMENT', `head ${headKey(h)} does not exist${m ? ` (layers 0..${m.layers - 1}, heads 0..${m.heads - 1})` : ''}`);
    }
  }

  /** Checks a changed interventions value against the open model and the prompt, then applies it. */
  private async apply(iv: Interventions): Promise<void> {
    const m = this.model;
    if (m) {
      const problems = interventionProblems(iv, m.layers, m.heads, this.prompt.length);
      if (problems.length) throw new EngineError('BAD_ARGUMENT', problems[0]!);
    }
    this.setInterventions(iv);
    await this.rerun();
  }

  select(h: HeadRef | null): void {
    if (h) this.checkHead(h);
    this.selected = h;
    this.fire('selection');
    if (this.settings.aggregation !== 'mean') void this.refreshOverlay();
  }

  /** Sets the output scale of heads (0 masks) and re-runs. */
  async setScale(heads: HeadRef[], value: number): Promise<void> {
    if (!Number.isFinite(value) || value < 0 || value > 100) throw new EngineError('BAD_ARGUMENT', `scale ${value} must be a number between 0 and 100`);
    for (const h of heads) this.checkHead(h);
    await this.apply(withScale(this.interventions, heads, value));
  }

  scaleOf(h: HeadRef): number {
    return scaleOf(this.interventions, h);
  }

  async toggleMask(h: HeadRef): Promise<void> {
    await this.setScale([h], this.scaleOf(h) === 0 ? 1 : 0);
  }

  /** Emphasizes a span given as document offsets (PASTA). */
  async emphasize(docStart: number, docEnd: number, alpha: number, heads: HeadRef[] | 'all'): Promise<void> {
    const start = docStart - this.base;
    const end = docEnd - this.base;
    if (!(alpha > 0) || !Number.isFinite(alpha) || alpha > 1e6) throw new EngineError('BAD_ARGUMENT', `alpha ${alpha} must be a positive number (e.g. 0.01)`);
    if (!(end > start) || start < 0 || end > this.prompt.length) throw new EngineError('BAD_ARGUMENT', 'select a span inside the inspected prompt to emphasize first');
    if (heads !== 'all') for (const h of heads) this.checkHead(h);
    await this.apply({ ...this.interventions, emphasis: { start, end, alpha, heads } });
  }

  async clearEmphasis(): Promise<void> {
    await this.apply({ ...this.interventions, emphasis: null });
  }

  async setSink(heads: HeadRef[], value: number): Promise<void> {
    if (!(value > 0) || !Number.isFinite(value) || value > 100) throw new EngineError('BAD_ARGUMENT', `sink scale ${value} must be a positive number (1 = unchanged)`);
    for (const h of heads) this.checkHead(h);
    await this.apply({ ...this.interventions, sink: value === 1 || heads.length === 0 ? null : { heads, value } });
  }

  async reset(): Promise<void> {
    await this.apply(noInterventions());
  }

  /** Keeps the emphasis span on the same text while the user edits the document. */
  onDocumentEdited(e: vscode.TextDocumentChangeEvent): void {
    if (this.patched?.cleanDoc && e.document.uri.toString() === this.patched.cleanDoc && e.contentChanges.length) this.checkPatching('the clean prompt changed');
    if (!this.interventions.emphasis || e.document.uri.toString() !== this.doc?.toString()) return;
    const em = { ...this.interventions.emphasis };
    this.interventions = { ...this.interventions, emphasis: em };
    for (const c of e.contentChanges) {
      const delta = c.text.length - c.rangeLength;
      const at = c.rangeOffset - this.base;
      if (at >= em.end) continue;
      if (at + c.rangeLength <= em.start) {
        em.start += delta;
        em.end += delta;
      } else em.end = Math.max(em.start + 1, em.end + delta);
    }
  }

  dispose(): void {
    this.disposed = true;
    this.emitter.dispose();
  }
}

/** Per-stage wall times of one re-run, for the output channel. */
class StageTimer {
  private last = performance.now();
  private readonly start = this.last;
  private readonly parts: string[] = [];
  mark(stage: string, note?: string): void {
    const now = performance.now();
    this.parts.push(`${stage} ${(now - this.last).toFixed(0)} ms${note ? ` (${note})` : ''}`);
    this.last = now;
  }
  summary(): string {
    return `${this.parts.join(', ')}; total ${(performance.now() - this.start).toFixed(0)} ms`;
  }
}

export function toRunView(r: RunResult, runId: number, prompt: string, iv: Interventions): RunView {
  const heads: HeadView[] = r.heads.map((h) => ({ ...h, scale: scaleOf(iv, h) }));
  return {
    runId,
    prompt,
    tokens: r.tokens.map((t) => ({ text: t.text, start: t.start, end: t.end, special: t.special, id: t.id })),
    heads,
    next: r.next,
    timings: { runMs: r.timings.runMs, loadMs: r.timings.loadMs },
    truncated: r.truncated,
  };
}
