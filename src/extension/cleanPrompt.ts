// The clean prompt of "Patch Heads from a Clean Prompt": another open editor, the selection in
// another editor, or the prompt of a saved run (.attnrun; only its header's prompt text is used,
// nothing named inside the run is opened). Also takes a caller's argument (tests, keybindings): a
// text, {text, label}, or a Uri of a document or an .attnrun file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError } from '../engine/errors';
import { readRunFileAsync } from '../engine/runs/runFile';
import type { CleanPrompt, Session } from './session';

const preview = (text: string): string => {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 70 ? `${one.slice(0, 69)}…` : one;
};

async function fromRun(file: string): Promise<CleanPrompt> {
  const run = await readRunFileAsync(file, { tensors: false });
  const text = run.header.prompt;
  if (typeof text !== 'string' || text.length === 0) throw new EngineError('PROMPT', `${path.basename(file)} has no prompt to use as the clean prompt`);
  return { text, label: `run ${path.basename(file)}` };
}

async function fromUri(uri: vscode.Uri): Promise<CleanPrompt> {
  if (uri.path.endsWith('.attnrun')) return fromRun(uri.fsPath);
  const doc = await vscode.workspace.openTextDocument(uri);
  return { text: doc.getText(), label: path.basename(doc.fileName), doc: doc.uri.toString() };
}

/** The clean prompt from a caller's argument, or picked by the user (undefined when cancelled). */
export async function pickCleanPrompt(session: Session, arg?: unknown): Promise<CleanPrompt | undefined> {
  if (typeof arg === 'string') return { text: arg, label: 'the given text' };
  if (arg instanceof vscode.Uri) return fromUri(arg);
  if (arg && typeof arg === 'object' && typeof (arg as { text?: unknown }).text === 'string') {
    const a = arg as { text: string; label?: unknown };
    return { text: a.text, label: typeof a.label === 'string' ? a.label.slice(0, 200) : 'the given text' };
  }
  if (arg !== undefined) throw new EngineError('BAD_ARGUMENT', 'the clean prompt must be a text, {text, label} or a file');

  const inspected = session.doc?.toString();
  type Item = vscode.QuickPickItem & { get?: () => Promise<CleanPrompt | undefined> };
  const items: Item[] = [];
  const sep = (label: string) => items.push({ label, kind: vscode.QuickPickItemKind.Separator });

  const selections = vscode.window.visibleTextEditors.filter((e) => !e.selection.isEmpty && e.document.uri.toString() !== inspected);
  if (selections.length) sep('Selection in another editor');
  for (const e of selections) {
    const text = e.document.getText(e.selection);
    const name = path.basename(e.document.fileName);
    const lines = `${e.selection.start.line + 1}–${e.selection.end.line + 1}`;
    items.push({ label: `$(selection) Selection in ${name}`, description: `lines ${lines}`, detail: preview(text), get: async () => ({ text, label: `selection in ${name} (lines ${lines})`, doc: e.document.uri.toString() }) });
  }

  const docs = vscode.workspace.textDocuments.filter((d) => (d.uri.scheme === 'file' || d.uri.scheme === 'untitled') && d.uri.toString() !== inspected && !d.fileName.endsWith('.attnrun') && d.getText().trim().length > 0);
  if (docs.length) sep('Open editors');
  for (const d of docs) {
    items.push({ label: `$(file) ${path.basename(d.fileName)}`, description: vscode.workspace.asRelativePath(d.uri), detail: preview(d.getText()), get: async () => ({ text: d.getText(), label: path.basename(d.fileName), doc: d.uri.toString() }) });
  }

  const folder = (session.doc && vscode.workspace.getWorkspaceFolder(session.doc)) ?? vscode.workspace.workspaceFolders?.[0];
  const dir = folder?.uri.scheme === 'file' ? path.join(folder.uri.fsPath, '.attnscope', 'runs') : undefined;
  const runs = dir && fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((n) => n.endsWith('.attnrun')).map((n) => ({ f: path.join(dir, n), m: fs.statSync(path.join(dir, n)).mtimeMs })).sort((a, b) => b.m - a.m).slice(0, 30)
    : [];
  sep('Saved runs (their prompt)');
  for (const { f, m } of runs) items.push({ label: `$(history) ${path.basename(f)}`, description: new Date(m).toLocaleString(), get: () => fromRun(f) });
  items.push({
    label: '$(folder-opened) Browse for a run…',
    description: 'an .attnrun file anywhere',
    get: async () => {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'AttnScope run': ['attnrun'] }, openLabel: 'Use its prompt' });
      return uris?.[0] ? fromRun(uris[0].fsPath) : undefined;
    },
  });

  const pick = await vscode.window.showQuickPick(items, {
    title: 'Patch heads: which prompt is the clean one? (the inspected prompt is the corrupt one; both must have the same number of tokens)',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return pick?.get?.();
}
