// Saved runs in the extension: auto-saving each inspection to <workspace>/.attnscope/runs (the
// newest 50 auto-saved runs are kept; runs saved with "Save Run As…" are never deleted), the
// commands Save Run As / Open Run / Compare Runs / Compare with Baseline / Generate, and the
// read-only custom editor for *.attnrun files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { compareRuns } from '../../engine/analysis/compare';
import { EngineError, isEngineError } from '../../engine/errors';
import { newRunPath, readRunFile, type SavedRun } from '../../engine/runs/runFile';
import { loadTokenizer } from '../../engine/sources/tokenizer';
import type { Session } from '../session';
import { COMPARE_VIEW_TYPE, CompareWebview, ComparePanel, type CompareHandlers } from './comparePanel';
import { GeneratePanel } from './generatePanel';
import { buildCompareView, buildRunView, fallbackDecoder, parseCompareSource, patternsOnly, runStem, runsToPrune, type Decode } from './runsLogic';
import type { CompareInit, CompareView } from '../../shared/runsProtocol';

export const RUN_EDITOR_VIEW_TYPE = 'attnscope.runEditor';
export const KEEP_AUTO_RUNS = 50;
const EXPLICIT_KEY = 'attnscope.explicitRuns';

export class RunsFeature implements vscode.Disposable {
  /** the last auto-saved file per kept run id */
  private readonly saved = new Map<number, Promise<string | undefined>>();
  private readonly subs: vscode.Disposable[] = [];
  private readonly decoders = new Map<string, Promise<Decode | undefined>>();
  /** the last comparison shown (tests) */
  lastCompare: CompareView | undefined;
  /** the custom editors open now (tests) */
  readonly editors = new Set<CompareWebview>();

  constructor(
    readonly ctx: vscode.ExtensionContext,
    private readonly session: Session,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.subs.push(
      session.onDidChange((what) => {
        if (what === 'run') this.autoSave();
      }),
      vscode.window.registerCustomEditorProvider(RUN_EDITOR_VIEW_TYPE, new RunEditorProvider(this), { supportsMultipleEditorsPerDocument: true }),
      vscode.window.registerWebviewPanelSerializer(COMPARE_VIEW_TYPE, { deserializeWebviewPanel: (panel, state) => this.restoreCompare(panel, state) }),
    );
  }

  /** the open Compare panel / Generation panel (tests) */
  get comparePanel(): ComparePanel | undefined {
    return ComparePanel.current;
  }
  get generatePanel(): GeneratePanel | undefined {
    return GeneratePanel.current;
  }

  /** <workspace>/.attnscope/runs, or undefined without a workspace folder. */
  runsDir(): string | undefined {
    const f = (this.session.doc && vscode.workspace.getWorkspaceFolder(this.session.doc)) ?? vscode.workspace.workspaceFolders?.[0];
    return f && f.uri.scheme === 'file' ? path.join(f.uri.fsPath, '.attnscope', 'runs') : undefined;
  }

  private scratchDir(): string {
    const base = this.ctx.storageUri?.fsPath ?? this.ctx.globalStorageUri.fsPath ?? os.tmpdir();
    return path.join(base, 'runs');
  }

  private saveRunsEnabled(): boolean {
    return vscode.workspace.getConfiguration('attnscope').get<boolean>('saveRuns', true) !== false;
  }

  /** The auto-saved file of a kept run (awaits the save in flight), if it was saved. */
  savedFile(runId: number): Promise<string | undefined> {
    return this.saved.get(runId) ?? Promise.resolve(undefined);
  }

  private autoSave(): void {
    const dir = this.runsDir();
    const runId = this.session.runId;
    if (!dir || !this.saveRunsEnabled() || this.saved.has(runId)) return;
    const p = (async () => {
      try {
        const file = await this.session.engine.saveRun(runId, newRunPath(dir, runStem(this.session.doc?.path)));
        this.prune(dir);
        return file;
      } catch (e) {
        if (!(isEngineError(e) && e.code === 'CANCELLED')) this.log.warn(`saving the run failed: ${e instanceof Error ? e.message : e}`);
        return undefined;
      }
    })();
    this.saved.set(runId, p);
    if (this.saved.size > 20) this.saved.delete(this.saved.keys().next().value!);
  }

  private explicit(): Set<string> {
    return new Set(this.ctx.workspaceState.get<string[]>(EXPLICIT_KEY, []));
  }

  private prune(dir: string): void {
    const entries = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.attnrun'))
      .map((name) => {
        try {
          return { name, mtimeMs: fs.statSync(path.join(dir, name)).mtimeMs };
        } catch {
          return undefined;
        }
      })
      .filter((e): e is { name: string; mtimeMs: number } => !!e);
    const explicit = new Set([...this.explicit()].filter((f) => path.dirname(f) === dir).map((f) => path.basename(f)));
    for (const name of runsToPrune(entries, KEEP_AUTO_RUNS, explicit)) fs.rmSync(path.join(dir, name), { force: true });
  }

