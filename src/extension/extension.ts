// AttnScope's extension entry: wires the engine worker, the session and the views, and registers
// the commands. VS Code glue only; the engine lives in src/engine and never imports vscode.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError, isEngineError } from '../engine/errors';
import { EngineHost } from '../engine/worker/engineHost';
import type { HeadRef } from '../shared/protocol';
import { OverlayDecorations } from './decorations';
import { HeadsTree, type HeadNode } from './headsTree';
import { TokenHover } from './hover';
import { PANEL_VIEW_TYPE, PanelHost, PanelSerializer } from './panel';
import { Session } from './session';
import { setCacheRoot } from './settings';
import { StatusBar } from './statusBar';
import { parseHeadId, refreshesHeadsView } from './viewLogic';
import { registerCommands } from './commands';
import { RunsFeature } from './runs/runsFeature';
import { registerGpuSupport } from './gpu';
import { registerExportCommands } from './export';

export interface AttnScopeApi {
  session: Session;
  decorations: OverlayDecorations;
  tree: HeadsTree;
  /** saved runs, comparison and generation */
  runs: RunsFeature;
  /** resolves when the views have caught up with the last session change (for tests) */
  idle(): Promise<void>;
}

let log: vscode.LogOutputChannel;

export function reportError(e: unknown): void {
  if (isEngineError(e) && e.code === 'CANCELLED') return;
  const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
  log?.error(msg);
  void vscode.window.showErrorMessage(`AttnScope: ${msg}`, 'Show Log').then((pick) => {
    if (pick) log.show(true);
  });
}

export function activate(ctx: vscode.ExtensionContext): AttnScopeApi {
  log = vscode.window.createOutputChannel('AttnScope', { log: true });
  setCacheRoot(path.join(ctx.globalStorageUri.fsPath, 'compiled'));
  const engine = new EngineHost({
    engineScript: path.join(ctx.extensionPath, 'dist', 'engineProcess.js'),
    onCrash: (m) => reportError(new EngineError('RUNTIME', m)),
  });
  const session = new Session(engine, log, path.join(ctx.extensionPath, 'models', 'default'));
  const decorations = new OverlayDecorations(session);
  const tree = new HeadsTree(session);
  const status = new StatusBar(session);
  const runs = new RunsFeature(ctx, session, log);
  ctx.subscriptions.push(log, session, decorations, tree, status, runs, { dispose: () => void engine.dispose() });

  let pending: Promise<unknown> = Promise.resolve();
  const track = (p: Promise<unknown>) => {
    pending = pending.then(() => p).catch(() => undefined);
  };

  ctx.subscriptions.push(
    session.onDidChange((what) => {
      if (what === 'run' || what === 'overlay' || what === 'interventions') decorations.update();
      if (refreshesHeadsView(what)) tree.refresh();
      status.update();
    }),
    vscode.languages.registerHoverProvider('*', new TokenHover(session)),
    vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, new PanelSerializer(ctx, session)),
    vscode.window.onDidChangeTextEditorSelection((e) => {
      const doc = e.textEditor.document;
      if (!session.run || doc.uri.toString() !== session.doc?.toString() || doc.version !== session.docVersion) return;
      track(session.setCursor(doc.offsetAt(e.selections[0]!.active)).catch(reportError));
    }),
    vscode.window.onDidChangeVisibleTextEditors(() => decorations.update(true)),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.toString() !== session.doc?.toString() || e.contentChanges.length === 0) return;
      session.onDocumentEdited(e);
      decorations.markStale();
    }),
    vscode.workspace.onDidSaveTextDocument((doc) => {
      if (doc.uri.toString() !== session.doc?.toString() || !session.settings.rerunOnSave || session.base !== 0) return;
      track(session.inspect(doc).catch(reportError));
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('attnscope')) return;
      if ((e.affectsConfiguration('attnscope.model') || e.affectsConfiguration('attnscope.device') || e.affectsConfiguration('attnscope.maxTokens')) && session.doc) {
        track(session.rerun().catch(reportError));
      } else if (e.affectsConfiguration('attnscope.overlay')) {
        track(session.refreshOverlay().then(() => decorations.update()).catch(reportError));
      }
    }),
  );

  registerCommands(ctx, { session, decorations, tree, log, reportError, track, showPanel: () => PanelHost.show(ctx, session), pickHead, registerMore: (reg) => {
    runs.registerCommands(reg);
    registerExportCommands(ctx, session, reg);
  } });
  registerGpuSupport(ctx, log, reportError, () => session.modelView()?.device);

  async function pickHead(arg: unknown, prompt: string): Promise<HeadRef | undefined> {
    const node = arg as HeadNode | undefined;
    if (node && node.kind === 'head') return { layer: node.layer, head: node.head };
    const m = session.model;
    if (!m) throw new EngineError('MODEL', 'inspect a prompt first');
    const value = await vscode.window.showInputBox({
      title: prompt,
      prompt: `A head as L{layer}H{head} or layer.head (layers 0..${m.layers - 1}, heads 0..${m.heads - 1})`,
      value: session.selected ? `L${session.selected.layer}H${session.selected.head}` : '',
      validateInput: (v) => (parseHeadId(v, m.layers, m.heads) ? undefined : `Not a head of this model: use e.g. L0H1 (layers 0..${m.layers - 1}, heads 0..${m.heads - 1})`),
    });
    return value === undefined ? undefined : parseHeadId(value, m.layers, m.heads);
  }

  return {
    session,
    decorations,
    tree,
    runs,
    idle: async () => {
      let last: Promise<unknown>;
      do {
        last = pending;
        await last;
      } while (last !== pending);
    },
  };
}

export function deactivate(): void {
  // subscriptions dispose the worker
}
