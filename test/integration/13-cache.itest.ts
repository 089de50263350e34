/// <reference types="mocha" />
// Clear Compiled-Model Cache: runs in the engine process, keeps the entry the open model uses, and
// the next inspection still works.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { api, openEditor, settle } from './helpers';

describe('compiled-model cache', function () {
  this.timeout(120_000);
  let a: AttnScopeApi;

  before(async () => {
    a = await api();
    await openEditor('sample.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.ok(a.session.run, 'a run with an open model');
  });

  it('Clear Compiled-Model Cache keeps the open model\'s entry and inspecting still works', async () => {
    const r = (await vscode.commands.executeCommand('attnscope.clearCache')) as { removed: number; bytes: number; keptInUse: number } | undefined;
    assert.ok(r, 'the command returns what it removed');
    assert.ok(r.keptInUse >= 1, `the open model's entry is kept (${JSON.stringify(r)})`);
    const before = a.session.run!.runId;
    const res = (await vscode.commands.executeCommand('attnscope.inspect')) as { tokens: number } | undefined;
    await settle(a);
    assert.ok(res && res.tokens > 0, 'inspect after clearing');
    assert.notEqual(a.session.run!.runId, before);
  });
});
