// The Heads view: Model ▸ Layer ▸ Head with checkboxes (checked = enabled, unchecked = masked),
// the head's scale, chosen metric (or importance by ablation) and automatic roles in the
// description, sorting and filtering by a metric, and a flat "top heads across layers" list.
import * as vscode from 'vscode';
import type { GridMetric, HeadView } from '../shared/protocol';
import { formatMetric, headLabel, METRIC_INFO, METRICS, metricLabel } from '../shared/heads';
import { headRoles, ROLE_INFO } from '../shared/headLabels';
import { formatImportance, formatSigned, harm, IMPORTANCE_CITE, IMPORTANCE_INFO, type ImportanceView } from '../shared/importance';
import { formatEffect, PATCHING_CITE, PATCHING_DESCRIPTION, type PatchingView } from '../shared/patching';
import { quoteToken } from '../shared/watch';
import type { Session } from './session';
import { flatHeads, formatScale, orderHeads, type TreeOrder } from './viewLogic';

/** "Induction", "Importance (Δ log p)" or "patching effect": the name of what the tree is ordered by. */
export function orderLabel(metric: GridMetric, importance: ImportanceView | undefined, patching?: PatchingView | undefined): string {
  if (metric === 'patching') return `patching effect${patching ? ` (from ${patching.cleanLabel})` : ''}`;
  if (metric !== 'importance') return metricLabel(metric);
  return `Importance${importance ? ` (${IMPORTANCE_INFO[importance.metric].delta})` : ''}`;
}

export type HeadNode = { kind: 'model' } | { kind: 'layer'; layer: number } | { kind: 'head'; layer: number; head: number };

