// Extension-tests module for the smoke e2e: loaded by VS Code's extension host because the workbench
// URL carries ["extensionTestsPath", ...] in its payload. VS Code awaits run(): resolved -> exit code
// 0, rejected -> 1, reported to the page as window.codeAutomationExit(code).
// Besides that, it writes a JSON report to $ATTNSCOPE_TEST_RESULT (or <workspace>/.vscode-test-result.json)
// so the runner sees per-test results even if the exit-code channel were lost.
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

const EXT_ID = 'attnscope-test.attnscope-smoke';

async function run() {
  const results = [];
  async function test(name, fn) {
    const t0 = Date.now();
    try {
      const detail = await fn();
      results.push({ name, ok: true, ms: Date.now() - t0, detail });
      console.log(`  ✔ ${name}`);
    } catch (err) {
      results.push({ name, ok: false, ms: Date.now() - t0, error: String((err && err.stack) || err) });
      console.log(`  ✘ ${name}: ${err && err.message}`);
    }
  }

  await test('extension is present and activates', async () => {
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.ok(ext, `${EXT_ID} not found`);
    await ext.activate();
    assert.strictEqual(ext.isActive, true);
    return { version: vscode.version, remoteName: vscode.env.remoteName, extensionKind: ext.extensionKind };
  });

  await test('smoke.hello is registered', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('smoke.hello'), 'smoke.hello missing from getCommands()');
    return { commandCount: commands.length };
  });

  await test('smoke.hello decorates the editor and the webview draws the Float32 matrix', async () => {
    const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
    assert.ok(folder, 'no workspace folder');
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'hello.prompt'));
    await vscode.window.showTextDocument(doc);
    const r = await vscode.commands.executeCommand('smoke.hello');
    assert.ok(r, 'command returned nothing');
    assert.ok(r.decorated >= 1, `decorated ${r.decorated} ranges`);
    assert.strictEqual(r.cells, 64);
    assert.strictEqual(r.byteLength, 64 * 4);
    assert.ok(Math.abs(r.sum - 8) < 1e-4, `row sums total ${r.sum}, expected 8`);
    return r;
  });

  const failed = results.filter((r) => !r.ok).length;
  const report = { passed: results.length - failed, failed, results, finishedAt: new Date().toISOString() };
  const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
  const out = process.env.ATTNSCOPE_TEST_RESULT || (folder && path.join(folder.uri.fsPath, '.vscode-test-result.json'));
  if (out) fs.writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`${report.passed} passed, ${report.failed} failed`);
  if (failed) throw new Error(`${failed} smoke test(s) failed`);
}

module.exports = { run };
