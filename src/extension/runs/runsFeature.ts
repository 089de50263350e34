// Saved runs in the extension: auto-saving each inspection to <workspace>/.attnscope/runs without
// tensors (a few hundred KB; the folder gets a .gitignore of `*`, and a contributed default of
// search.exclude keeps it out of quick-open and search while the explorer still shows it), pruning
// only files whose header says AttnScope auto-saved them (the newest 50, at most 200 MB together),
// the commands Save Run As (with or without tensors) / Open Run / Compare Runs / Compare with
// Baseline / Generate, and the read-only custom editor for *.attnrun files. Run files are read with
// readRunFileAsync (bounded, off the host's thread for I/O); nothing named inside a run is opened.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { compareRuns } from '../../engine/analysis/compare';
import { EngineError, isEngineError } from '../../engine/errors';
import { isAutoSavedRun, newRunPath, readRunFileAsync, type SavedRun } from '../../engine/runs/runFile';
import type { Session } from '../session';
import { COMPARE_VIEW_TYPE, CompareWebview, ComparePanel, type CompareHandlers } from './comparePanel';
import { GeneratePanel } from './generatePanel';
import { buildCompareView, buildRunView, compareWatch, fallbackDecoder, type WatchList, parseCompareSource, patternsOnly, runStem, runsToPrune, type RunFileEntry } from './runsLogic';
import type { CompareInit, CompareView } from '../../shared/runsProtocol';

export const RUN_EDITOR_VIEW_TYPE = 'attnscope.runEditor';
export const KEEP_AUTO_RUNS = 50;
/** Auto-saved runs may take this many bytes together (the newest one is always kept). */
export const KEEP_AUTO_BYTES = 200 * 1024 * 1024;
const EXPLICIT_KEY = 'attnscope.explicitRuns';

export class RunsFeature implements vscode.Disposable {
  /** the last auto-saved file per kept run id */
  private readonly saved = new Map<number, Promise<string | undefined>>();
  private readonly subs: vscode.Disposable[] = [];
  /** whether a file (by path, size and mtime) is an auto-saved run: headers are read once */
  private readonly autoSavedCache = new Map<string, boolean>();
  private pruning: Promise<void> = Promise.resolve();
  /** the last comparison shown (tests) */
  lastCompare: CompareView | undefined;
  /** the custom editors open now (tests) */
  readonly editors = new Set<CompareWebview>();
  /** the watched list (ids and pair) the shown comparison's `watch` was computed for */
  private compareWatchKey = '';
  private compareWatchSeq = 0;
  /** the last recomputation of the compare panel's watched values (tests await it) */
  compareWatchDone: Promise<void> = Promise.resolve();

