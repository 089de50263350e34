// The AttnScope panel host: a webview under a strict CSP, speaking the typed protocol of
// src/shared/protocol.ts. It sends nothing before the webview's `ready`, validates every message,
// and revives after a window reload through the serializer (the webview keeps its UI state with
// getState/setState).
import * as vscode from 'vscode';
import { isEngineError } from '../engine/errors';
import { PROTOCOL_VERSION, type Envelope, type FromWebview, type MetricName, type PanelState, type ToWebview } from '../shared/protocol';
import { parseFromWebview } from './panelMessages';
import type { Session } from './session';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const PANEL_VIEW_TYPE = 'attnscope.panel';

export class PanelHost implements vscode.Disposable {
  static current: PanelHost | undefined;
  private ready = false;
  private nextId = 1;
  private metric: MetricName = 'induction';
  private readonly subs: vscode.Disposable[] = [];
  /** messages the panel received, for tests and the log */
  received = 0;

  static show(ctx: vscode.ExtensionContext, session: Session): PanelHost {
    if (PanelHost.current) {
      PanelHost.current.panel.reveal(vscode.ViewColumn.Beside, true);
      return PanelHost.current;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'AttnScope', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, PanelHost.options(ctx));
    return new PanelHost(panel, ctx, session);
  }

  static options(ctx: vscode.ExtensionContext): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return webviewOptions(ctx.extensionUri, ['media']);
  }

  constructor(
    readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
    private readonly session: Session,
  ) {
    PanelHost.current = this;
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'attnscope.svg');
    panel.webview.options = PanelHost.options(ctx);
    panel.webview.html = webviewHtml(panel.webview, ctx.extensionUri, { script: 'webview', title: 'AttnScope' });
    this.subs.push(
      panel.webview.onDidReceiveMessage((m) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
      session.onDidChange((what) => this.onSessionChange(what)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('attnscope.overlay')) this.post({ type: 'state', state: { settings: this.settings() } });
      }),
    );
  }

  private settings() {
    const s = this.session.settings;
    return { aggregation: s.aggregation, direction: s.direction, discountSink: s.discountSink, metric: this.metric };
  }

  fullState(): PanelState {
    const s = this.session;
    return { model: s.modelView(), run: s.run ?? null, selected: s.selected, interventions: s.interventionsView(), settings: this.settings(), busy: s.busy, error: s.error };
  }

  private post(body: ToWebview, inReplyTo?: number): void {
    if (!this.ready) return;
    const env: Envelope<ToWebview> = { messageId: this.nextId++, ...(inReplyTo !== undefined ? { inReplyTo } : {}), body };
    void this.panel.webview.postMessage(env);
  }

  private sendOverlay(): void {
    const o = this.session.overlay;
    const run = this.session.run;
    if (!o || !run) return;
    const values = o.values.slice().buffer;
    this.post({ type: 'overlay', runId: run.runId, token: o.token, direction: o.direction, values: { dims: [o.values.length], data: values } });
  }

  private onSessionChange(what: string): void {
    const s = this.session;
    switch (what) {
      case 'run':
        this.post({ type: 'state', state: { run: s.run ?? null, model: s.modelView(), interventions: s.interventionsView(), selected: s.selected, error: null } });
        return;
      case 'model':
        this.post({ type: 'state', state: { model: s.modelView() } });
        return;
      case 'interventions':
        this.post({ type: 'state', state: { interventions: s.interventionsView() } });
        return;
      case 'selection':
        this.post({ type: 'state', state: { selected: s.selected } });
        return;
      case 'busy':
        this.post({ type: 'state', state: { busy: s.busy, error: s.error } });
        return;
      case 'overlay':
        this.sendOverlay();
        return;
    }
  }

  private async onMessage(raw: unknown): Promise<void> {
    this.received++;
    const parsed = parseFromWebview(raw);
    if (!parsed.ok) {
      this.post({ type: 'error', message: parsed.error }, parsed.messageId);
      return;
    }
    const { messageId, body } = parsed.envelope;
    try {
      await this.handle(body, messageId);
    } catch (e) {
      if (isEngineError(e) && e.code === 'CANCELLED') return;
      const message = e instanceof Error ? e.message : String(e);
      this.post({ type: 'error', message }, messageId);
    }
  }

  private async handle(body: FromWebview, messageId: number): Promise<void> {
    const s = this.session;
    switch (body.type) {
      case 'ready':
        if (body.version !== PROTOCOL_VERSION) throw new Error(`protocol version ${body.version} is not ${PROTOCOL_VERSION}; reload the window`);
        this.ready = true;
        this.post({ type: 'init', state: this.fullState() }, messageId);
        this.sendOverlay();
        return;
      case 'selectHead':
        s.select(body.head);
        return;
      case 'toggleMask':
        s.checkHead(body.head);
        await s.toggleMask(body.head);
        return;
      case 'setScale':
        await s.setScale(body.heads, body.value);
        return;
      case 'emphasizeSelection': {
        const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === s.doc?.toString());
        const sel = editor?.selection;
        if (!editor || !sel || sel.isEmpty) throw new Error('select the span to emphasize in the editor first');
        await s.emphasize(editor.document.offsetAt(sel.start), editor.document.offsetAt(sel.end), body.alpha, body.heads);
        return;
      }
      case 'clearEmphasis':
        await s.clearEmphasis();
        return;
      case 'setSink':
        await s.setSink(body.heads, body.value);
        return;
      case 'reset':
        await s.reset();
        return;
      case 'setSettings': {
        const c = vscode.workspace.getConfiguration('attnscope');
        if (body.settings.metric) this.metric = body.settings.metric;
        if (body.settings.aggregation) await c.update('overlay.aggregation', body.settings.aggregation, vscode.ConfigurationTarget.Global);
        if (body.settings.direction) await c.update('overlay.direction', body.settings.direction, vscode.ConfigurationTarget.Global);
        if (body.settings.discountSink !== undefined) await c.update('overlay.discountSink', body.settings.discountSink, vscode.ConfigurationTarget.Global);
        this.post({ type: 'state', state: { settings: this.settings() } });
        await s.refreshOverlay();
        return;
      }
      case 'revealToken': {
        const run = s.run;
        const t = run?.tokens[body.index];
        if (!t || !s.doc) throw new Error(`token ${body.index} is not in the current run`);
        const doc = await vscode.workspace.openTextDocument(s.doc);
        const editor = await vscode.window.showTextDocument(doc, { preserveFocus: false, viewColumn: vscode.window.visibleTextEditors.find((e) => e.document === doc)?.viewColumn });
        const pos = doc.positionAt(s.base + t.start);
        editor.selection = new vscode.Selection(pos, pos);
        editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
        await s.setCursor(s.base + t.start);
        return;
      }
      case 'requestPattern': {
        s.checkHead(body.head);
        const run = s.run;
        const m = await s.pattern(body.head);
        if (!m || !run) throw new Error('no run to show; inspect a prompt first');
        const T = run.tokens.length;
        this.post({ type: 'pattern', runId: run.runId, head: body.head, values: { dims: [T, T], data: m.buffer as ArrayBuffer } }, messageId);
        return;
      }
    }
  }

  dispose(): void {
    if (PanelHost.current === this) PanelHost.current = undefined;
    for (const d of this.subs) d.dispose();
    this.panel.dispose();
  }
}

/** Restores the panel after a window reload. */
export class PanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly session: Session,
  ) {}
  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    new PanelHost(panel, this.ctx, this.session);
  }
}
