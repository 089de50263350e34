// The attnscope.* commands.
import * as vscode from 'vscode';
import { EngineError } from '../engine/errors';
import { headLabel, METRIC_INFO, METRICS, type HeadRef } from '../shared/heads';
import { formatImportance, IMPORTANCE_INFO, IMPORTANCE_METRICS, rankImportance, type ImportanceMetric } from '../shared/importance';
import type { GridMetric } from '../shared/protocol';
import { maskedHeads } from '../shared/interventions';
import type { OverlayDecorations } from './decorations';
import type { HeadNode, HeadsTree } from './headsTree';
import type { Session } from './session';
import { pickModel, rememberModel } from './modelPicker';
import { pickCleanPrompt } from './cleanPrompt';
import { patchingSummary, PATCHING_LABEL } from '../shared/patching';
import { quoteToken } from '../shared/watch';

export interface CommandDeps {
  session: Session;
  decorations: OverlayDecorations;
  tree: HeadsTree;
  log: vscode.LogOutputChannel;
  reportError(e: unknown): void;
  track(p: Promise<unknown>): void;
  showPanel(): unknown;
  pickHead(arg: unknown, prompt: string): Promise<HeadRef | undefined>;
  /** registers more commands with the same error handling and tracking (runs/runsFeature.ts) */
  registerMore?(reg: (id: string, fn: (...args: unknown[]) => unknown) => void): void;
}

