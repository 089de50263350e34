// Hosts of the compare webview (dist/compare.js): the Compare Runs panel and, in `single` mode, the
// .attnrun custom editor. Strict CSP with a nonce, nothing sent before the webview's `ready`,
// every message validated (runsLogic.parseFromCompare).
import * as vscode from 'vscode';
import type { Envelope } from '../../shared/protocol';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import type { SavedRun } from '../../engine/runs/runFile';
import { attentionRows, parseFromCompare } from './runsLogic';
import { RUNS_PROTOCOL_VERSION, type CompareInit, type FromCompare, type ToCompare } from '../../shared/runsProtocol';

export const COMPARE_VIEW_TYPE = 'attnscope.compare';

export interface CompareHandlers {
  compareWith?(): unknown;
  generate?(): unknown;
}

/** The protocol side of one compare webview (a panel or a custom editor). */
export class CompareWebview implements vscode.Disposable {
  ready = false;
  received = 0;
  /** the last `selected` report of the webview (tests) */
  lastSelected: Extract<FromCompare, { type: 'selected' }> | undefined;
  private nextId = 1;
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    private readonly webview: vscode.Webview,
    extensionUri: vscode.Uri,
    public init: CompareInit,
    private readonly handlers: CompareHandlers,
    title: string,
    /** the compared runs (their patterns answer `attentionRows`); null for a single run */
    public runs: [SavedRun, SavedRun] | null = null,
  ) {
    webview.options = webviewOptions(extensionUri);
    webview.html = webviewHtml(webview, extensionUri, { script: 'compare', title });
    this.subs.push(webview.onDidReceiveMessage((m) => void this.onMessage(m)));
  }

  private post(body: ToCompare, inReplyTo?: number): void {
    if (!this.ready) return;
    const env: Envelope<ToCompare> = { messageId: this.nextId++, ...(inReplyTo !== undefined ? { inReplyTo } : {}), body };
    void this.webview.postMessage(env);
  }

  update(init: CompareInit, runs: [SavedRun, SavedRun] | null): void {
    this.init = init;
    this.runs = runs;
    this.post({ type: 'init', init });
  }

  private async onMessage(raw: unknown): Promise<void> {
    this.received++;
    const parsed = parseFromCompare(raw);
    if (!parsed.ok) {
      this.post({ type: 'error', message: parsed.error }, parsed.messageId);
      return;
    }
    const { messageId, body } = parsed.envelope;
    try {
      switch (body.type) {
        case 'ready':
          if (body.version !== RUNS_PROTOCOL_VERSION) throw new Error(`protocol version ${body.version} is not ${RUNS_PROTOCOL_VERSION}; reload the window`);
          this.ready = true;
          this.post({ type: 'init', init: this.init }, messageId);
          return;
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
          this.post({ type: 'attentionRows', position: body.position, head: body.head, ...rows }, messageId);
          return;
        }
      }
    } catch (e) {
      this.post({ type: 'error', message: e instanceof Error ? e.message.split('\n')[0]! : String(e) }, messageId);
    }
  }

  dispose(): void {
    for (const d of this.subs) d.dispose();
  }
}

/** The Compare Runs panel (one at a time; a new comparison replaces the shown one). */
export class ComparePanel implements vscode.Disposable {
  static current: ComparePanel | undefined;
  readonly host: CompareWebview;

  static show(ctx: vscode.ExtensionContext, init: CompareInit, title: string, handlers: CompareHandlers, runs: [SavedRun, SavedRun] | null): ComparePanel {
    const cur = ComparePanel.current;
    if (cur) {
      cur.panel.title = title;
      cur.host.update(init, runs);
      cur.panel.reveal(vscode.ViewColumn.Beside, true);
      return cur;
    }
    const panel = vscode.window.createWebviewPanel(COMPARE_VIEW_TYPE, title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, webviewOptions(ctx.extensionUri));
    return new ComparePanel(panel, ctx, init, title, handlers, runs);
  }

  /** Takes over a panel VS Code restored after a window reload (its serializer). */
  static revive(panel: vscode.WebviewPanel, ctx: vscode.ExtensionContext, init: CompareInit, title: string, handlers: CompareHandlers, runs: [SavedRun, SavedRun] | null): ComparePanel {
    ComparePanel.current?.dispose();
    panel.title = title;
    return new ComparePanel(panel, ctx, init, title, handlers, runs);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
    init: CompareInit,
    title: string,
    handlers: CompareHandlers,
    runs: [SavedRun, SavedRun] | null,
  ) {
    ComparePanel.current = this;
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'attnscope.svg');
    this.host = new CompareWebview(panel.webview, ctx.extensionUri, init, handlers, title, runs);
    panel.onDidDispose(() => this.dispose());
  }

  private disposed = false;

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (ComparePanel.current === this) ComparePanel.current = undefined;
    this.host.dispose();
    this.panel.dispose();
  }
}
