// Entry of the integration suite, loaded by VS Code's extension host as `extensionTestsPath`
// (code-server here: scripts/test-integration.mjs; a desktop VS Code: scripts/test-vscode.mjs).
// VS Code awaits run(): resolved = pass, rejected = fail. Besides that, a JSON report with every
// test's result goes to $ATTNSCOPE_TEST_RESULT (or <workspace>/.vscode-test-result.json), so the
// runner can print per-test detail.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

interface TestRecord {
  title: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export function run(): Promise<void> {
  // mocha is resolved from the repository's node_modules at run time (not bundled); mocha 12 is ESM.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const M = require('mocha');
  const Mocha = (M.default || M) as typeof import('mocha');
  const grep = process.env.ATTNSCOPE_TEST_GREP;
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60_000, reporter: 'spec', ...(grep ? { grep } : {}) });
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.itest.js'))
    .sort();
  for (const f of files) mocha.addFile(path.join(__dirname, f));

  const records: TestRecord[] = [];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const report = {
        passed: records.filter((r) => r.ok).length,
        failed: failures,
        ms: Date.now() - t0,
        vscode: vscode.version,
        remoteName: vscode.env.remoteName ?? null,
        results: records,
        finishedAt: new Date().toISOString(),
      };
      const folder = vscode.workspace.workspaceFolders?.[0];
      const out = process.env.ATTNSCOPE_TEST_RESULT || (folder ? path.join(folder.uri.fsPath, '.vscode-test-result.json') : undefined);
      try {
        if (out) fs.writeFileSync(out, JSON.stringify(report, null, 2));
      } catch (e) {
        console.error(`could not write the test report to ${out}: ${e}`);
      }
      if (failures) reject(new Error(`${failures} integration test(s) failed`));
      else resolve();
    });
    runner.on('pass', (t) => records.push({ title: t.fullTitle(), ok: true, ms: t.duration ?? 0 }));
    runner.on('fail', (t, err) => records.push({ title: t.fullTitle(), ok: false, ms: t.duration ?? 0, error: String((err as Error)?.stack ?? err) }));
  });
}
