// The Generation panel (dist/generate.js): N tokens from the inspected prompt, without and with the
// current interventions, streamed side by side; Stop ends both; "Inspect" opens prompt + generated
// text as a new untitled .prompt document and inspects it.
import * as vscode from 'vscode';
import type { GenerateRequest } from '../../engine/generate';
import type { Session } from '../session';
import { parseFromGenerate, runStem } from './runsLogic';
import { describeInterventions, hasInterventions } from '../../shared/interventions';
import { RUNS_PROTOCOL_VERSION, type FromGenerate, type GenerateInit, type GenerateOptions, type GenerateSession, type Lane, type ToGenerate } from '../../shared/runsProtocol';
import { LIMITS } from '../../shared/validate';
import type { WatchedToken } from '../../shared/watch';
import { SinglePanel, WebviewHost } from '../webviewHost';

export const GENERATE_VIEW_TYPE = 'attnscope.generate';

export interface LaneState {
  text: string;
  tokens: number;
  stopReason: string | null;
  /** per generated token: the probabilities of the watched tokens (`watchedTokens`, in order) */
  watched: number[][];
}

const emptyLane = (): LaneState => ({ text: '', tokens: 0, stopReason: null, watched: [] });

export class GeneratePanel extends WebviewHost<FromGenerate, ToGenerate> {
  private static readonly slot = new SinglePanel<GeneratePanel>(GENERATE_VIEW_TYPE);
  running = false;
  /** what each lane generated so far (tests read it) */
  readonly lanes: Record<Lane, LaneState> = { with: emptyLane(), without: emptyLane() };
  /** the session's watched tokens when the last generation started (tests) */
  watchedTokens: WatchedToken[] = [];
  private prompt = '';
  private stopCurrent: (() => void) | undefined;
  private stopped = false;

  static get current(): GeneratePanel | undefined {
    return GeneratePanel.slot.current;
  }

  static show(ctx: vscode.ExtensionContext, session: Session): GeneratePanel {
    const cur = GeneratePanel.slot.current;
    if (cur) cur.post({ type: 'init', init: cur.initState() });
    return GeneratePanel.slot.show(ctx, 'AttnScope: Generate', (panel) => new GeneratePanel(panel, ctx, session));
  }

  private constructor(
    override readonly panel: vscode.WebviewPanel,
    ctx: vscode.ExtensionContext,
    private readonly session: Session,
  ) {
    super(panel, ctx.extensionUri, { script: 'generate', title: 'AttnScope: Generate', version: RUNS_PROTOCOL_VERSION, parse: parseFromGenerate }, session.log);
    // follow the session: Reset Interventions, a head masked or another prompt inspected changes
    // what the panel lists and whether the "with" lane runs
    this.subs.push(
      session.onDidChange((what) => {
        if (what === 'interventions' || what === 'run') this.post({ type: 'session', session: this.sessionState() });
      }),
    );
  }

  static defaults(): GenerateOptions {
    const c = vscode.workspace.getConfiguration('attnscope.generate');
    const n = Number(c.get('maxTokens', 32));
    const t = Number(c.get('temperature', 0));
    const seed = Number(c.get('seed', 0));
    return {
      maxTokens: Number.isInteger(n) && n >= 1 && n <= LIMITS.maxTokens ? n : 32,
      temperature: Number.isFinite(t) && t >= 0 && t <= LIMITS.temperature ? t : 0,
      seed: Number.isInteger(seed) && seed >= 0 && seed <= LIMITS.seed ? seed : 0,
    };
  }

  private sessionState(): GenerateSession {
    const s = this.session;
    return { prompt: s.prompt, promptName: runStem(s.doc?.path), interventions: describeInterventions(s.interventions, s.prompt) };
  }

  private initState(): GenerateInit {
    return { ...this.sessionState(), options: GeneratePanel.defaults() };
  }

  protected override onReady(messageId: number): void {
    this.reply(messageId, { type: 'init', init: this.initState() });
  }

  protected override async handle(body: Exclude<FromGenerate, { type: 'ready' }>): Promise<void> {
    switch (body.type) {
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
  }

  /** Generates without, then with, the current interventions (one worker, one after the other). */
  async generate(options: GenerateOptions): Promise<void> {
    if (this.running) throw new Error('a generation is running; stop it first');
    const s = this.session;
    if (!s.doc) throw new Error('inspect a prompt first; generation continues the inspected prompt');
    // the interventions when Generate was pressed: a change while the first lane runs does not
    // change what the second one runs with
    const interventions = s.interventions;
    const lanes: Lane[] = hasInterventions(interventions) ? ['without', 'with'] : ['without'];
    // Running from here on: a Stop pressed while the model is still loading is kept, not lost.
    this.running = true;
    this.stopped = false;
    try {
      await s.ensureModel();
    } catch (e) {
      this.running = false;
      throw e;
    }
    this.prompt = s.prompt;
    // the watched tokens when Generate was pressed: every step reports their probabilities
    const watched = s.watched.map((t) => ({ id: t.id, text: t.text }));
    this.watchedTokens = watched;
    for (const l of ['with', 'without'] as Lane[]) this.lanes[l] = emptyLane();
    this.post({ type: 'started', lanes, options, ...(watched.length ? { watched } : {}) });
    try {
      for (const lane of lanes) {
        if (this.stopped) {
          this.lanes[lane].stopReason = 'cancelled';
          this.post({ type: 'done', lane, stopReason: 'cancelled', tokens: 0, perTokenMs: 0 });
          continue;
        }
        const req: GenerateRequest = { prompt: this.prompt, interventions: lane === 'with' ? interventions : undefined, maxTokens: options.maxTokens, temperature: options.temperature, seed: options.seed, ...(watched.length ? { watch: watched.map((t) => t.id) } : {}) };
        const g = s.engine.generate(req, (t) => {
          this.lanes[lane].text += t.text;
          this.lanes[lane].tokens++;
          this.lanes[lane].watched.push(t.watched ?? []);
          this.post({ type: 'token', lane, text: t.text, prob: t.prob, ...(t.watched ? { watched: t.watched } : {}) });
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

  override dispose(): void {
    this.stop();
    super.dispose();
  }
}
