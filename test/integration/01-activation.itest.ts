/// <reference types="mocha" />
// Activation, the API object and command registration, in a real extension host.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { EXT_ID, api } from './helpers';

const COMMANDS = [
  'attnscope.inspect',
  'attnscope.selectModel',
  'attnscope.toggleHead',
  'attnscope.setHeadScale',
  'attnscope.maskLayer',
  'attnscope.unmaskAll',
  'attnscope.emphasizeSelection',
  'attnscope.resetInterventions',
  'attnscope.openPanel',
  'attnscope.export',
  'attnscope.toggleDirection',
  'attnscope.sortHeads',
  'attnscope.clearOverlay',
  'attnscope.showLog',
];

describe('activation', () => {
  it('the extension is installed and activates with its API', async () => {
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.ok(ext, `${EXT_ID} not found`);
    const a = await api();
    assert.equal(ext.isActive, true);
    assert.equal(typeof a.idle, 'function');
    assert.equal(typeof a.decorations.update, 'function');
    assert.ok(a.tree, 'no heads tree in the API');
    assert.equal(a.session.run, undefined, 'no run before the first inspection');
  });

  it('registers every contributed command', async () => {
    await api();
    const all = new Set(await vscode.commands.getCommands(true));
    const missing = COMMANDS.filter((c) => !all.has(c));
    assert.deepEqual(missing, [], `commands not registered: ${missing.join(', ')}`);
    const contributed = (vscode.extensions.getExtension(EXT_ID)!.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
    assert.deepEqual(contributed.filter((c) => !all.has(c)), [], 'a command in package.json is not registered');
  });

  it('opening a .prompt file gives it the prompt language', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder);
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'sample.prompt'));
    assert.equal(doc.languageId, 'prompt');
  });
});
