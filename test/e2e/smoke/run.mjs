#!/usr/bin/env node
// Smoke test of the real-VS-Code e2e setup (code-server + headless Debian Chromium), offline.
//
//   node test/e2e/smoke/run.mjs            # exit 0 on success
//
// Phase 1 (UI, like a person): open the workspace with the smoke extension under development, open
//   hello.prompt through Quick Open, run "Smoke: Hello" from the command palette, wait for the
//   webview's canvas to be drawn, screenshot to test-results/smoke-*.png.
// Phase 2 (extension tests): reload with extensionTestsPath=tests/index.js in the URL payload and
//   collect the result through window.codeAutomationExit and the JSON report the tests write.
//
// Bounded waits only; code-server and Chromium are always stopped.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  REPO_ROOT,
  ensureCodeServer,
  launchChromium,
  runExtensionTests,
  startCodeServer,
} from '../../../scripts/codeserver/ensure.mjs';

const SMOKE_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.join(REPO_ROOT, 'test-results');
const TIMEOUT = Number(process.env.SMOKE_TIMEOUT_MS || 60_000);
const keepTmp = !!process.env.SMOKE_KEEP_TMP;

const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(1) + ' s';
const say = (msg) => process.stdout.write(`[smoke ${secs()}] ${msg}\n`);

let server;
let browser;
let tmp;
let step = 'start';

