// The AttnScope panel host: the page of src/shared/protocol.ts on a WebviewHost (strict CSP, nothing
// sent before the webview's `ready`, every message validated by panelMessages.ts), revived after a
// window reload through the serializer (the webview keeps its UI state with getState/setState).
import * as vscode from 'vscode';
import { PROTOCOL_VERSION, type FromWebview, type GridMetric, type PanelState, type ToWebview } from '../shared/protocol';
import { parseFromWebview } from './panelMessages';
import type { Session } from './session';
import { SinglePanel, WebviewHost } from './webviewHost';
import type { Scene } from '../shared/figures/scene';
import type { ThemeColors } from '../shared/figures/palette';
import { pngInfo } from '../shared/validate';
import { stateDelta, stateSignatures, type StateKey } from '../shared/stateDelta';

export const PANEL_VIEW_TYPE = 'attnscope.panel';

export class PanelHost extends WebviewHost<FromWebview, ToWebview> {
  private static readonly slot = new SinglePanel<PanelHost>(PANEL_VIEW_TYPE, ['media']);
  private metric: GridMetric = 'induction';
  /** the panel's theme colors as it last reported them (for "current theme" exports) */
  themeColors: ThemeColors | undefined;
  private readonly rasterJobs = new Map<number, { resolve(png: Uint8Array): void; reject(e: Error): void; expect: { width: number; height: number } }>();
  private nextJob = 1;
  /** the state fields as the page holds them (signatures; see postState) */
  private sent = new Map<StateKey, string>();

  static get current(): PanelHost | undefined {
    return PanelHost.slot.current;
  }

  static show(ctx: vscode.ExtensionContext, session: Session): PanelHost {
    return PanelHost.slot.show(ctx, 'AttnScope', (panel) => new PanelHost(panel, ctx, session));
  }

  /** Takes over a panel VS Code restored after a window reload (its serializer). */
  static revive(panel: vscode.WebviewPanel, ctx: vscode.ExtensionContext, session: Session): PanelHost {
    return PanelHost.slot.revive(ctx, panel, (p) => new PanelHost(p, ctx, session));
  }

