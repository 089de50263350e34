// Shared helpers of the integration suite: the extension's API, the workspace fixture, bounded
// condition waits (no fixed sleeps) and a spy on error notifications.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';

export const EXT_ID = 'attnscope.attnscope';

export async function api(): Promise<AttnScopeApi> {
  const ext = vscode.extensions.getExtension<AttnScopeApi>(EXT_ID);
  assert.ok(ext, `${EXT_ID} is not installed in this extension host`);
  const exports = await ext.activate();
  assert.ok(exports && exports.session, 'activate() returned no API');
  return exports;
}

export function folder(): vscode.WorkspaceFolder {
  const f = vscode.workspace.workspaceFolders?.[0];
  assert.ok(f, 'the integration tests need a workspace folder (the runner opens one)');
  return f;
}

export function fileUri(name: string): vscode.Uri {
  return vscode.Uri.joinPath(folder().uri, name);
}

/** Opens a workspace file in the first editor column and makes it the active editor. */
export async function openEditor(name: string): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument(fileUri(name));
  return vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
}

/** Polls `cond` until it returns a truthy value (returned) or `timeoutMs` passes (then fails with `what`). */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until the extension's queued work is done and the session is not busy. */
export async function settle(a: AttnScopeApi, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => {
    await a.idle();
    return a.session.busy === null;
  }, 'the session to be idle', timeoutMs);
  await a.idle();
}

/**
 * Records error notifications. The test modules live inside the extension's folder, so VS Code's
 * module interceptor hands them the same `vscode` API object as the extension: wrapping
 * `window.showErrorMessage` here sees the extension's calls. `supported` is false when the API
 * object cannot be patched (then tests fall back to weaker checks).
 */
export class ErrorSpy implements vscode.Disposable {
  readonly messages: string[] = [];
  readonly supported: boolean;
  private readonly original: typeof vscode.window.showErrorMessage;

  constructor() {
    const w = vscode.window as { showErrorMessage: typeof vscode.window.showErrorMessage };
    this.original = w.showErrorMessage;
    const messages = this.messages;
    const original = this.original;
    const spy = function (this: unknown, message: string, ...rest: unknown[]) {
      messages.push(String(message));
      // the notification stays visible in a real window, but nobody waits on the button
      void (original as (...a: unknown[]) => Thenable<unknown>).call(vscode.window, message, ...rest);
      return Promise.resolve(undefined);
    } as unknown as typeof vscode.window.showErrorMessage;
    try {
      w.showErrorMessage = spy;
    } catch {
      /* frozen API object */
    }
    this.supported = w.showErrorMessage === spy;
  }

  dispose(): void {
    if (this.supported) (vscode.window as { showErrorMessage: unknown }).showErrorMessage = this.original;
  }
}

export async function setSetting(key: string, value: unknown): Promise<void> {
  const [section, ...rest] = key.split('.');
  const name = rest.join('.');
  await vscode.workspace.getConfiguration(section).update(name, value, vscode.ConfigurationTarget.Workspace);
  // the extension host's view of the configuration may lag behind the write
  await waitFor(() => vscode.workspace.getConfiguration(section).inspect(name)?.workspaceValue === value, `setting ${key} = ${JSON.stringify(value)} to take effect (now ${JSON.stringify(vscode.workspace.getConfiguration(section).inspect(name))})`, 10_000);
}

export function maxAbsDiff(a: { id: number; prob: number }[], b: { id: number; prob: number }[]): number {
  const pb = new Map(b.map((n) => [n.id, n.prob]));
  let d = 0;
  for (const n of a) d = Math.max(d, Math.abs(n.prob - (pb.get(n.id) ?? 0)));
  // a changed top-K membership counts as a change too
  return d;
}
