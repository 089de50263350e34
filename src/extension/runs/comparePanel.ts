// Hosts of the compare webview (dist/compare.js): the Compare Runs panel and, in `single` mode, the
// .attnrun custom editor. A WebviewHost (strict CSP, nothing sent before the webview's `ready`,
// every message validated by runsLogic.parseFromCompare); this file keeps the page's own switch.
import * as vscode from 'vscode';
import type { SavedRun } from '../../engine/runs/runFile';
import { attentionRows, parseFromCompare } from './runsLogic';
import { RUNS_PROTOCOL_VERSION, type CompareInit, type CompareWatch, type FromCompare, type ToCompare } from '../../shared/runsProtocol';
import { SinglePanel, WebviewHost, type HostLog } from '../webviewHost';

export const COMPARE_VIEW_TYPE = 'attnscope.compare';

export interface CompareHandlers {
  /** where invalid messages and failed requests are written */
  log: HostLog;
  compareWith?(): unknown;
  generate?(): unknown;
}

/** The protocol side of one compare webview (a panel's, which it then owns, or a custom editor's). */
export class CompareWebview extends WebviewHost<FromCompare, ToCompare> {
  /** the last `selected` report of the webview (tests) */
  lastSelected: Extract<FromCompare, { type: 'selected' }> | undefined;

  constructor(
    target: vscode.WebviewPanel | vscode.Webview,
    extensionUri: vscode.Uri,
    public init: CompareInit,
    private readonly handlers: CompareHandlers,
    title: string,
    /** the compared runs (their patterns answer `attentionRows`); null for a single run */
    public runs: [SavedRun, SavedRun] | null = null,
  ) {
    super(target, extensionUri, { script: 'compare', title, version: RUNS_PROTOCOL_VERSION, parse: parseFromCompare }, handlers.log);
  }

  update(init: CompareInit, runs: [SavedRun, SavedRun] | null): void {
    this.init = init;
    this.runs = runs;
    this.post({ type: 'init', init });
  }

  /** The session's watched tokens changed: the shown comparison's new `watch`. */
  updateWatch(watch: CompareWatch | null): void {
    const view = this.init.view;
    if (!view || view.mode !== 'compare') return;
    this.init = { ...this.init, view: { ...view, watch } };
    this.post({ type: 'watch', watch });
  }

  /** A one-line error shown in the page (the comparison stays). */
  showError(message: string): void {
    this.post({ type: 'error', message });
  }

  protected override onReady(messageId: number): void {
    this.reply(messageId, { type: 'init', init: this.init });
  }

  protected override async handle(body: Exclude<FromCompare, { type: 'ready' }>, messageId: number): Promise<void> {
    switch (body.type) {
      case 'compareWith':
        await this.handlers.compareWith?.();
        return;
      case 'generate':
        await this.handlers.generate?.();
        return;
      case 'selected':
        this.lastSelected = body;
        return;
      case 'attentionRows': {
        const view = this.init.view;
        if (!view || view.mode !== 'compare' || !this.runs) throw new Error('no comparison is shown');
        if (view.attention) throw new Error(view.attention);
        const [A, B] = this.runs;
        const rows = attentionRows(A, B, view.positions, body.position, body.head, [view.a.label, view.b!.label]);
        this.reply(messageId, { type: 'attentionRows', position: body.position, head: body.head, ...rows });
        return;
      }
    }
  }
}

/** The Compare Runs panel (one at a time; a new comparison replaces the shown one). */
export class ComparePanel implements vscode.Disposable {
  private static readonly slot = new SinglePanel<ComparePanel>(COMPARE_VIEW_TYPE);
  readonly host: CompareWebview;
  readonly onDidDispose: vscode.Event<void>;

  static get current(): ComparePanel | undefined {
    return ComparePanel.slot.current;
  }

  static show(ctx: vscode.ExtensionContext, init: CompareInit, title: string, handlers: CompareHandlers, runs: [SavedRun, SavedRun] | null): ComparePanel {
    const cur = ComparePanel.slot.current;
    if (cur) {
      cur.panel.title = title;
      cur.host.update(init, runs);
    }
    return ComparePanel.slot.show(ctx, title, (panel) => new ComparePanel(panel, ctx, init, title, handlers, runs));
  }

  /** Takes over a panel VS Code restored after a window reload (its serializer). */
  static revive(panel: vscode.WebviewPanel, ctx: vscode.ExtensionContext, init: CompareInit, title: string, handlers: CompareHandlers, runs: [SavedRun, SavedRun] | null): ComparePanel {
    panel.title = title;
    return ComparePanel.slot.revive(ctx, panel, (p) => new ComparePanel(p, ctx, init, title, handlers, runs));
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
    init: CompareInit,
    title: string,
    handlers: CompareHandlers,
    runs: [SavedRun, SavedRun] | null,
  ) {
    this.host = new CompareWebview(panel, ctx.extensionUri, init, handlers, title, runs);
    this.onDidDispose = this.host.onDidDispose;
  }

  dispose(): void {
    this.host.dispose();
  }
}