export function registerCommands(ctx: vscode.ExtensionContext, d: CommandDeps): void {
  const { session } = d;
  const reg = (id: string, fn: (...args: unknown[]) => unknown) =>
    ctx.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          const p = Promise.resolve(fn(...args));
          d.track(p);
          return await p;
        } catch (e) {
          d.reportError(e);
          return undefined;
        }
      }),
    );

  const inspectedEditor = (): vscode.TextEditor => {
    const active = vscode.window.activeTextEditor;
    if (active && active.document.uri.toString() === session.doc?.toString()) return active;
    const visible = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === session.doc?.toString());
    if (!visible) throw new EngineError('PROMPT', 'the inspected file is not open; run "Inspect Attention" on a file first');
    return visible;
  };

  reg('attnscope.inspect', async (uri?: unknown) => {
    let editor = vscode.window.activeTextEditor;
    if (uri instanceof vscode.Uri && editor?.document.uri.toString() !== uri.toString()) editor = await vscode.window.showTextDocument(uri);
    if (!editor) throw new EngineError('PROMPT', 'open a prompt file (or any text file) to inspect');
    const sel = editor.selection;
    await session.inspect(editor.document, sel.isEmpty ? undefined : new vscode.Range(sel.start, sel.end));
    // A cursor at the start of the prompt shows almost nothing (the first token attends only to
    // itself and the sink); start from the last token then, where the prediction is made.
    const cursor = editor.document.offsetAt(editor.selection.active);
    const last = session.run?.tokens[session.run.tokens.length - 1];
    await session.setCursor(cursor <= session.base && last ? session.base + last.start : cursor);
    d.decorations.update();
    return { tokens: session.run?.tokens.length ?? 0 };
  });

  reg('attnscope.clearCache', async () => {
    const root = session.settings.cacheRoot;
    const r = await session.engine.clearCache(root);
    const mb = (r.bytes / 1e6).toFixed(0);
    void vscode.window.showInformationMessage(`AttnScope: removed ${r.removed} compiled model${r.removed === 1 ? '' : 's'} (${mb} MB)${r.keptInUse ? `; kept ${r.keptInUse} in use by the open model` : ''}.`);
    return r;
  });

  reg('attnscope.selectModel', async (arg?: unknown) => {
    // A string from a caller (walkthrough link, keybinding, test) is tried like a picked model:
    // '' = the default model, a folder, or a Hub id org/name[@revision].
    const spec = typeof arg === 'string' ? arg : await pickModel(ctx, session.settings.model);
    if (spec === undefined) return;
    // Open it first (a Hub id is downloaded then, with Cancel): one that fails never reaches the settings.
    await session.openModel(spec || session.defaultModelDir);
    await vscode.workspace.getConfiguration('attnscope').update('model', spec, vscode.ConfigurationTarget.Global);
    await rememberModel(ctx, spec);
  });

  reg('attnscope.toggleHead', async (arg?: unknown) => {
    const h = await d.pickHead(arg, 'Toggle head (mask/unmask)');
    if (h) await session.toggleMask(h);
  });

  reg('attnscope.setHeadScale', async (arg?: unknown, value?: unknown) => {
    const h = await d.pickHead(arg, 'Set head scale');
    if (!h) return;
    let v = typeof value === 'number' ? value : undefined;
    if (v === undefined) {
      const s = await vscode.window.showInputBox({
        title: `Scale of L${h.layer}H${h.head}`,
        prompt: 'Multiplies the head\'s output before the output projection: 0 masks, 1 keeps, >1 amplifies',
        value: String(session.scaleOf(h)),
        validateInput: (x) => (x.trim() !== '' && Number.isFinite(Number(x)) && Number(x) >= 0 && Number(x) <= 100 ? undefined : 'A number from 0 to 100'),
      });
      if (s === undefined) return;
      v = Number(s);
    }
    await session.setScale([h], v);
  });

  reg('attnscope.maskLayer', async (arg?: unknown) => {
    const m = session.model;
    if (!m || !session.run) throw new EngineError('MODEL', 'inspect a prompt first');
    let layer = (arg as HeadNode | undefined)?.kind === 'layer' ? (arg as Extract<HeadNode, { kind: 'layer' }>).layer : undefined;
    if (layer === undefined) {
      const pick = await vscode.window.showQuickPick(Array.from({ length: m.layers }, (_, l) => ({ label: `Layer ${l}`, layer: l })), { title: 'Mask which layer?' });
      if (!pick) return;
      layer = pick.layer;
    }
    await session.setScale(Array.from({ length: m.heads }, (_, h) => ({ layer: layer!, head: h })), 0);
  });

  reg('attnscope.unmaskAll', async () => {
    const masked = maskedHeads(session.interventions);
    if (masked.length) await session.setScale(masked, 1);
  });

  reg('attnscope.emphasizeSelection', async (alphaArg?: unknown) => {
    const editor = inspectedEditor();
    const sel = editor.selection;
    if (sel.isEmpty) throw new EngineError('BAD_ARGUMENT', 'select the span to emphasize in the editor first');
    let alpha = typeof alphaArg === 'number' ? alphaArg : undefined;
    if (alpha === undefined) {
      const s = await vscode.window.showInputBox({
        title: 'Emphasize selection (PASTA)',
        prompt: 'Attention to tokens outside the selection is multiplied by α (ln α added before the softmax), for all heads',
        value: '0.01',
        validateInput: (x) => (Number(x) > 0 && Number.isFinite(Number(x)) ? undefined : 'A positive number, e.g. 0.01'),
      });
      if (s === undefined) return;
      alpha = Number(s);
    }
    await session.emphasize(editor.document.offsetAt(sel.start), editor.document.offsetAt(sel.end), alpha, session.interventions.emphasis?.heads ?? 'all');
  });

  reg('attnscope.resetInterventions', () => session.reset());
  reg('attnscope.openPanel', () => {
    d.showPanel();
  });

  reg('attnscope.toggleDirection', async () => {
    const c = vscode.workspace.getConfiguration('attnscope');
    await c.update('overlay.direction', session.settings.direction === 'from' ? 'to' : 'from', vscode.ConfigurationTarget.Global);
  });

  reg('attnscope.sortHeads', async () => {
    const imp = session.importance;
    const items: { label: string; description: string; metric: GridMetric; picked: boolean }[] = METRICS.map((m) => ({ label: METRIC_INFO[m].label, description: METRIC_INFO[m].description, metric: m, picked: m === d.tree.order.metric }));
    items.push({
      label: 'Importance (ablation)',
      description: imp ? `harm when masked, ${IMPORTANCE_INFO[imp.metric].delta}` : 'no ranking for this run yet: run "Rank Heads by Ablation" first',
      metric: 'importance',
      picked: d.tree.order.metric === 'importance',
    });
    const pv = session.patching;
    items.push({
      label: PATCHING_LABEL,
      description: pv ? `share of log p(${quoteToken(pv.targetText)}) restored from ${pv.cleanLabel}` : 'no patching result for this prompt yet: run "Patch Heads from a Clean Prompt" first',
      metric: 'patching',
      picked: d.tree.order.metric === 'patching',
    });
    const metric = await vscode.window.showQuickPick(items, { title: 'Show, sort and filter heads by which metric?' });
    if (!metric) return;
    const mode = await vscode.window.showQuickPick(
      [
        { label: 'Sort descending', sort: true, filter: false, flat: false },
        { label: 'Top heads across layers (one flat list)', sort: true, filter: false, flat: true },
        { label: 'Sort descending, keep heads ≥ a threshold…', sort: true, filter: true, flat: false },
        { label: 'Layer order (no sorting or filter)', sort: false, filter: false, flat: false },
      ],
      { title: `Heads by ${metric.label}` },
    );
    if (!mode) return;
    let minValue: number | null = null;
    if (mode.filter) {
      const s = await vscode.window.showInputBox({ title: `Keep heads with ${metric.label} ≥`, value: metric.metric === 'importance' ? '0' : '0.3', validateInput: (x) => (Number.isFinite(Number(x)) && x.trim() !== '' ? undefined : 'A number') });
      if (s === undefined) return;
      minValue = Number(s);
    }
    d.tree.order = { metric: metric.metric, sort: mode.sort, minValue, flat: mode.flat };
    d.tree.refresh();
  });

  // The title-bar toggle between Layer ▸ Head and one list of the top heads across layers.
  reg('attnscope.headsFlat', () => {
    d.tree.order = { ...d.tree.order, flat: true, sort: true };
    d.tree.refresh();
  });
  reg('attnscope.headsByLayer', () => {
    d.tree.order = { ...d.tree.order, flat: false };
    d.tree.refresh();
  });

  reg('attnscope.ablateHeads', async (metricArg?: unknown) => {
    if (!session.run || !session.model) throw new EngineError('PROMPT', 'nothing to rank yet; run "Inspect Attention" on a prompt first');
    let metric: ImportanceMetric | undefined = IMPORTANCE_METRICS.find((m) => m === metricArg);
    if (metricArg !== undefined && !metric) throw new EngineError('BAD_ARGUMENT', `ablation metric ${JSON.stringify(metricArg)} is not one of ${IMPORTANCE_METRICS.join(', ')}`);
    if (!metric) {
      const top1 = session.run.next[0];
      const pick = await vscode.window.showQuickPick(
        IMPORTANCE_METRICS.map((m) => ({
          label: m === 'logprob' ? `Log-probability of the top-1 token${top1 ? ` ${JSON.stringify(top1.text)}` : ''}` : m === 'loss' ? 'Next-token loss over the prompt' : 'KL divergence of the predictions',
          description: IMPORTANCE_INFO[m].delta,
          detail: IMPORTANCE_INFO[m].pick,
          metric: m,
        })),
        { title: `Rank heads by ablation: mask each of the ${session.model.layers * session.model.heads} heads alone and measure…` },
      );
      if (!pick) return;
      metric = pick.metric;
    }
    const total = session.model.layers * session.model.heads;
    const view = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'AttnScope: ranking heads by ablation', cancellable: true }, async (progress, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      let last = 0;
      try {
        return await session.ablate(
          metric!,
          (done, n) => {
            progress.report({ increment: ((done - last) / Math.max(1, n)) * 100, message: done === 0 ? `baseline done; masking ${n} heads one at a time…` : `${done} of ${n} heads` });
            last = done;
          },
          abort.signal,
        );
      } finally {
        sub.dispose();
      }
    });
    if (!view) return;
    d.tree.order = { metric: 'importance', sort: true, minValue: null, flat: true };
    d.tree.refresh();
    const top = rankImportance(view).slice(0, 3).map((h) => `${headLabel(h)} ${formatImportance(view.metric, h.delta)}`);
    void vscode.window.showInformationMessage(`AttnScope: ranked ${total} heads by ablation; most important: ${top.join(', ')}.`);
    return view;
  });

  reg('attnscope.patchHeads', async (cleanArg?: unknown) => {
    if (!session.run || !session.model) throw new EngineError('PROMPT', 'nothing to patch into yet; run "Inspect Attention" on the corrupt prompt first');
    const clean = await pickCleanPrompt(session, cleanArg);
    if (!clean) return;
    const view = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `AttnScope: patching heads from ${clean.label}`, cancellable: true }, async (progress, token) => {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      let last = 0;
      try {
        return await session.patchFrom(
          clean,
          (done, n) => {
            progress.report({ increment: ((done - last) / Math.max(1, n)) * 100, message: done === 0 ? `clean and corrupt runs done; patching ${n} heads one at a time…` : `${done} of ${n} heads` });
            last = done;
          },
          abort.signal,
        );
      } finally {
        sub.dispose();
      }
    });
    if (!view) return;
    d.tree.order = { metric: 'patching', sort: true, minValue: null, flat: true };
    d.tree.refresh();
    const target = `log p(${quoteToken(view.targetText)})`;
    if (view.heads.every((h) => h.effect === null)) {
      void vscode.window.showWarningMessage(`AttnScope: the clean and corrupt prompts give the same ${target} (${view.clean.toFixed(4)}), so no head can restore anything; choose prompts that differ in the prediction.`);
    } else {
      const best = patchingSummary(view);
      void vscode.window.showInformationMessage(`AttnScope: patched ${view.heads.length} heads from ${clean.label}: ${target} clean ${view.clean.toFixed(3)}, corrupt ${view.corrupt.toFixed(3)}; most restoring: ${best}.`);
    }
    return view;
  });

  reg('attnscope.clearOverlay', () => d.decorations.clear());
  reg('attnscope.showLog', () => d.log.show());
  reg('attnscope.reportError', (e: unknown) => d.reportError(e));

  reg('attnscope.export', async () => {
    const run = session.run;
    if (!run || !session.model) throw new EngineError('PROMPT', 'nothing to export; inspect a prompt first');
    const target = await vscode.window.showSaveDialog({ filters: { JSON: ['json'] }, saveLabel: 'Export run', defaultUri: session.doc ? vscode.Uri.file(session.doc.fsPath.replace(/\.[^./\\]*$/, '') + '.attnscope.json') : undefined });
    if (!target) return;
    const json = {
      model: { arch: session.model.arch, modelType: session.model.modelType, layers: session.model.layers, heads: session.model.heads, kvHeads: session.model.kvHeads, hiddenSize: session.model.hiddenSize, vocabSize: session.model.vocabSize, hash: session.model.hash },
      device: session.model.device,
      prompt: run.prompt,
      interventions: session.interventionsView(),
      tokens: run.tokens,
      next: run.next,
      heads: run.heads,
      timings: run.timings,
    };
    await vscode.workspace.fs.writeFile(target, Buffer.from(JSON.stringify(json, null, 1), 'utf8'));
    void vscode.window.showInformationMessage(`AttnScope: exported the run to ${target.fsPath}`);
  });

  d.registerMore?.(reg);
}
