#!/usr/bin/env node
// Integration suite (mocha, test/integration) inside a real VS Code extension host, offline:
// code-server 4.100.3 (VS Code 1.100.3) + headless Chromium; the extension under development is
// this repository, the tests module is out/test/integration/index.js (the URL payload's
// extensionTestsPath). On a desktop with network, `npm run test:vscode` runs the same suite under
// @vscode/test-electron.
//
//   node scripts/test-integration.mjs [--grep <pattern>]     exit 0 when every test passed
//
// Env: ATTNSCOPE_TEST_TIMEOUT_MS (whole run, default 240000), ATTNSCOPE_KEEP_TMP=1.
import fs from 'node:fs';
import path from 'node:path';
import { ensureCodeServer, launchChromium, runExtensionTests } from './codeserver/ensure.mjs';
import { REPO, tempWorkspace, startDevServer, RESULTS_DIR, SAMPLE_PROMPT, build, elapsed, testModel, writeWorkspaceSettings, cleanupFor, cleanupOnSignals } from './lib/testenv.mjs';

const t0 = Date.now();
const say = (m) => process.stdout.write(`[integration ${elapsed(t0)}] ${m}\n`);
const TIMEOUT = Number(process.env.ATTNSCOPE_TEST_TIMEOUT_MS || 240_000);
const argv = process.argv.slice(2);
const grep = argv.includes('--grep') ? argv[argv.indexOf('--grep') + 1] : undefined;

let server, browser, tmp, step = 'start';
const cleanup = cleanupFor(() => ({ browser, server, tmp }), 'ATTNSCOPE_KEEP_TMP');
cleanupOnSignals(cleanup);

async function main() {
  step = 'build';
  build(['--integration']);
  const model = testModel();
  say(`built dist/ and out/test/integration/; model: ${model.kind}`);

  step = 'ensure code-server';
  await ensureCodeServer({ quiet: true });

  let workspace;
  ({ tmp, workspace } = tempWorkspace('attnscope-itest-'));
  fs.writeFileSync(path.join(workspace, 'sample.prompt'), SAMPLE_PROMPT);
  fs.writeFileSync(path.join(workspace, 'empty.prompt'), '');
  writeWorkspaceSettings(workspace, model);
  const resultFile = path.join(tmp, 'result.json');

  step = 'start code-server';
  server = await startDevServer(tmp, workspace, {
    env: { ATTNSCOPE_TEST_RESULT: resultFile, ...(grep ? { ATTNSCOPE_TEST_GREP: grep } : {}) },
  });
  say(`code-server at ${server.url}`);

  step = 'launch chromium';
  browser = await launchChromium();
  const page = browser.page;
  page.setDefaultTimeout(60_000);

  step = 'run the suite in the extension host';
  const { exitCode, logs } = await runExtensionTests(page, {
    url: server.url,
    folder: workspace,
    extensionDevelopmentPath: REPO,
    extensionTestsPath: path.join(REPO, 'out', 'test', 'integration', 'index.js'),
    timeoutMs: TIMEOUT,
  });
  // mocha's spec reporter, as forwarded from the extension host
  const noise = /^(Resolving connection|Resolved connection|Creating a socket|Ignoring fetching|\[Service Worker\]|ChatSessionStore|Updating additional)/;
  const spec = logs.filter((l) => /^\[(log|info|error|warn)\]/.test(l)).map((l) => l.replace(/^\[\w+\] /, '')).filter((l) => !noise.test(l));
  for (const l of spec) for (const line of l.split('\n')) if (line.trim()) process.stdout.write(`  | ${line}\n`);
  const report = fs.existsSync(resultFile) ? JSON.parse(fs.readFileSync(resultFile, 'utf8')) : null;
  if (!report) {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    fs.writeFileSync(path.join(RESULTS_DIR, 'integration-log.txt'), logs.join('\n'));
    throw new Error(`the suite wrote no report (codeAutomationExit ${exitCode}); extension-host log in test-results/integration-log.txt, server log ${server.logFile}`);
  }
  for (const r of report.results) if (!r.ok) process.stdout.write(`FAIL ${r.title}\n${r.error}\n`);
  say(`VS Code ${report.vscode} (${report.remoteName ?? 'local'}): ${report.passed} passed, ${report.failed} failed in ${(report.ms / 1000).toFixed(1)} s; exit code ${exitCode}`);
  if (exitCode !== 0 || report.failed > 0 || report.passed === 0) throw new Error(`${report.failed} failed (exit code ${exitCode})`);
}

let code = 0;
try {
  await main();
  say('integration OK');
} catch (err) {
  code = 1;
  process.stderr.write(`[integration ${elapsed(t0)}] FAILED at "${step}": ${err?.message?.split('\n')[0] ?? err}\n`);
  if (server) process.stderr.write(`[integration] code-server log: ${server.logFile}\n`);
} finally {
  await cleanup();
}
process.exit(code);
