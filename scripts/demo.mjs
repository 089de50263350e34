#!/usr/bin/env node
// npm run demo: VS Code (code-server) on 127.0.0.1 with AttnScope under development and a workspace
// holding the example prompts, ready in a browser.
//
//   node scripts/demo.mjs [--port N]      installs what is missing (code-server + Chromium + playwright-core into
//                                          .tools/, dist/ via esbuild), starts code-server, prints the URL, runs until Ctrl+C
//   node scripts/demo.mjs --check         the same, then opens the URL in headless Chromium, opens an example, runs
//                                          "AttnScope: Inspect Attention", waits for the status bar and the overlay,
//                                          saves test-results/demo-check.png, stops everything; exit 0, or 1 with a one-line reason
//
// Model: the embedded models/default when it exists, else a small generated GPT-2-shaped checkpoint
// (random weights: the attention is real computation, the predictions are noise) set as the
// workspace's attnscope.model. Workspace: .cache/demo-workspace/ with a copy of examples/ (kept
// between runs, so edits survive; --check uses a temporary one).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureCodeServer, launchChromium, startCodeServer, workbenchUrl } from './codeserver/ensure.mjs';
import { REPO, RESULTS_DIR, SAMPLE_PROMPT, build, elapsed, examplePrompts, testModel, writeWorkspaceSettings, cleanupFor } from './lib/testenv.mjs';

const t0 = Date.now();
const argv = process.argv.slice(2);
const check = argv.includes('--check');
const port = argv.includes('--port') ? Number(argv[argv.indexOf('--port') + 1]) : process.env.PORT ? Number(process.env.PORT) : undefined;
const TIMEOUT = Number(process.env.DEMO_TIMEOUT_MS || 90_000);
const say = (m) => process.stdout.write(`[demo ${elapsed(t0)}] ${m}\n`);

let server, browser, tmp, step = 'start';
const cleanup = cleanupFor(() => ({ browser, server, tmp }));

function prepareWorkspace(root, model) {
  const ex = path.join(root, 'examples');
  fs.mkdirSync(ex, { recursive: true });
  const prompts = examplePrompts();
  for (const f of prompts) if (!fs.existsSync(path.join(ex, path.basename(f)))) fs.copyFileSync(f, path.join(ex, path.basename(f)));
  if (!prompts.length && !fs.existsSync(path.join(ex, 'repeat.prompt'))) fs.writeFileSync(path.join(ex, 'repeat.prompt'), SAMPLE_PROMPT);
  writeWorkspaceSettings(root, model);
  const all = fs.readdirSync(ex).filter((f) => f.endsWith('.prompt')).sort();
  const first = all.includes('induction.prompt') ? 'induction.prompt' : all[0];
  return { workspace: root, first };
}

async function start() {
  step = 'install code-server, Chromium and playwright-core';
  await ensureCodeServer({ quiet: true });
  step = 'build dist/';
  build();
  say('built dist/ (node esbuild.mjs)');
  step = 'model';
  const model = testModel();
  say(`model: ${model.kind}`);
  step = 'workspace';
  let base;
  if (check) base = tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-demo-'));
  else base = path.join(REPO, '.cache');
  const { workspace, first } = prepareWorkspace(path.join(base, 'demo-workspace'), model);
  step = 'start code-server';
  server = await startCodeServer({
    workspace,
    port,
    extensionsDir: path.join(base, 'demo-extensions'),
    userDataDir: path.join(base, 'demo-user-data'),
    extensionDevelopmentPath: REPO,
    settings: { 'workbench.colorTheme': 'Default Dark Modern' },
    timeoutMs: TIMEOUT,
  });
  const url = workbenchUrl({ url: server.url, folder: workspace, extensionDevelopmentPath: REPO });
  return { url, workspace, first };
}

async function runCheck({ url, first }) {
  step = 'launch Chromium';
  browser = await launchChromium();
  const page = browser.page;
  page.setDefaultTimeout(TIMEOUT);
  step = 'open the URL';
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench').waitFor();
  if (!(await page.title()).includes('Extension Development Host')) {
    await page.waitForFunction(() => document.title.includes('Extension Development Host'));
  }
  step = `open examples/${first}`;
  const input = page.locator('.quick-input-widget input.input');
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'examples' }).first().waitFor();
  await page.keyboard.press('F1');
  await input.waitFor();
  await input.fill(first);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: first }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: first }).waitFor();
  const editor = page.locator('.editor-group-container .monaco-editor').first();
  await editor.locator('.view-line').first().waitFor();
  step = 'run "AttnScope: Inspect Attention"';
  await page.keyboard.press('F1');
  await input.waitFor();
  await input.fill('>AttnScope: Inspect Attention');
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'AttnScope: Inspect Attention' }).waitFor();
  await page.keyboard.press('Enter');
  step = 'wait for the status bar';
  const status = page.locator('.statusbar-item', { hasText: / tok · \d+ ms/ }).first();
  await status.waitFor();
  const statusText = (await status.textContent()).trim();
  step = 'wait for the overlay';
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(() => {
    for (const el of document.querySelectorAll('.editor-group-container .monaco-editor .view-overlays [class*="ced-"]')) {
      if (/rgba\((255, 150, 40|235, 110, 0), /.test(getComputedStyle(el).backgroundColor) && el.getBoundingClientRect().width > 0) return true;
    }
    return false;
  });
  step = 'screenshot';
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS_DIR, 'demo-check.png') });
  say(`check OK: status bar "${statusText}", overlay visible; screenshot test-results/demo-check.png`);
}

let code = 0;
try {
  const s = await start();
  if (check) {
    await runCheck(s);
  } else {
    say(`code-server ${server.url} (log: ${path.relative(REPO, server.logFile)}), workspace ${s.workspace}`);
    process.stdout.write(`\nOpen this URL (it loads AttnScope from ${REPO}):\n\n  ${s.url}\n\nThen open an example, run "AttnScope: Inspect Attention" (F1) and move the cursor. Ctrl+C stops.\n\n`);
    await new Promise((resolve) => {
      for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, resolve);
    });
    say('stopping');
  }
} catch (err) {
  code = 1;
  process.stderr.write(`[demo ${elapsed(t0)}] FAILED at "${step}": ${err?.message?.split('\n')[0] ?? err}${server ? ` (code-server log: ${server.logFile})` : ''}\n`);
  if (check && browser) await browser.page.screenshot({ path: path.join(RESULTS_DIR, 'demo-check-failure.png') }).catch(() => {});
} finally {
  await cleanup();
}
process.exit(code);
