/// <reference types="mocha" />
// Failure paths: a model folder that does not exist and an empty prompt give an error notification,
// leave the last run alone and do not take the extension host down.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { ErrorSpy, api, openEditor, setSetting, settle, waitFor } from './helpers';

describe('errors', function () {
  let a: AttnScopeApi;
  let spy: ErrorSpy;
  let goodModel: string | undefined;

  before(async () => {
    a = await api();
    goodModel = vscode.workspace.getConfiguration('attnscope').inspect<string>('model')?.workspaceValue;
    const editor = await openEditor('sample.prompt');
    if (!a.session.run || a.session.doc?.toString() !== editor.document.uri.toString()) {
      await vscode.commands.executeCommand('attnscope.inspect');
      await settle(a);
    }
    assert.ok(a.session.run, 'a run to start from');
  });
  beforeEach(() => {
    spy = new ErrorSpy();
  });
  afterEach(() => spy.dispose());
  after(async () => {
    await setSetting('attnscope.model', goodModel);
    await settle(a);
  });

  it('a model folder that does not exist: an error notification, the last run kept, the host alive', async () => {
    const before = a.session.run!;
    const missing = '/nonexistent/attnscope-model-' + process.pid;
    await setSetting('attnscope.model', missing);
    await settle(a);
    await openEditor('sample.prompt');
    const res = await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(res, undefined, 'the command resolves (with nothing) instead of throwing');
    assert.equal(a.session.run?.runId, before.runId, 'session.run stays as before');
    assert.equal(a.session.run, before);
    if (spy.supported) {
      await waitFor(() => spy.messages.find((m) => m.includes('nonexistent') || /model|folder|not found|no such/i.test(m)), 'an error notification about the model folder');
      assert.ok(spy.messages.every((m) => m.startsWith('AttnScope: ')), `messages: ${JSON.stringify(spy.messages)}`);
    } else {
      console.log('    (window.showErrorMessage could not be spied on here; checked the run and the host only)');
    }

    // back to the good model: inspecting works again (the worker and the host survived)
    await setSetting('attnscope.model', goodModel);
    await settle(a);
    const res2 = (await vscode.commands.executeCommand('attnscope.inspect')) as { tokens: number } | undefined;
    await settle(a);
    assert.ok(res2 && res2.tokens > 0, `inspect after restoring the model returned ${JSON.stringify(res2)}; errors: ${JSON.stringify(spy.messages)}`);
    assert.ok(a.session.run!.runId > before.runId, 'a new run with the good model');
    assert.equal(a.session.error, null);
  });

  it('an empty file: a clear error, no crash, the previous run kept', async () => {
    const before = a.session.run!;
    const editor = await openEditor('empty.prompt');
    assert.equal(editor.document.getText().trim(), '');
    const res = await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(res, undefined);
    assert.equal(a.session.run, before, 'the previous run is kept');
    if (spy.supported) {
      const msg = await waitFor(() => spy.messages.find((m) => /empty/i.test(m)), 'an error notification saying the file is empty');
      assert.match(msg, /empty\.prompt/);
    }
    // still alive: the sample inspects fine
    await openEditor('sample.prompt');
    const res2 = (await vscode.commands.executeCommand('attnscope.inspect')) as { tokens: number } | undefined;
    await settle(a);
    assert.ok(res2 && res2.tokens > 0, `inspect of sample.prompt returned ${JSON.stringify(res2)}; errors: ${JSON.stringify(spy.messages)}`);
  });

  it('Toggle Head with a head that does not exist reports an error and changes nothing', async () => {
    const before = a.session.run!;
    const res = await vscode.commands.executeCommand('attnscope.toggleHead', { kind: 'head', layer: 999, head: 0 });
    await settle(a);
    assert.equal(res, undefined);
    assert.equal(a.session.run, before);
    assert.equal(a.session.interventions.scales.length, 0);
    if (spy.supported) await waitFor(() => spy.messages.find((m) => /does not exist/.test(m)), 'an error about the head');
  });

  for (const how of ['abort', 'kill'] as const) {
    it(`the engine process dies (${how === 'abort' ? 'a native abort' : 'killed as for lack of memory'}): one error line, the host alive, the next inspect works`, async () => {
      const before = a.session.run!;
      await assert.rejects(a.session.engine.crashForTest(how), (e: unknown) => e instanceof Error && /engine worker stopped/.test(e.message) && !e.message.includes('\n'));
      if (spy.supported) await waitFor(() => spy.messages.find((m) => /engine worker stopped/.test(m)), 'a notification that the engine stopped');
      assert.equal(a.session.run, before, 'the last run is still shown');
      await openEditor('sample.prompt');
      const res = (await vscode.commands.executeCommand('attnscope.inspect')) as { tokens: number } | undefined;
      await settle(a);
      assert.ok(res && res.tokens > 0, `inspect after the crash returned ${JSON.stringify(res)}; errors: ${JSON.stringify(spy.messages)}`);
      assert.ok(a.session.run!.runId !== before.runId || a.session.run !== before, 'a new run from a new engine process');
    });
  }

  it('Select Model with a folder that fails to open: an error, the setting unchanged, the status bar says so, and a good model clears it', async () => {
    const settingBefore = vscode.workspace.getConfiguration('attnscope').inspect<string>('model')?.globalValue;
    const bad = '/nonexistent/attnscope-select-' + process.pid;
    const res = await vscode.commands.executeCommand('attnscope.selectModel', bad);
    await settle(a);
    assert.equal(res, undefined);
    assert.equal(vscode.workspace.getConfiguration('attnscope').inspect<string>('model')?.globalValue, settingBefore, 'the broken folder is not written to the settings');
    assert.ok(a.session.modelError && /not found|no such|does not exist/i.test(a.session.modelError), `modelError: ${a.session.modelError}`);
    if (spy.supported) await waitFor(() => spy.messages.find((m) => m.includes('attnscope-select-')), 'an error naming the folder');
    await openEditor('sample.prompt');
    const res2 = (await vscode.commands.executeCommand('attnscope.inspect')) as { tokens: number } | undefined;
    await settle(a);
    assert.ok(res2 && res2.tokens > 0, 'the configured model opens again');
    assert.equal(a.session.modelError, null, 'cleared once a model opens');
  });
});