  private constructor(
    override readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
    private readonly session: Session,
  ) {
    super(panel, ctx.extensionUri, { script: 'webview', title: 'AttnScope', version: PROTOCOL_VERSION, parse: parseFromWebview, roots: ['media'] }, session.log);
    this.subs.push(
      session.onDidChange((what) => this.onSessionChange(what)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('attnscope.overlay')) this.postState({ settings: this.settings() });
      }),
    );
  }

  /** The grid metric the panel shows. */
  get gridMetric(): GridMetric {
    return this.metric;
  }

  /**
   * Draws a figure on the panel's canvas at `scale` × its size: the PNG bytes, checked (signature,
   * IHDR, the expected dimensions). Rejects after 60 s or when the panel goes away.
   */
  rasterize(scene: Scene, scale: number): Promise<Uint8Array> {
    const job = this.nextJob++;
    const expect = { width: Math.max(1, Math.round(scene.width * scale)), height: Math.max(1, Math.round(scene.height * scale)) };
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.rasterJobs.delete(job)) reject(new Error('the panel did not draw the PNG within 60 s; is it visible?'));
      }, 60_000);
      const done = <T,>(f: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        f(v);
      };
      this.rasterJobs.set(job, { resolve: done(resolve), reject: done(reject), expect });
      this.post({ type: 'rasterize', job, scene, scale });
    });
  }

  override dispose(): void {
    for (const j of this.rasterJobs.values()) j.reject(new Error('the panel was closed before it drew the PNG'));
    this.rasterJobs.clear();
    super.dispose();
  }

  private settings() {
    const s = this.session.settings;
    return { aggregation: s.aggregation, direction: s.direction, discountSink: s.discountSink, metric: this.metric };
  }

  fullState(): PanelState {
    const s = this.session;
    return {
      model: s.modelView(),
      run: s.run ?? null,
      selected: s.selected,
      interventions: s.interventionsView(),
      settings: this.settings(),
      busy: s.busy,
      error: s.error,
      importance: s.importance ?? null,
      importanceNote: s.importanceNote,
      patching: s.patching ?? null,
      patchingNote: s.patchingNote,
      watch: s.watch,
    };
  }

  /**
   * Posts the fields of `patch` whose value the page does not hold yet (none: nothing is posted).
   * A re-run fires interventions, busy, run and busy again; each message makes the page re-render
   * what it changes while the model runs on the same cores. `error` goes along with any other
   * change (a new run clears an error the page showed for an event).
   */
  private postState(patch: Partial<PanelState>): void {
    const delta = stateDelta(this.sent, patch);
    if (Object.keys(delta).length === 0) return;
    if ('error' in patch && !('error' in delta)) delta.error = patch.error ?? null;
    this.post({ type: 'state', state: delta });
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
        this.postState({ run: s.run ?? null, model: s.modelView(), interventions: s.interventionsView(), selected: s.selected, error: null, importance: s.importance ?? null, importanceNote: s.importanceNote, patching: s.patching ?? null, patchingNote: s.patchingNote });
        return;
      case 'patching':
        // A new result is what the user just asked for: color the grid by it.
        if (s.patching) this.metric = 'patching';
        this.postState({ patching: s.patching ?? null, patchingNote: s.patchingNote, settings: this.settings() });
        return;
      case 'watch':
        this.postState({ watch: s.watch });
        return;
      case 'importance':
        // A new ranking is what the user just asked for: color the grid by it.
        if (s.importance) this.metric = 'importance';
        this.postState({ importance: s.importance ?? null, importanceNote: s.importanceNote, settings: this.settings() });
        return;
      case 'model':
        this.postState({ model: s.modelView(), watch: s.watch });
        return;
      case 'interventions':
        this.postState({ interventions: s.interventionsView() });
        return;
      case 'selection':
        this.postState({ selected: s.selected });
        return;
      case 'busy':
        this.postState({ busy: s.busy, error: s.error });
        return;
      case 'overlay':
        this.sendOverlay();
        return;
    }
  }

  protected override onReady(messageId: number): void {
    const state = this.fullState();
    this.sent = stateSignatures(state);
    this.reply(messageId, { type: 'init', state });
    this.sendOverlay();
  }

  /** how long the page's recent messages took to answer (the last 64; for the output channel and the timing test) */
  readonly answered: { type: string; ms: number; at: number }[] = [];

  protected override async handle(body: Exclude<FromWebview, { type: 'ready' }>, messageId: number): Promise<void> {
    const t0 = performance.now();
    try {
      await this.answer(body, messageId);
    } finally {
      const ms = performance.now() - t0;
      this.answered.push({ type: body.type, ms, at: t0 });
      if (this.answered.length > 64) this.answered.shift();
      if (ms >= 100) this.session.log.debug(`panel: ${body.type} answered in ${ms.toFixed(0)} ms`);
    }
  }

  private async answer(body: Exclude<FromWebview, { type: 'ready' }>, messageId: number): Promise<void> {
    const s = this.session;
    switch (body.type) {
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
        this.postState({ settings: this.settings() });
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
      case 'rasterized': {
        const j = this.rasterJobs.get(body.job);
        if (!j) return;
        this.rasterJobs.delete(body.job);
        if (!body.png) return j.reject(new Error(body.error ?? 'the panel sent no PNG'));
        try {
          pngInfo(body.png, 'png', j.expect);
          j.resolve(new Uint8Array(body.png.slice(0)));
        } catch (e) {
          j.reject(e instanceof Error ? e : new Error(String(e)));
        }
        return;
      }
      case 'theme':
        this.themeColors = body.colors;
        return;
      case 'requestPattern': {
        s.checkHead(body.head);
        const run = s.run;
        const m = await s.pattern(body.head);
        if (!m || !run) throw new Error('no run to show; inspect a prompt first');
        const T = run.tokens.length;
        // A typed array that crossed the process boundary can be a view into a larger buffer: send exactly its bytes.
        const data = m.byteOffset === 0 && m.byteLength === m.buffer.byteLength ? (m.buffer as ArrayBuffer) : m.slice().buffer;
        this.reply(messageId, { type: 'pattern', runId: run.runId, head: body.head, values: { dims: [T, T], data } });
        return;
      }
      case 'requestPatternTile': {
        // Untrusted: the session checks the head and the window against the current run.
        const { q0, q1, k0, k1 } = body;
        const t = await s.patternTile(body.head, body.runId, { q0, q1, k0, k1 }, body.size);
        const values = t.values.byteOffset === 0 && t.values.byteLength === t.values.buffer.byteLength ? (t.values.buffer as ArrayBuffer) : t.values.slice().buffer;
        this.reply(messageId, {
          type: 'patternTile',
          runId: body.runId,
          head: body.head,
          tile: { q0: t.q0, q1: t.q1, k0: t.k0, k1: t.k1, pooled: t.pooled, rowEdges: Array.from(t.rowEdges), colEdges: Array.from(t.colEdges), values: { dims: [t.rowEdges.length - 1, t.colEdges.length - 1], data: values } },
        });
        return;
      }
      case 'requestLens': {
        const layers = await s.lensAt(body.runId, body.position);
        this.reply(messageId, { type: 'lens', runId: body.runId, position: body.position, layers });
        return;
      }
      case 'watchToken':
        await s.watchToken(body.id);
        return;
      case 'watchText': {
        const r = await s.watchText(body.text);
        this.reply(messageId, { type: 'tokenLookup', text: body.text, ...r });
        return;
      }
      case 'unwatchToken':
        await s.unwatchToken(body.id);
        return;
      case 'setWatchPair':
        s.setWatchPair(body.pair);
        return;
    }
  }
}

/** Restores the panel after a window reload. */
export class PanelSerializer implements vscode.WebviewPanelSerializer {
  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly session: Session,
  ) {}
  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    PanelHost.revive(panel, this.ctx, this.session);
  }
}