export class HeadsTree implements vscode.TreeDataProvider<HeadNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<HeadNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  readonly view: vscode.TreeView<HeadNode>;
  order: TreeOrder = { metric: 'induction', sort: false, minValue: null };
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly session: Session) {
    this.view = vscode.window.createTreeView('attnscope.heads', { treeDataProvider: this, showCollapseAll: true, manageCheckboxStateManually: true });
    this.subs.push(
      this.view.onDidChangeCheckboxState((e) => {
        const changes = e.items.filter(([n]) => n.kind === 'head') as [Extract<HeadNode, { kind: 'head' }>, vscode.TreeItemCheckboxState][];
        const mask = changes.filter(([, s]) => s === vscode.TreeItemCheckboxState.Unchecked).map(([n]) => ({ layer: n.layer, head: n.head }));
        const unmask = changes.filter(([, s]) => s === vscode.TreeItemCheckboxState.Checked).map(([n]) => ({ layer: n.layer, head: n.head }));
        void (async () => {
          try {
            if (mask.length) await session.setScale(mask, 0);
            if (unmask.length) await session.setScale(unmask, 1);
          } catch (err) {
            void vscode.commands.executeCommand('attnscope.reportError', err);
          }
        })();
      }),
      this.view.onDidChangeSelection((e) => {
        const n = e.selection[0];
        if (n?.kind === 'head') session.select({ layer: n.layer, head: n.head });
      }),
    );
  }

  refresh(): void {
    const s = this.session;
    const m = s.model;
    const o = this.order;
    const by = orderLabel(o.metric, s.importance, s.patching);
    this.view.description = o.flat ? `top heads by ${by}${o.minValue !== null ? ` ≥ ${o.minValue}` : ''}` : o.sort || o.minValue !== null ? `by ${by}${o.minValue !== null ? ` ≥ ${o.minValue}` : ''}` : undefined;
    const lines: string[] = [];
    if (m && !s.run) lines.push('Run "Inspect Attention" to see head metrics.');
    if (s.run && o.metric === 'importance' && !s.importance) lines.push(s.importanceNote ?? 'No ablation ranking for this run: run "AttnScope: Rank Heads by Ablation".');
    if (s.run && o.metric === 'patching' && !s.patching) lines.push(s.patchingNote ?? 'No patching result for this prompt: run "AttnScope: Patch Heads from a Clean Prompt".');
    this.view.message = lines.length ? lines.join(' ') : undefined;
    void vscode.commands.executeCommand('setContext', 'attnscope.headsFlat', !!o.flat);
    this.emitter.fire(undefined);
  }

  private headView(layer: number, head: number): HeadView | undefined {
    return this.session.run?.heads.find((h) => h.layer === layer && h.head === head);
  }

  getChildren(node?: HeadNode): HeadNode[] {
    const s = this.session;
    const m = s.model;
    if (!m || !s.run) return [];
    if (!node) return [{ kind: 'model' }];
    if (node.kind === 'model' && this.order.flat) return flatHeads(s.run.heads, this.order, s.importance, s.patching).map((h) => ({ kind: 'head', layer: h.layer, head: h.head }));
    if (node.kind === 'model') {
      const layers: HeadNode[] = [];
      for (let l = 0; l < m.layers; l++) if (orderHeads(s.run.heads, l, this.order, s.importance, s.patching).length) layers.push({ kind: 'layer', layer: l });
      return layers;
    }
    if (node.kind === 'layer') return orderHeads(s.run.heads, node.layer, this.order, s.importance, s.patching).map((h) => ({ kind: 'head', layer: h.layer, head: h.head }));
    return [];
  }

  getParent(node: HeadNode): HeadNode | undefined {
    if (node.kind === 'head') return this.order.flat ? { kind: 'model' } : { kind: 'layer', layer: node.layer };
    if (node.kind === 'layer') return { kind: 'model' };
    return undefined;
  }

  getTreeItem(node: HeadNode): vscode.TreeItem {
    const s = this.session;
    const m = s.modelView()!;
    if (node.kind === 'model') {
      const item = new vscode.TreeItem(m.name, vscode.TreeItemCollapsibleState.Expanded);
      item.description = `${m.arch} ${m.layers}×${m.heads}`;
      item.tooltip = `${m.name}: ${m.arch}, ${m.layers} layers × ${m.heads} heads${m.kvHeads !== m.heads ? ` (${m.kvHeads} KV heads)` : ''}, on ${m.device}`;
      item.iconPath = new vscode.ThemeIcon('circuit-board');
      item.contextValue = 'model';
      item.id = 'model';
      return item;
    }
    if (node.kind === 'layer') {
      const heads = s.run!.heads.filter((h) => h.layer === node.layer);
      const masked = heads.filter((h) => s.scaleOf(h) === 0).length;
      const item = new vscode.TreeItem(`Layer ${node.layer}`, node.layer === 0 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
      item.description = masked ? `${masked}/${heads.length} masked` : `${heads.length} heads`;
      item.contextValue = 'layer';
      item.id = `layer-${node.layer}`;
      item.iconPath = new vscode.ThemeIcon('layers');
      return item;
    }
    const hv = this.headView(node.layer, node.head);
    const scale = s.scaleOf(node);
    const item = new vscode.TreeItem(headLabel(node), vscode.TreeItemCollapsibleState.None);
    const metric = this.order.metric;
    const imp = s.importance;
    const ablated = imp?.heads.find((h) => h.layer === node.layer && h.head === node.head);
    const pv = s.patching;
    const patched = pv?.heads.find((h) => h.layer === node.layer && h.head === node.head);
    const roles = hv ? headRoles(hv, s.run!.tokens.length) : [];
    const shown =
      metric === 'patching'
        ? `patch effect ${patched ? formatEffect(patched.effect) : 'n/a'}`
        : metric === 'importance'
          ? imp && ablated
            ? formatImportance(imp.metric, ablated.delta)
            : 'importance n/a'
          : `${metricLabel(metric)} ${formatMetric(hv?.[metric] ?? null)}`;
    const parts = [formatScale(scale), shown, roles.map((r) => ROLE_INFO[r].label.toLowerCase()).join(', ')].filter(Boolean);
    item.description = parts.join(' · ');
    item.checkboxState = { state: scale === 0 ? vscode.TreeItemCheckboxState.Unchecked : vscode.TreeItemCheckboxState.Checked, tooltip: scale === 0 ? 'Masked: check to enable' : 'Enabled: uncheck to mask' };
    const tip = new vscode.MarkdownString(`**${headLabel(node)}**${scale !== 1 ? ` — ${scale === 0 ? 'masked' : `scaled ×${scale}`}` : ''}\n\n`);
    if (roles.length) {
      tip.appendMarkdown('**Roles on this prompt** (automatic, from the metrics below)\n\n');
      for (const r of roles) tip.appendMarkdown(`- **${ROLE_INFO[r].label}**: ${ROLE_INFO[r].description} _(${ROLE_INFO[r].cite})_\n`);
      tip.appendMarkdown('\n');
    }
    if (imp && ablated) {
      const info = IMPORTANCE_INFO[imp.metric];
      const target = imp.metric === 'logprob' && imp.targetText !== null ? ` of ${JSON.stringify(imp.targetText)}` : '';
      tip.appendMarkdown(`**Masking this head**: ${info.delta}${target} = ${formatSigned(ablated.delta)} (baseline ${imp.baseline.toFixed(3)} → ${ablated.value.toFixed(3)}; harm ${formatSigned(harm(imp.metric, ablated.delta))})  \n_${info.description}; ${IMPORTANCE_CITE}_\n\n`);
    }
    if (pv && patched) {
      tip.appendMarkdown(`**Patching this head from ${pv.cleanLabel}**: effect ${formatEffect(patched.effect, 3)} (log p(${quoteToken(pv.targetText)}) corrupt ${pv.corrupt.toFixed(3)} → patched ${patched.value.toFixed(3)}; clean ${pv.clean.toFixed(3)})  \n_${PATCHING_DESCRIPTION}; ${PATCHING_CITE}_\n\n`);
    }
    tip.appendMarkdown('| metric | value | what it measures |\n|---|---|---|\n');
    for (const k of METRICS) tip.appendMarkdown(`| ${metricLabel(k)} | ${formatMetric(hv?.[k] ?? null)} | ${METRIC_INFO[k].description} |\n`);
    item.tooltip = tip;
    item.contextValue = 'head';
    item.id = `head-${node.layer}-${node.head}`;
    const sel = s.selected;
    item.iconPath = new vscode.ThemeIcon(sel && sel.layer === node.layer && sel.head === node.head ? 'circle-filled' : 'circle-outline');
    return item;
  }

  dispose(): void {
    for (const d of this.subs) d.dispose();
    this.view.dispose();
    this.emitter.dispose();
  }
}