  /** Saves the current run to a chosen file (never overwritten, never pruned). */
  async saveRunAs(target?: vscode.Uri): Promise<string | undefined> {
    const s = this.session;
    if (!s.run) throw new EngineError('PROMPT', 'nothing to save; inspect a prompt first');
    const dir = this.runsDir();
    if (!target) {
      const def = dir ? vscode.Uri.file(path.join(dir, `${runStem(s.doc?.path)}.attnrun`)) : undefined;
      target = await vscode.window.showSaveDialog({ filters: { 'AttnScope run': ['attnrun'] }, saveLabel: 'Save run', defaultUri: def });
      if (!target) return undefined;
    }
    let file = target.fsPath;
    if (!file.endsWith('.attnrun')) file += '.attnrun';
    if (fs.existsSync(file)) throw new EngineError('BAD_ARGUMENT', `${path.basename(file)} already exists; runs are never overwritten, choose another name`);
    await s.engine.saveRun(s.runId, file);
    await this.ctx.workspaceState.update(EXPLICIT_KEY, [...this.explicit(), file].slice(-1000));
    void vscode.window.showInformationMessage(`AttnScope: saved the run to ${vscode.workspace.asRelativePath(file)}`);
    return file;
  }

  /** Lets the user pick a run: the saved runs of the workspace, newest first, and "Browse…". */
  async pickRun(title: string, exclude?: string): Promise<string | undefined> {
    const dir = this.runsDir();
    const items: (vscode.QuickPickItem & { file?: string })[] = [];
    if (dir && fs.existsSync(dir)) {
      const files = fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.attnrun'))
        .map((n) => ({ f: path.join(dir, n), m: fs.statSync(path.join(dir, n)).mtimeMs }))
        .sort((a, b) => b.m - a.m)
        .filter((x) => x.f !== exclude);
      for (const { f, m } of files.slice(0, 200)) items.push({ label: `$(history) ${path.basename(f)}`, description: new Date(m).toLocaleString(), file: f });
    }
    items.push({ label: '$(folder-opened) Browse…', description: 'an .attnrun file anywhere' });
    const pick = await vscode.window.showQuickPick(items, { title, matchOnDescription: true });
    if (!pick) return undefined;
    if (pick.file) return pick.file;
    const uris = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'AttnScope run': ['attnrun'] }, openLabel: 'Use this run', defaultUri: dir && fs.existsSync(dir) ? vscode.Uri.file(dir) : undefined });
    return uris?.[0]?.fsPath;
  }

  private decoder(run: SavedRun): Promise<Decode | undefined> {
    const dir = run.header.model.dir;
    if (!dir) return Promise.resolve(undefined);
    let p = this.decoders.get(dir);
    if (!p) {
      p = loadTokenizer(dir)
        .then((t) => (id: number) => t.decodeToken(id))
        .catch(() => undefined);
      this.decoders.set(dir, p);
    }
    return p;
  }

  /** Reads and compares two run files: the panel's view model and the runs its overlay reads. */
  private async comparison(fileA: string, fileB: string, labels?: [string, string]): Promise<{ view: CompareView; runs: [SavedRun, SavedRun] }> {
    const A = readRunFile(fileA);
    const B = readRunFile(fileB);
    const cmp = compareRuns(A, B, 5);
    const fb = fallbackDecoder(A, B);
    const dec = (await this.decoder(A)) ?? (await this.decoder(B));
    const decode: Decode = (id) => (dec ? dec(id) : fb(id));
    const view = buildCompareView(A, B, cmp, decode, labels ?? [path.basename(fileA), path.basename(fileB)]);
    // the panel keeps the patterns (the attention overlay reads rows of them), not the logits
    return { view, runs: [patternsOnly(A), patternsOnly(B)] };
  }

  private compareHandlers(): CompareHandlers {
    return { log: this.log, generate: () => vscode.commands.executeCommand('attnscope.generate') };
  }

  private compareInit(view: CompareView): CompareInit {
    return { view, error: null, canGenerate: !!this.session.doc };
  }

  async compareFiles(fileA: string, fileB: string, labels?: [string, string]): Promise<CompareView> {
    const { view, runs } = await this.comparison(fileA, fileB, labels);
    this.lastCompare = view;
    ComparePanel.show(this.ctx, this.compareInit(view), compareTitle(view), this.compareHandlers(), runs);
    return view;
  }

  /**
   * The Compare panel's serializer: after a window reload, compares the two run files named in the
   * webview's state again; a file that is gone (or damaged) is said in the panel.
   */
  async restoreCompare(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const src = parseCompareSource(state);
    if (!src) {
      const init: CompareInit = { view: null, error: 'This comparison was not saved with the window, so it cannot be restored.', hint: 'Run “AttnScope: Compare Runs…” to compare two runs again.', canGenerate: false };
      ComparePanel.revive(panel, this.ctx, init, 'Compare runs', this.compareHandlers(), null);
      return;
    }
    const gone = src.files.map((f, i) => (fs.existsSync(f) ? null : `${src.labels[i]} (${f})`)).filter((x): x is string => x !== null);
    try {
      if (gone.length) throw new EngineError('PROMPT', `${gone.join(' and ')}: ${gone.length > 1 ? 'the run files are' : 'the run file is'} gone, so the comparison cannot be restored`);
      const { view, runs } = await this.comparison(src.files[0], src.files[1], src.labels);
      this.lastCompare = view;
      ComparePanel.revive(panel, this.ctx, this.compareInit(view), compareTitle(view), this.compareHandlers(), runs);
    } catch (e) {
      const error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      this.log.warn(`restoring the compare panel: ${error}`);
      const init: CompareInit = { view: null, error, hint: 'Run “AttnScope: Compare Runs…” to pick two runs again.', canGenerate: false };
      ComparePanel.revive(panel, this.ctx, init, `Compare: ${src.labels[0]} ↔ ${src.labels[1]}`, this.compareHandlers(), null);
    }
  }

  async compareRunsCommand(): Promise<CompareView | undefined> {
    const a = await this.pickRun('Compare runs: pick run A (e.g. the baseline)');
    if (!a) return undefined;
    const b = await this.pickRun(`Compare ${path.basename(a)} with run B`, a);
    if (!b) return undefined;
    return this.compareFiles(a, b);
  }

  /**
   * Re-runs the inspected prompt without interventions and compares baseline (A) with the current,
   * intervened run (B).
   */
  async compareWithBaseline(): Promise<CompareView> {
    const s = this.session;
    if (!s.doc || !s.run) throw new EngineError('PROMPT', 'inspect a prompt first');
    if (!s.hasInterventions()) throw new EngineError('BAD_ARGUMENT', 'no interventions are active: mask, scale, emphasize or calibrate heads first, then compare with the baseline');
    const dir = this.runsDir() && this.saveRunsEnabled() ? this.runsDir()! : this.scratchDir();
    const stem = runStem(s.doc.path);
    const t0 = performance.now();
    const base = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'AttnScope: baseline run…' }, async () => {
      const { runId } = await s.engine.inspect(s.request(false), true);
      return s.engine.saveRun(runId, newRunPath(dir, `${stem}-baseline`));
    });
    // Re-run with the interventions: restores the kept run the views query, and saves it.
    await s.rerun();
    let current = await this.savedFile(s.runId);
    if (!current) current = await s.engine.saveRun(s.runId, newRunPath(this.scratchDir(), `${stem}-intervened`));
    this.log.info(`compare with baseline: two runs and saves in ${(performance.now() - t0).toFixed(0)} ms`);
    return this.compareFiles(base, current, ['baseline', 'with interventions']);
  }

  async openRun(file?: string): Promise<void> {
    const f = file ?? (await this.pickRun('Open an AttnScope run'));
    if (!f) return;
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(f), RUN_EDITOR_VIEW_TYPE);
  }

  /** The init message of the .attnrun editor for a file: the run, or its one-line error. */
  async runEditorInit(file: string): Promise<CompareInit> {
    try {
      const run = readRunFile(file);
      return { view: buildRunView(run, path.basename(file)), error: null, canGenerate: false };
    } catch (e) {
      return { view: null, error: e instanceof Error ? e.message.split('\n')[0]! : String(e), hint: 'The file was left untouched.', canGenerate: false };
    }
  }

  generate(): GeneratePanel {
    if (!this.session.doc || !this.session.run) throw new EngineError('PROMPT', 'inspect a prompt first; generation continues the inspected prompt');
    return GeneratePanel.show(this.ctx, this.session);
  }

  registerCommands(reg: (id: string, fn: (...args: unknown[]) => unknown) => void): void {
    reg('attnscope.saveRunAs', (uri?: unknown) => this.saveRunAs(uri instanceof vscode.Uri ? uri : undefined));
    reg('attnscope.openRun', (uri?: unknown) => this.openRun(uri instanceof vscode.Uri ? uri.fsPath : undefined));
    reg('attnscope.compareRuns', async (a?: unknown, b?: unknown) => {
      if (a instanceof vscode.Uri && b instanceof vscode.Uri) return this.compareFiles(a.fsPath, b.fsPath);
      return this.compareRunsCommand();
    });
    reg('attnscope.compareWithBaseline', () => this.compareWithBaseline());
    reg('attnscope.generate', () => this.generate());
  }

  dispose(): void {
    for (const d of this.subs) d.dispose();
  }
}

function compareTitle(view: CompareView): string {
  return `Compare: ${view.a.label} ↔ ${view.b?.label ?? ''}`;
}

/** The read-only editor of *.attnrun files; a damaged file shows its error (the file is never written). */
class RunEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly feature: RunsFeature) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(doc: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    const f = this.feature;
    const file = doc.uri.fsPath;
    const init = await f.runEditorInit(file);
    const host = new CompareWebview(panel.webview, f.ctx.extensionUri, init, {
      log: f.log,
      compareWith: async () => {
        const other = await f.pickRun(`Compare ${path.basename(file)} with…`, file);
        if (other) await f.compareFiles(file, other);
      },
    }, path.basename(file));
    f.editors.add(host);
    panel.onDidDispose(() => {
      f.editors.delete(host);
      host.dispose();
    });
  }
}
