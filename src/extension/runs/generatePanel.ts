// The Generation panel (dist/generate.js): N tokens from the inspected prompt, without and with the
// current interventions, streamed side by side; Stop ends both; "Inspect" opens prompt + generated
// text as a new untitled .prompt document and inspects it.
import * as vscode from 'vscode';
import { isEngineError } from '../../engine/errors';
import type { GenerateRequest } from '../../engine/generate';
import type { Envelope } from '../../shared/protocol';
import type { Session } from '../session';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import { parseFromGenerate, runStem } from './runsLogic';
import { describeInterventions, hasInterventions } from '../../shared/interventions';
import { RUNS_PROTOCOL_VERSION, type GenerateInit, type GenerateOptions, type Lane, type ToGenerate } from '../../shared/runsProtocol';

export const GENERATE_VIEW_TYPE = 'attnscope.generate';

export interface LaneState {
  text: string;
  tokens: number;
  stopReason: string | null;
}

export class GeneratePanel implements vscode.Disposable {
  static current: GeneratePanel | undefined;
  ready = false;
  running = false;
  /** what each lane generated so far (tests read it) */
  readonly lanes: Record<Lane, LaneState> = { with: { text: '', tokens: 0, stopReason: null }, without: { text: '', tokens: 0, stopReason: null } };
  private prompt = '';
  private stopCurrent: (() => void) | undefined;
  private stopped = false;
  private nextId = 1;
  private readonly subs: vscode.Disposable[] = [];

  static show(ctx: vscode.ExtensionContext, session: Session): GeneratePanel {
    const cur = GeneratePanel.current;
    if (cur) {
      cur.panel.reveal(vscode.ViewColumn.Beside, true);
      cur.post({ type: 'init', init: cur.initState() });
      return cur;
    }
    const panel = vscode.window.createWebviewPanel(GENERATE_VIEW_TYPE, 'AttnScope: Generate', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, webviewOptions(ctx.extensionUri));
    return new GeneratePanel(panel, ctx, session);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
    private readonly session: Session,
  ) {
    GeneratePanel.current = this;
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'attnscope.svg');
    panel.webview.html = webviewHtml(panel.webview, ctx.extensionUri, { script: 'generate', title: 'AttnScope: Generate' });
    this.subs.push(
      panel.webview.onDidReceiveMessage((m) => void this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  static defaults(): GenerateOptions {
    const c = vscode.workspace.getConfiguration('attnscope.generate');
    const n = Number(c.get('maxTokens', 32));
    const t = Number(c.get('temperature', 0));
    const seed = Number(c.get('seed', 0));
    return {
      maxTokens: Number.isInteger(n) && n >= 1 && n <= 1024 ? n : 32,
      temperature: Number.isFinite(t) && t >= 0 && t <= 10 ? t : 0,
      seed: Number.isInteger(seed) && seed >= 0 ? seed : 0,
    };
  }

  private initState(): GenerateInit {
    const s = this.session;
    return { prompt: s.prompt, promptName: runStem(s.doc?.path), options: GeneratePanel.defaults(), interventions: describeInterventions(s.interventions, s.prompt) };
  }

  post(body: ToGenerate, inReplyTo?: number): void {
    if (!this.ready) return;
    const env: Envelope<ToGenerate> = { messageId: this.nextId++, ...(inReplyTo !== undefined ? { inReplyTo } : {}), body };
    void this.panel.webview.postMessage(env);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseFromGenerate(raw);
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
          this.post({ type: 'init', init: this.initState() }, messageId);
          return;
        case 'generate':
          await this.generate(body.options);
          return;
        case 'stop':
          this.stop();
          return;
        case 'inspect':
          await this.inspectLane(body.lane);
          return;
      }
    } catch (e) {
      if (isEngineError(e) && e.code === 'CANCELLED') return;
      this.post({ type: 'error', message: e instanceof Error ? e.message.split('\n')[0]! : String(e) }, messageId);
    }
  }

  /** Generates without, then with, the current interventions (one worker, one after the other). */
  async generate(options: GenerateOptions): Promise<void> {
    if (this.running) throw new Error('a generation is running; stop it first');
    const s = this.session;
    if (!s.doc) throw new Error('inspect a prompt first; generation continues the inspected prompt');
    await s.ensureModel();
    const lanes: Lane[] = hasInterventions(s.interventions) ? ['without', 'with'] : ['without'];
    this.running = true;
    this.stopped = false;
    this.prompt = s.prompt;
    for (const l of ['with', 'without'] as Lane[]) this.lanes[l] = { text: '', tokens: 0, stopReason: null };
    this.post({ type: 'started', lanes, options });
    try {
      for (const lane of lanes) {
        if (this.stopped) {
          this.lanes[lane].stopReason = 'cancelled';
          this.post({ type: 'done', lane, stopReason: 'cancelled', tokens: 0, perTokenMs: 0 });
          continue;
        }
        const req: GenerateRequest = { prompt: this.prompt, interventions: lane === 'with' ? s.interventions : undefined, maxTokens: options.maxTokens, temperature: options.temperature, seed: options.seed };
        const g = s.engine.generate(req, (t) => {
          this.lanes[lane].text += t.text;
          this.lanes[lane].tokens++;
          this.post({ type: 'token', lane, text: t.text, prob: t.prob });
        });
        this.stopCurrent = g.stop;
        const r = await g.done;
        this.lanes[lane].stopReason = r.stopReason;
        this.post({ type: 'done', lane, stopReason: r.stopReason, tokens: r.tokens.length, perTokenMs: r.timings.perTokenMs });
      }
    } finally {
      this.running = false;
      this.stopCurrent = undefined;
      this.post({ type: 'finished' });
    }
  }

  stop(): void {
    this.stopped = true;
    this.stopCurrent?.();
  }

  /** Opens prompt + the lane's continuation as a new untitled .prompt document and inspects it. */
  async inspectLane(lane: Lane): Promise<vscode.TextDocument> {
    const text = this.lanes[lane].text;
    if (!text) throw new Error(`nothing generated ${lane === 'with' ? 'with' : 'without'} the interventions yet`);
    const doc = await vscode.workspace.openTextDocument({ language: 'prompt', content: this.prompt + text });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    await vscode.commands.executeCommand('attnscope.inspect');
    return doc;
  }

  dispose(): void {
    this.stop();
    if (GeneratePanel.current === this) GeneratePanel.current = undefined;
    for (const d of this.subs) d.dispose();
    this.panel.dispose();
  }
}
