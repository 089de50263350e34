// Status bar: model, device, token count and the last run time; a still sync icon while busy (viewLogic.busyStatusText).
import * as vscode from 'vscode';
import type { Session } from './session';
import { describeInterventions, scaleOf } from '../shared/interventions';
import { overlayLegend, scaleMax } from '../shared/overlay';
import { busyStatusText } from './viewLogic';

/** The editor overlay's legend lines (direction, heads, color scale) for the overlay on screen, or [] when none. */
export function legendFor(s: Session): string[] {
  const run = s.run;
  const o = s.overlay;
  const m = s.model;
  if (!run || !o || !m || o.runId !== run.runId || o.values.length !== run.tokens.length) return [];
  const settings = s.settings;
  const tok = run.tokens[o.token];
  const text = tok ? (tok.special ? tok.text : run.prompt.slice(tok.start, tok.end)) : '';
  return overlayLegend({
    direction: o.direction,
    aggregation: settings.aggregation,
    selected: s.selected,
    enabled: run.heads.filter((h) => scaleOf(s.interventions, h) !== 0).length,
    total: m.layers * m.heads,
    token: { index: o.token, text },
    scale: settings.colorScale,
    discountSink: settings.discountSink,
    max: scaleMax(o.values, run.tokens, settings.discountSink),
  });
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('attnscope.status', vscode.StatusBarAlignment.Right, 100);

  constructor(private readonly session: Session) {
    this.item.name = 'AttnScope';
    this.item.command = 'attnscope.openPanel';
    this.update();
  }

  update(): void {
    const s = this.session;
    const m = s.modelView();
    if (s.busy) {
      this.item.text = busyStatusText(s.busy);
      this.item.tooltip = s.busy;
      this.item.backgroundColor = undefined;
      this.item.show();
      return;
    }
    if (s.modelError) {
      // A model that failed to open: never show the previous model's numbers as if they were current.
      this.item.text = '$(error) AttnScope: model failed to open';
      this.item.tooltip = `${s.modelError}\n\nChoose another with "AttnScope: Select Model". Click to open the panel.`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
      this.item.show();
      return;
    }
    if (!m) {
      this.item.hide();
      return;
    }
    const tokens = s.run ? `${s.run.tokens.length} tok` : 'no run';
    const ms = s.run ? ` · ${s.run.timings.runMs.toFixed(0)} ms` : '';
    const lines = describeInterventions(s.interventions, s.prompt);
    const iv = lines.length ? ` · $(beaker) steered${lines.length > 1 ? ` (${lines.length})` : ''}` : '';
    const settings = s.settings;
    const rollout = settings.aggregation === 'rollout' ? ' · rollout' : '';
    const overlayNote =
      settings.aggregation === 'rollout'
        ? `\n\nOverlay: attention rollout from the cursor token (Abnar & Zuidema 2020)${settings.direction === 'to' ? '; rollout is a from-row, so the "to" direction does not apply to it' : ''}.`
        : '';
    this.item.text = `$(eye) ${m.name} · ${m.device} · ${tokens}${ms}${rollout}${iv}`;
    const legend = legendFor(s);
    const legendMd = legend.length ? `\n\n**Overlay**\n${legend.map((l) => `- ${escapeMd(l)}`).join('\n')}` : '';
    this.item.tooltip = new vscode.MarkdownString(
      `**AttnScope** — ${m.name} (${m.arch}, ${m.layers} layers × ${m.heads} heads${m.kvHeads !== m.heads ? `, ${m.kvHeads} KV heads` : ''})  \nDevice: ${m.device}  \n${s.run ? `Last run: ${s.run.tokens.length} tokens in ${s.run.timings.runMs.toFixed(1)} ms` : ''}${lines.length ? `\n\nActive interventions (they apply to every prompt you inspect until Reset Interventions):\n${lines.map((l) => `- ${l}`).join('\n')}` : ''}${legendMd}${overlayNote}\n\nClick to open the panel.`,
    );
    this.item.backgroundColor = s.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** Markdown-inert text (token text may hold * _ ` [ and the like). */
export function escapeMd(t: string): string {
  return t.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`).replace(/\n/g, '⏎');
}