let cleaning;
function cleanup() {
  // once, however many paths (signal handler, main's finally) ask for it
  return (cleaning ??= (async () => {
    if (browser) await browser.close().catch(() => {});
    if (server) await server.stop().catch(() => {});
    if (tmp && !keepTmp) fs.rmSync(tmp, { recursive: true, force: true });
  })());
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    process.stderr.write(`[smoke] ${sig}: stopping\n`);
    cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  step = 'ensure code-server';
  await ensureCodeServer();
  say('tools ready');

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-smoke-'));
  if (!keepTmp) process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true })); // also when something calls process.exit early
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(workspace, { recursive: true });
  fs.writeFileSync(path.join(workspace, 'hello.prompt'), 'The quick brown fox jumps over the lazy dog.\nAttention is all you need.\n');
  const resultFile = path.join(tmp, 'test-result.json');
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  for (const f of fs.readdirSync(RESULTS_DIR)) if (/^smoke-.*\.png$/.test(f)) fs.rmSync(path.join(RESULTS_DIR, f)); // no stale pictures

  step = 'start code-server';
  server = await startCodeServer({
    workspace,
    extensionsDir: path.join(tmp, 'extensions'),
    userDataDir: path.join(tmp, 'user-data'),
    extensionDevelopmentPath: SMOKE_DIR,
    settings: { 'workbench.colorTheme': 'Default Dark Modern' },
    env: { ATTNSCOPE_TEST_RESULT: resultFile },
  });
  say(`code-server up at ${server.url} (log: ${path.relative(REPO_ROOT, server.logFile)})`);

  step = 'launch chromium';
  browser = await launchChromium();
  const { page } = browser;
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const external = new Set();
  browser.context.on('request', (req) => {
    const u = new URL(req.url());
    if (/^(https?|wss?):$/.test(u.protocol) && !['127.0.0.1', 'localhost'].includes(u.hostname)) external.add(u.origin);
  });

  // ---- phase 1: the UI path -----------------------------------------------------------------
  step = 'open workbench';
  await server.open(page, { timeoutMs: TIMEOUT }); // = openWorkbench(page, { url, folder: workspace, extensionDevelopmentPath: SMOKE_DIR })
  say('workbench loaded');

  step = 'open hello.prompt via Quick Open';
  // The explorer shows the file once the remote file system answered.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'hello.prompt' }).first().waitFor();
  await page.locator('.monaco-workbench').click({ position: { x: 700, y: 400 } }).catch(() => {});
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor();
  await input.fill('hello.prompt'); // no leading '>' = file search (ripgrep on the server)
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'hello.prompt' }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: 'hello.prompt' }).waitFor();
  await page.locator('.editor-group-container .monaco-editor .view-lines', { hasText: 'quick' }).first().waitFor();
  say('hello.prompt open in the editor');

  step = 'run "Smoke: Hello" from the command palette';
  await page.keyboard.press('F1');
  await input.waitFor();
  await input.fill('>Smoke: Hello');
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'Smoke: Hello' }).waitFor();
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });

  step = 'wait for the webview canvas';
  // A webview is an iframe (.webview) whose document holds a second iframe (#active-frame) with our HTML.
  const webview = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
  const canvas = webview.locator('canvas#smoke-canvas[data-drawn="1"]');
  await canvas.waitFor();
  const painted = await canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  if (painted < 1000) throw new Error(`webview canvas has only ${painted} painted pixels`);
  const status = await webview.locator('#status').textContent();
  say(`webview drew: "${status}" (${painted} painted pixels)`);

  step = 'check the editor decoration';
  // Decorations with a backgroundColor render as elements with a generated `ced-…` class in the view overlays.
  const decorations = page.locator('.editor-group-container .monaco-editor .view-overlays [class*="ced-"]');
  await decorations.first().waitFor();
  say(`editor decorations visible: ${await decorations.count()}`);

  step = 'screenshots';
  await page.screenshot({ path: path.join(RESULTS_DIR, 'smoke-workbench.png') });
  await canvas.screenshot({ path: path.join(RESULTS_DIR, 'smoke-webview.png') });
  await page.locator('.editor-group-container').first().screenshot({ path: path.join(RESULTS_DIR, 'smoke-editor.png') });
  say('screenshots: test-results/smoke-workbench.png, smoke-webview.png, smoke-editor.png');

  // ---- phase 2: extension tests (the path the mocha integration suite uses) -----------------
  step = 'extension tests (extensionTestsPath)';
  await page.close();
  const testPage = await browser.context.newPage();
  testPage.setDefaultTimeout(TIMEOUT);
  const { exitCode, logs } = await runExtensionTests(testPage, {
    url: server.url,
    folder: workspace,
    extensionDevelopmentPath: SMOKE_DIR,
    extensionTestsPath: path.join(SMOKE_DIR, 'tests', 'index.js'),
    timeoutMs: 2 * TIMEOUT,
  });
  const wsResult = path.join(workspace, '.vscode-test-result.json');
  const reportFile = fs.existsSync(resultFile) ? resultFile : fs.existsSync(wsResult) ? wsResult : null;
  const report = reportFile ? JSON.parse(fs.readFileSync(reportFile, 'utf8')) : null;
  await testPage.screenshot({ path: path.join(RESULTS_DIR, 'smoke-tests.png') }).catch(() => {});
  const hostLines = logs.filter((l) => !l.startsWith('[console.') && /✔|✘|passed, .* failed/.test(l));
  for (const l of hostLines) say(`ext host: ${l}`);
  say(`codeAutomationExit(${exitCode}); report ${reportFile ? `via ${reportFile === resultFile ? '$ATTNSCOPE_TEST_RESULT' : 'workspace file'}` : 'missing'}`);
  if (report) for (const r of report.results) say(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.ok ? '' : `\n${r.error}`}`);
  if (!report) throw new Error('the extension tests wrote no report');
  if (exitCode !== 0 || report.failed > 0) throw new Error(`extension tests failed (exit code ${exitCode}, ${report.failed} failed)`);
  if (pageErrors.length) say(`page errors (not fatal): ${pageErrors.slice(0, 3).join(' | ')}`);
  if (external.size) say(`requests to non-loopback hosts (blocked): ${[...external].join(' ')}`);
  return report;
}

let code = 0;
try {
  const report = await main();
  say(`smoke OK: ${report.passed} passed, ${report.failed} failed`);
} catch (err) {
  code = 1;
  process.stderr.write(`[smoke ${secs()}] FAILED at "${step}": ${err && err.message ? err.message.split('\n')[0] : err}\n`);
  if (process.env.SMOKE_DEBUG) process.stderr.write(`${err && err.stack}\n`);
  if (browser) {
    const p = browser.context.pages()[0];
    if (p) await p.screenshot({ path: path.join(RESULTS_DIR, 'smoke-failure.png') }).catch(() => {});
    process.stderr.write(`[smoke] failure screenshot (if any): test-results/smoke-failure.png; code-server log: ${server ? server.logFile : 'n/a'}\n`);
  }
} finally {
  await cleanup();
}
process.exit(code);