  constructor(
    readonly ctx: vscode.ExtensionContext,
    private readonly session: Session,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.subs.push(
      session.onDidChange((what) => {
        if (what === 'run') this.autoSave();
        if (what === 'watch') void this.refreshCompareWatch();
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
        ensureRunsDir(dir);
        const file = await this.session.engine.saveRun(runId, newRunPath(dir, runStem(this.session.doc?.path)), { tensors: false, autoSaved: true });
        await this.prune(dir, [file]);
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

  /** Files shown now (compare panel, run editors): never pruned under them. */
  private shownFiles(): string[] {
    const out: string[] = [];
    const views = [ComparePanel.current?.host.init.view, ...[...this.editors].map((e) => e.init.view)];
    for (const v of views) if (v) out.push(...[v.a.file, v.b?.file].filter((f): f is string => !!f));
    return out;
  }

  /**
   * Deletes the oldest auto-saved runs in `dir` past KEEP_AUTO_RUNS files or KEEP_AUTO_BYTES: only
   * files whose header says AttnScope auto-saved them (read once per file version), never `keep`,
   * files shown now, or files saved with "Save Run As…". One pruning at a time.
   */
  prune(dir: string, keep: string[] = []): Promise<void> {
    const run = async () => {
      const names = (await fs.promises.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.attnrun'));
      const entries: RunFileEntry[] = [];
      for (const name of names) {
        const f = path.join(dir, name);
        const st = await fs.promises.stat(f).catch(() => undefined);
        if (!st?.isFile()) continue;
        const key = `${f}\0${st.size}\0${st.mtimeMs}`;
        let auto = this.autoSavedCache.get(key);
        if (auto === undefined) {
          auto = await isAutoSavedRun(f);
          this.autoSavedCache.set(key, auto);
          if (this.autoSavedCache.size > 5000) this.autoSavedCache.delete(this.autoSavedCache.keys().next().value!);
        }
        entries.push({ name, mtimeMs: st.mtimeMs, size: st.size, autoSaved: auto });
      }
      const protect = new Set([...this.explicit(), ...this.shownFiles(), ...keep].filter((f) => path.dirname(f) === dir).map((f) => path.basename(f)));
      for (const name of runsToPrune(entries, { count: KEEP_AUTO_RUNS, bytes: KEEP_AUTO_BYTES }, protect)) await fs.promises.rm(path.join(dir, name), { force: true });
    };
    this.pruning = this.pruning.then(run, run).catch((e) => this.log.warn(`pruning saved runs: ${e instanceof Error ? e.message : e}`));
    return this.pruning;
  }

  /**
   * Saves the current run to a chosen file (never overwritten, never pruned). `opts.tensors` keeps
   * every position's logits and every head's attention (per-position KL and the attention overlay
   * in comparisons; 151 MB at 1,024 tokens on the default model); asked when not given.
   */
  async saveRunAs(target?: vscode.Uri, opts?: { tensors?: boolean }): Promise<string | undefined> {
    const s = this.session;
    if (!s.run) throw new EngineError('PROMPT', 'nothing to save; inspect a prompt first');
    const dir = this.runsDir();
    let tensors = opts?.tensors;
    if (!target) {
      const def = dir ? vscode.Uri.file(path.join(dir, `${runStem(s.doc?.path)}.attnrun`)) : undefined;
      target = await vscode.window.showSaveDialog({ filters: { 'AttnScope run': ['attnrun'] }, saveLabel: 'Save run', defaultUri: def });
      if (!target) return undefined;
    }
    let file = target.fsPath;
    if (!file.endsWith('.attnrun')) file += '.attnrun';
    if (fs.existsSync(file)) throw new EngineError('BAD_ARGUMENT', `${path.basename(file)} already exists; runs are never overwritten, choose another name`);
    if (tensors === undefined) {
      const T = s.run.tokens.length;
      const m = s.model;
      const mb = m ? ((m.layers * m.heads * T * T + T * m.vocabSize) * 4) / 1e6 : NaN;
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'Run only', description: 'prompt, tokens, head metrics, each position’s top predictions', tensors: false },
          { label: 'With tensors', description: `also every position’s logits and every head’s attention${Number.isFinite(mb) ? ` (about ${mb.toFixed(0)} MB)` : ''}: per-position KL and attention in comparisons`, tensors: true },
        ],
        { title: 'Save run: what to keep' },
      );
      if (!pick) return undefined;
      tensors = pick.tensors;
    }
    if (dir && path.dirname(file) === dir) ensureRunsDir(dir);
    await s.engine.saveRun(s.runId, file, { tensors, autoSaved: false });
    await this.ctx.workspaceState.update(EXPLICIT_KEY, [...this.explicit(), file].slice(-1000));
    void vscode.window.showInformationMessage(`AttnScope: saved the run${tensors ? ' with tensors' : ''} to ${vscode.workspace.asRelativePath(file)}`);
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

  /** Reads and compares two run files: the panel's view model and the runs its overlay reads. */
  private async comparison(fileA: string, fileB: string, labels?: [string, string]): Promise<{ view: CompareView; runs: [SavedRun, SavedRun] }> {
    const [A, B] = await Promise.all([readRunFileAsync(fileA), readRunFileAsync(fileB)]);
    const names: [string, string] = labels ?? [path.basename(fileA), path.basename(fileB)];
    const cmp = compareRuns(A, B, 5, names);
    // token texts come from the runs themselves (tokens, predictions, top-K texts): no tokenizer is loaded
    const watch = this.watchList();
    const view = buildCompareView(A, B, cmp, fallbackDecoder(A, B), names, watch);
    this.compareWatchKey = watchKey(watch);
    // the panel keeps the patterns (the attention overlay reads rows of them), not the logits
    return { view, runs: [patternsOnly(A), patternsOnly(B)] };
  }

  private watchList(): WatchList {
    return { tokens: this.session.watched, pair: this.session.watchPairIds };
  }

  /**
   * The session's watched tokens (or pair) changed: recomputes their values in the shown
   * comparison from the two run files (read again: the panel keeps only the patterns) and sends them.
   */
  private refreshCompareWatch(): Promise<void> {
    const panel = ComparePanel.current;
    const view = panel?.host.init.view;
    const watch = this.watchList();
    const key = watchKey(watch);
    if (!panel || !view || view.mode !== 'compare' || !view.b || !view.a.file || !view.b.file || key === this.compareWatchKey) return this.compareWatchDone;
    this.compareWatchKey = key;
    const seq = ++this.compareWatchSeq;
    const [fa, fb] = [view.a.file, view.b.file];
    this.compareWatchDone = (async () => {
      try {
        const [A, B] = await Promise.all([readRunFileAsync(fa), readRunFileAsync(fb)]);
        if (seq !== this.compareWatchSeq || ComparePanel.current?.host.init.view !== view) return;
        const w = compareWatch(A, B, view.positions, watch);
        panel.host.updateWatch(w);
        if (this.lastCompare === view) this.lastCompare = panel.host.init.view ?? undefined;
      } catch (e) {
        this.compareWatchKey = '';
        const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
        this.log.warn(`watched tokens in the comparison: ${msg}`);
        panel.host.showError( `the watched tokens could not be read from the runs: ${msg}`);
      }
    })();
    return this.compareWatchDone;
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
    // Both runs keep their tensors (per-position KL, attention overlay); they are auto-saved runs,
    // so pruning (by count and total size) removes them in time, never while they are shown.
    const save = { tensors: true, autoSaved: true };
    if (dir === this.runsDir()) ensureRunsDir(dir);
    const base = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'AttnScope: baseline run…' }, async () => {
      const { runId } = await s.engine.inspect(s.request(false), true);
      return s.engine.saveRun(runId, newRunPath(dir, `${stem}-baseline`), save);
    });
    // Re-run with the interventions: restores the kept run the views query, and saves it.
    await s.rerun();
    const current = await s.engine.saveRun(s.runId, newRunPath(dir, `${stem}-intervened`), save);
    this.log.info(`compare with baseline: two runs and saves in ${(performance.now() - t0).toFixed(0)} ms`);
    const view = await this.compareFiles(base, current, ['baseline', 'with interventions']);
    await this.prune(dir, [base, current]);
    return view;
  }

  async openRun(file?: string): Promise<void> {
    const f = file ?? (await this.pickRun('Open an AttnScope run'));
    if (!f) return;
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(f), RUN_EDITOR_VIEW_TYPE);
  }

  /** The init message of the .attnrun editor for a file: the run, or its one-line error. */
  async runEditorInit(file: string): Promise<CompareInit> {
    try {
      const run = await readRunFileAsync(file);
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
    reg('attnscope.saveRunAs', (uri?: unknown, opts?: unknown) => this.saveRunAs(uri instanceof vscode.Uri ? uri : undefined, typeof opts === 'object' && opts !== null && typeof (opts as { tensors?: unknown }).tensors === 'boolean' ? { tensors: (opts as { tensors: boolean }).tensors } : undefined));
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

/**
 * Creates the runs folder with a `.gitignore` of `*` in `.attnscope/` (when the runs folder is
 * `<workspace>/.attnscope/runs`), so saved runs never reach version control.
 */
export function ensureRunsDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const parent = path.dirname(dir);
  const ignore = path.join(path.basename(parent) === '.attnscope' ? parent : dir, '.gitignore');
  try {
    fs.writeFileSync(ignore, '# AttnScope: saved runs and caches stay out of version control\n*\n', { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

function watchKey(w: WatchList): string {
  return `${w.tokens.map((t) => t.id).join(',')}|${w.pair?.join(',') ?? ''}`;
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
