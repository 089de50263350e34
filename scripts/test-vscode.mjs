#!/usr/bin/env node
// The integration suite (test/integration) under @vscode/test-electron: downloads a desktop VS Code
// (cached in .cache/vscode-test) and runs out/test/integration/index.js in its extension host.
// Where no desktop VS Code can be downloaded because there is no network (as on the machines this
// was written on), it prints one line, "skipped: no VS Code desktop (offline)", and exits 0; every
// other failure exits 1. Offline, `npm run test:integration` runs the same suite in code-server.
//
//   node scripts/test-vscode.mjs            env: VSCODE_VERSION (default "stable"), DISPLAY (Linux needs an X server, e.g. xvfb-run)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, SAMPLE_PROMPT, build, elapsed, testModel, writeWorkspaceSettings } from './lib/testenv.mjs';

const t0 = Date.now();
const say = (m) => process.stdout.write(`[test:vscode ${elapsed(t0)}] ${m}\n`);
const NETWORK = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|getaddrinfo|socket hang up|fetch failed|Connect Timeout Error/;

function causeChain(err) {
  const parts = [];
  for (let e = err; e && parts.length < 6; e = e.cause) parts.push(`${e.code ? `${e.code} ` : ''}${e.message ?? e}`);
  return parts.join(' <- ');
}

const { downloadAndUnzipVSCode, runTests } = await import('@vscode/test-electron');
build(['--integration']);
const model = testModel();

let vscodeExecutablePath;
try {
  vscodeExecutablePath = await downloadAndUnzipVSCode({ version: process.env.VSCODE_VERSION || 'stable', cachePath: path.join(REPO, '.cache', 'vscode-test') });
} catch (err) {
  const why = causeChain(err);
  if (NETWORK.test(why)) {
    say(`skipped: no VS Code desktop (offline) — the download failed: ${why.split('\n')[0].slice(0, 200)}; the same suite runs in code-server with npm run test:integration`);
    process.exit(0);
  }
  process.stderr.write(`[test:vscode] FAILED: downloading VS Code: ${why}\n`);
  process.exit(1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-vscode-'));
const workspace = path.join(tmp, 'workspace');
fs.mkdirSync(workspace, { recursive: true });
fs.writeFileSync(path.join(workspace, 'sample.prompt'), SAMPLE_PROMPT);
fs.writeFileSync(path.join(workspace, 'empty.prompt'), '');
writeWorkspaceSettings(workspace, model, { 'security.workspace.trust.enabled': false });
const resultFile = path.join(tmp, 'result.json');
let code = 0;
try {
  code = await runTests({
    vscodeExecutablePath,
    extensionDevelopmentPath: REPO,
    extensionTestsPath: path.join(REPO, 'out', 'test', 'integration', 'index.js'),
    extensionTestsEnv: { ATTNSCOPE_TEST_RESULT: resultFile },
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', path.join(tmp, 'user-data'), '--extensions-dir', path.join(tmp, 'extensions')],
  });
} catch (err) {
  code = 1;
  process.stderr.write(`[test:vscode] FAILED: ${causeChain(err)}\n`);
}
if (fs.existsSync(resultFile)) {
  const r = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
  for (const t of r.results) if (!t.ok) process.stdout.write(`FAIL ${t.title}\n${t.error}\n`);
  say(`VS Code ${r.vscode}: ${r.passed} passed, ${r.failed} failed`);
  if (r.failed) code = 1;
} else if (code === 0) {
  code = 1;
  process.stderr.write('[test:vscode] FAILED: the suite wrote no report\n');
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(code);
