#!/usr/bin/env node
// End-to-end test of AttnScope in a real VS Code (code-server 4.100.3 = VS Code 1.100.3) driven by
// headless Chromium through playwright-core, offline. Like a person: open a .prompt file, run
// "AttnScope: Inspect Attention" from the command palette, move the cursor, mask a head in the Heads
// view, set a head scale and emphasize a span through the palette's input boxes, open the panel.
// Asserts on the DOM (status bar, tinted decoration elements, tree rows, the webview's content) and
// saves screenshots to test-results/: editor-overlay.png, heads-tree.png, panel.png,
// panel-light.png, panel-hc.png, and after "Rank Heads by Ablation" the grid colored by importance
// with a head-role tooltip: panel-importance.png, panel-importance-light.png, panel-importance-hc.png,
// panel-metric-dropdown.png, then with watched tokens and the logit lens: panel-lens.png,
// panel-lens-light.png, panel-lens-hc.png (the next-token list and the watched tokens in view) and
// panel-lens-table.png (the lens table) (and e2e-failure.png on failure).
//
//   node test/e2e/attnscope.e2e.mjs        env: E2E_TIMEOUT_MS (per wait, default 60000), E2E_KEEP_TMP=1, E2E_DEBUG=1
//
// Bounded waits on DOM conditions only (no fixed sleeps); code-server and Chromium always stopped.
import fs from 'node:fs';
import path from 'node:path';
import { ensureCodeServer, launchChromium } from '../../scripts/codeserver/ensure.mjs';
import { REPO, tempWorkspace, startDevServer, RESULTS_DIR, SAMPLE_PROMPT, build, elapsed, examplePrompts, testModel, writeWorkspaceSettings, cleanupFor, cleanupOnSignals } from '../../scripts/lib/testenv.mjs';
import { workbench } from '../../scripts/lib/workbench.mjs';
import { TINT_OF } from '../../scripts/lib/uiProbe.mjs';

const t0 = Date.now();
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 60_000);
const say = (m) => process.stdout.write(`[e2e ${elapsed(t0)}] ${m}\n`);
const notes = []; // things worth a look that are not failures
const note = (m) => {
  notes.push(m);
  say(`note: ${m}`);
};

let server, browser, tmp, step = 'start';
const cleanup = cleanupFor(() => ({ browser, server, tmp }), 'E2E_KEEP_TMP');
cleanupOnSignals(cleanup);

/** The overlay tint in the prompt editor (TINT_OF). Runs in the page (pass to page.evaluate / page.waitForFunction). */
const TINT_STATE = `${TINT_OF}([...document.querySelectorAll('.editor-group-container .monaco-editor')].find((e) => e.querySelector('.view-lines')))`;
const tintState = (page) => page.evaluate(TINT_STATE);

async function main() {
  step = 'build';
  build();
  const model = testModel();
  await ensureCodeServer({ quiet: true });
  say(`built; model: ${model.kind}`);

  step = 'workspace';
  let workspace;
  ({ tmp, workspace } = tempWorkspace('attnscope-e2e-'));
  const examples = examplePrompts();
  let fileName;
  if (examples.length) {
    for (const f of examples) fs.copyFileSync(f, path.join(workspace, path.basename(f)));
    // the repeated names: one short line, and the default model's induction head has something to do
    fileName = path.basename(examples.find((f) => path.basename(f) === 'induction.prompt') ?? examples[0]);
  } else {
    fileName = 'repeat.prompt';
    fs.writeFileSync(path.join(workspace, fileName), SAMPLE_PROMPT);
  }
  const text = fs.readFileSync(path.join(workspace, fileName), 'utf8');
  writeWorkspaceSettings(workspace, model);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  for (const f of ['editor-overlay.png', 'heads-tree.png', 'panel.png', 'panel-light.png', 'panel-hc.png', 'e2e-failure.png']) fs.rmSync(path.join(RESULTS_DIR, f), { force: true });

  step = 'start code-server';
  server = await startDevServer(tmp, workspace, {
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'editor.minimap.enabled': false },
  });
  browser = await launchChromium();
  const page = browser.page;
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  step = 'open the workbench';
  await server.open(page, { timeoutMs: TIMEOUT });
  say(`workbench open at ${server.url}`);

  const { input, palette, setTheme } = workbench(page);
  /** Answers an input box opened by a command (waits for its title or prompt text). */
  const answer = async (expect, value) => {
    await page.locator('.quick-input-widget', { hasText: expect }).waitFor();
    await input.fill(value);
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget', { hasText: expect }).waitFor({ state: 'hidden' });
  };
  const statusIdle = page.locator('.statusbar-item', { hasText: / tok · \d+ ms/ });

  step = 'dark theme';
  // the user setting alone is applied late (the workbench starts light), so pick the theme like a user would
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: fileName }).first().waitFor();
  await setTheme('Default Dark Modern', 'vs-dark');

  step = `open ${fileName}`;
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: fileName }).first().waitFor();
  await page.keyboard.press('F1');
  await input.waitFor();
  await input.fill(fileName);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: fileName }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: fileName }).waitFor();
  const editor = page.locator('.editor-group-container .monaco-editor').first();
  const firstWord = text.split(/\s+/).find((w) => w.length > 2) ?? text.slice(0, 3);
  await editor.locator('.view-lines', { hasText: firstWord }).waitFor();

  step = 'run "AttnScope: Inspect Attention"';
  await palette('AttnScope: Inspect Attention');
  await statusIdle.waitFor();
  const statusText = (await statusIdle.first().textContent()).trim();
  const tok = /(\d+) tok/.exec(statusText);
  if (!tok || Number(tok[1]) < 5) throw new Error(`status bar says "${statusText}"`);
  say(`inspected: status bar "${statusText}"`);
  const atStart = await tintState(page);
  if (atStart.width === 0) note('right after Inspect (cursor at the start of the file) nothing is tinted: the first token only attends to itself and the sink is discounted, so the overlay is invisible until the cursor moves');

  step = 'move the cursor';
  await editor.locator('.view-lines').click(); // focus the editor
  await page.keyboard.press('Control+End');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(`(${TINT_STATE}).width > 50`);
  const atEnd = await tintState(page);
  // click near the start of the first line: the overlay follows ("from": only tokens before the cursor are tinted)
  const firstLine = editor.locator('.view-line').first();
  await firstLine.click({ position: { x: 60, y: 5 } });
  await page.waitForFunction(`(() => { const s = ${TINT_STATE}; return s.sig !== ${JSON.stringify(atEnd.sig)} && s.width < ${atEnd.width}; })()`);
  const early = await tintState(page);
  say(`overlay tint: ${atStart.elements} elements/${atStart.width}px at the start, ${atEnd.elements}/${atEnd.width}px with the cursor at the end, ${early.elements}/${early.width}px on the first line`);
  // back to the end for the screenshot (the richest overlay)
  await page.keyboard.press('Control+End');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(`(${TINT_STATE}).sig === ${JSON.stringify(atEnd.sig)}`);
  await page.locator('.editor-group-container').first().screenshot({ path: path.join(RESULTS_DIR, 'editor-overlay.png') });
  say('screenshot test-results/editor-overlay.png');

  step = 'the overlay legend in the status bar tooltip';
  await statusIdle.first().hover();
  const legend = page.locator('.monaco-hover, .workbench-hover', { hasText: 'Overlay' }).first();
  await legend.waitFor();
  const legendText = (await legend.innerText()).replace(/\s+/g, ' ');
  if (!/Attention (FROM|TO) token \d+/.test(legendText) || !/tint levels/.test(legendText)) throw new Error(`the status bar legend says "${legendText}"`);
  await page.screenshot({ path: path.join(RESULTS_DIR, 'editor-overlay-legend.png') });
  say(`screenshot test-results/editor-overlay-legend.png (legend: "${legendText.slice(legendText.indexOf('Overlay'), legendText.indexOf('Overlay') + 160)}…")`);
  await page.mouse.move(400, 300);
  await legend.waitFor({ state: 'hidden' }).catch(() => undefined);

  step = 'open the Heads view from the activity bar';
  await page.locator('.activitybar .action-item a[aria-label^="AttnScope"], .activitybar .action-item [aria-label^="AttnScope"]').first().click();
  const tree = page.locator('.part.sidebar .pane', { hasText: 'Heads' }).first();
  const row = (label) => tree.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${label}$`) }) }).first();
  await row('L0H1').waitFor();
  const checkbox = (label) => row(label).locator('.custom-view-tree-node-item-checkbox, .monaco-checkbox, input[type=checkbox]').first();
  await checkbox('L0H1').waitFor();
  const checkedBefore = await checkbox('L0H1').evaluate((el) => el.classList.contains('checked') || el.getAttribute('aria-checked') === 'true' || el.checked === true);
  if (!checkedBefore) throw new Error('L0H1 starts unchecked');

  step = 'uncheck L0H1 in the Heads view';
  await checkbox('L0H1').click();
  await row('L0H1').locator('.label-description', { hasText: 'masked' }).waitFor();
  await row('Layer 0').locator('.label-description', { hasText: '1/' }).waitFor();
  const checkedAfter = await checkbox('L0H1').evaluate((el) => el.classList.contains('checked') || el.getAttribute('aria-checked') === 'true' || el.checked === true);
  if (checkedAfter) throw new Error('L0H1 is still checked after masking');
  await page.locator('.statusbar-item', { hasText: 'steered' }).waitFor();
  say(`L0H1 masked: "${(await row('L0H1').innerText()).replace(/\s+/g, ' ')}"; layer row "${(await row('Layer 0').innerText()).replace(/\s+/g, ' ')}"`);

  step = 'set a head scale through the palette';
  await palette('AttnScope: Set Head Scale');
  await answer('Set head scale', 'L1H0');
  await answer('Scale of L1H0', '2');
  await row('Layer 1').click();
  await row('L1H0').locator('.label-description', { hasText: '×2' }).waitFor();
  say(`L1H0 scaled: "${(await row('L1H0').innerText()).replace(/\s+/g, ' ')}"`);
  await page.locator('.part.sidebar').screenshot({ path: path.join(RESULTS_DIR, 'heads-tree.png') });
  say('screenshot test-results/heads-tree.png');

  step = 'emphasize a span';
  // keyboard selection of the second word of the first line (Ctrl+Home, Ctrl+Right, Ctrl+Shift+Right)
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('Control+ArrowRight');
  await page.keyboard.press('Control+Shift+ArrowRight');
  const word = text.split(/\s+/)[1];
  await page.waitForFunction(() => document.querySelectorAll('.editor-group-container .monaco-editor .selected-text').length > 0);
  const before = (await statusIdle.first().textContent()).trim();
  await palette('AttnScope: Emphasize Selection');
  await answer('Emphasize selection', '0.05');
  await statusIdle.first().waitFor();
  say(`emphasized "${word}"; status bar "${before}" → "${(await statusIdle.first().textContent()).trim()}"`);

  step = 'open the panel';
  await palette('AttnScope: Open Panel');
  const webviewFrame = page.locator('iframe.webview').first();
  await webviewFrame.waitFor({ state: 'attached' });
  const webview = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
  const panelGroup = page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'AttnScope' }) }).first();
  await panelGroup.waitFor();
  if (!fs.existsSync(path.join(REPO, 'dist', 'webview.js'))) {
    // the panel UI (webview/) is not in this checkout yet: only the host side can be checked
    await webview.locator('body').waitFor({ state: 'attached' });
    note('dist/webview.js is not built (no webview/main.ts in this checkout): checked only that the panel iframe exists');
    await panelGroup.screenshot({ path: path.join(RESULTS_DIR, 'panel.png') });
    say('screenshot test-results/panel.png');
    return;
  }
  await webview.locator('header.toolbar').waitFor();
  const modelName = webview.locator('.tb-model');
  await webview.locator('.tb-model', { hasNotText: 'No model' }).waitFor();
  say(`panel toolbar: "${(await webview.locator('header.toolbar').innerText()).replace(/\s+/g, ' ').trim()}" (model "${await modelName.innerText()}")`);
  // the panel's sections, from the webview helper's code (still in progress: report what is missing)
  for (const [sel, what] of [
    ['.head-grid', 'head grid'],
    ['.nt-row', 'next-token rows'],
    ['.prompt .tok', 'prompt tokens'],
    ['.heatmap canvas', 'pattern heatmap canvas'],
  ]) {
    const n = await webview.locator(sel).count();
    if (n === 0) {
      // give it a bounded chance to render
      const ok = await webview.locator(sel).first().waitFor({ timeout: 5000 }).then(() => true, () => false);
      if (!ok) note(`panel: no ${what} (${sel})`);
      else say(`panel: ${what} present`);
    } else say(`panel: ${what} present (${n})`);
  }
  const body = (await webview.locator('body').innerText()).replace(/\s+/g, ' ');
  for (const want of ['masked', 'scaled', 'emphasis']) if (!body.includes(want)) note(`panel text has no "${want}" although that intervention is active`);
  await page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'AttnScope' }) }).first().screenshot({ path: path.join(RESULTS_DIR, 'panel.png') });
  say('screenshot test-results/panel.png');

  for (const [theme, file, cls, wb] of [
    ['Default Light Modern', 'panel-light.png', 'vscode-light', 'vs'],
    ['Default High Contrast', 'panel-hc.png', 'vscode-high-contrast', 'hc-black'],
  ]) {
    step = `theme ${theme}`;
    await setTheme(theme, wb);
    await webview.locator(`body.${cls}`).waitFor();
    await page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'AttnScope' }) }).first().screenshot({ path: path.join(RESULTS_DIR, file) });
    say(`screenshot test-results/${file}`);
  }

  step = 'rank heads by ablation';
  await palette('AttnScope: Rank Heads by Ablation');
  await page.locator('.quick-input-widget', { hasText: 'Rank heads by ablation' }).waitFor();
  await page.keyboard.press('Enter'); // the first choice: log-probability of the top-1 token
  await webview.locator('.grid-top', { hasText: 'Most important:' }).waitFor();
  const top = (await webview.locator('.grid-top').innerText()).replace(/\s+/g, ' ').trim();
  if (!/Δ log p [−+]\d/.test(top)) throw new Error(`the grid's top heads show no Δ log p: "${top}"`);
  say(`panel grid by importance: "${top}"; legend "${(await webview.locator('.head-grid .legend').innerText()).replace(/\s+/g, ' ').trim()}"`);
  // the Heads view follows: one flat list by importance, Δ log p in the descriptions
  const flatOk = await tree.locator('.label-description', { hasText: /Δ log p/ }).first().waitFor({ timeout: 10_000 }).then(() => true, () => false);
  if (!flatOk) note('the Heads view shows no Δ log p after ranking');
  else say(`Heads view: "${(await tree.locator('.monaco-list-row').nth(1).innerText()).replace(/\s+/g, ' ')}" first`);

  // A head with an automatic role: hover grid cells until the tooltip names a role ("L1H0 · induction").
  const grid = webview.locator('.head-grid canvas');
  const hoverRole = async () => {
    const g = await grid.evaluate((c) => ({ w: c.clientWidth, h: c.clientHeight }));
    // the grid's layout (webview/logic/gridLogic.ts gridLayout: left 30, top 16, gap 2, cells 12..40 px)
    const [, L, H] = (/(\d+)×(\d+) heads/.exec(await webview.locator('header.toolbar').innerText()) ?? [0, 0, 0]).map(Number);
    const cell = Math.max(12, Math.min(40, Math.floor((g.w - 30 - 2) / H) - 2));
    // prefer an induction head (the role the ranking is about on a repeated prompt), else any role
    let found = null;
    for (let l = 0; l < L && !found?.induction; l++)
      for (let h = 0; h < H; h++) {
        const pos = { x: 30 + h * (cell + 2) + cell / 2, y: 16 + l * (cell + 2) + cell / 2 };
        await grid.hover({ position: pos });
        const title = await webview.locator('.tooltip:not([hidden]) .tt-title').innerText({ timeout: 2000 }).catch(() => '');
        if (title.includes('·') && (!found || title.includes('induction'))) found = { pos, title, induction: title.includes('induction') };
        if (found?.induction) break;
      }
    if (!found) return '';
    await grid.hover({ position: found.pos });
    return found.title;
  };
  for (const [theme, file, cls, wb] of [
    ['Default Dark Modern', 'panel-importance.png', 'vscode-dark', 'vs-dark'],
    ['Default Light Modern', 'panel-importance-light.png', 'vscode-light', 'vs'],
    ['Default High Contrast', 'panel-importance-hc.png', 'vscode-high-contrast', 'hc-black'],
  ]) {
    step = `importance grid, theme ${theme}`;
    await setTheme(theme, wb);
    await webview.locator(`body.${cls}`).waitFor();
    const title = await hoverRole();
    if (!title) throw new Error('no grid cell shows a head role in its tooltip');
    const tip = (await webview.locator('.tooltip:not([hidden])').innerText()).replace(/\s+/g, ' ');
    if (!/Δ log p when masked/.test(tip) || !/et al\. 20\d\d/.test(tip)) throw new Error(`the tooltip lacks the ablation value or the role's source: "${tip}"`);
    say(`tooltip (${theme}): "${tip.slice(0, 160)}…"`);
    await panelGroup.screenshot({ path: path.join(RESULTS_DIR, file) });
    say(`screenshot test-results/${file}`);
  }

  step = 'the metric dropdown with descriptions';
  await setTheme('Default Dark Modern', 'vs-dark');
  await webview.locator('body.vscode-dark').waitFor();
  await webview.locator('#metric-select').click();
  const opened = await webview.locator('#metric-select .description').first().waitFor({ timeout: 5000 }).then(() => true, () => false);
  if (!opened) note('the metric dropdown showed no option description');
  await panelGroup.screenshot({ path: path.join(RESULTS_DIR, 'panel-metric-dropdown.png') });
  say('screenshot test-results/panel-metric-dropdown.png');
  await page.keyboard.press('Escape');

  step = 'export the head grid as PNG (palette, figure colors, save dialog) and open it';
  // Accept the save dialog's own default (a .png named after the prompt in the workspace): typing a
  // path into code-server's simple dialog races with it filling in that default.
  await palette('AttnScope: Export Head Grid as Figure');
  await page.locator('.quick-input-widget', { hasText: 'Paper' }).waitFor();
  await page.keyboard.press('Enter'); // Paper (white, viridis) is first
  await page.locator('.quick-input-widget', { hasText: /Export head grid|\.png/i }).waitFor();
  await page.waitForFunction(() => /\.png$/.test(document.querySelector('.quick-input-widget input')?.value ?? ''), null, { timeout: 10_000 });
  const pngPath = await input.inputValue();
  if (!pngPath.startsWith(workspace)) throw new Error(`the save dialog proposes ${pngPath}, outside the workspace`);
  await page.keyboard.press('Enter');
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(pngPath) && Date.now() < deadline) await page.waitForTimeout(200);
  if (!fs.existsSync(pngPath)) throw new Error(`the export wrote no ${pngPath}`);
  const png = fs.readFileSync(pngPath);
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('the exported file is not a PNG');
  const viewer = await page.context().newPage();
  await viewer.setViewportSize({ width: png.readUInt32BE(16) / 2 + 20, height: png.readUInt32BE(20) / 2 + 20 });
  await viewer.setContent(`<body style="margin:10px;background:#888"><img style="width:${png.readUInt32BE(16) / 2}px" src="data:image/png;base64,${png.toString('base64')}"></body>`);
  await viewer.screenshot({ path: path.join(RESULTS_DIR, 'export-grid.png') });
  fs.copyFileSync(pngPath, path.join(RESULTS_DIR, 'export-grid-file.png'));
  await viewer.close();
  say(`exported ${png.readUInt32BE(16)}×${png.readUInt32BE(20)} PNG; screenshot test-results/export-grid.png`);
  step = 'watch tokens and read the logit lens';
  // pin the top prediction with its pin button, then type a second token (a bare word may be
  // ambiguous with its leading-space form: the panel then offers both, and we take the first)
  await webview.locator('.nt-pin').first().click();
  await webview.locator('.wt-table tbody tr').first().waitFor();
  const watchInput = webview.locator('.watched-add input');
  await watchInput.fill('Grace');
  await watchInput.press('Enter');
  const offered = await webview.locator('.watched-msg .chip-button').first().waitFor({ timeout: 5000 }).then(() => true, () => false);
  if (offered) {
    say(`lookup of "Grace": "${(await webview.locator('.watched-msg').innerText()).replace(/\s+/g, ' ')}"`);
    await webview.locator('.watched-msg .chip-button').first().click();
  }
  await webview.locator('.wt-table tbody tr').nth(1).waitFor();
  await webview.locator('.wt-diff b', { hasText: /\d/ }).waitFor();
  const wt = (await webview.locator('.watched').innerText()).replace(/\s+/g, ' ');
  if (!/clean baseline/.test(wt) || !/#\d+/.test(wt)) throw new Error(`the watched tokens show no baseline or rank: "${wt}"`);
  say(`watched: "${wt.slice(0, 220)}"`);
  // the lens follows the cursor token: the table has one row per layer boundary plus the output
  await webview.locator('.lens-table tr.out').waitFor();
  const lensRows = await webview.locator('.lens-table tbody tr').count();
  const [, nLayers] = (/(\d+)×\d+ heads/.exec(await webview.locator('header.toolbar').innerText()) ?? [0, 0]).map(Number);
  if (lensRows !== nLayers + 1) throw new Error(`the lens has ${lensRows} rows for ${nLayers} layers`);
  say(`lens: ${lensRows} rows; ${(await webview.locator('.lens-where').innerText()).replace(/\s+/g, ' ')}`);
  // above the fold: the next-token list and the watched tokens are visible without scrolling
  await webview.locator('body').evaluate(() => {
    window.scrollTo(0, 0);
    for (const c of document.querySelectorAll('.split-left, .split-right')) c.scrollTop = 0;
  });
  const fold = await webview.locator('body').evaluate(() => window.innerHeight);
  const wtBottom = await webview.locator('.watched').evaluate((e) => e.getBoundingClientRect().bottom);
  if (wtBottom > fold) throw new Error(`the watched tokens end at ${Math.round(wtBottom)} px, below the fold (${fold} px)`);
  say(`above the fold: the watched tokens end at ${Math.round(wtBottom)} of ${fold} px`);
  for (const [theme, file, cls, wb] of [
    ['Default Dark Modern', 'panel-lens.png', 'vscode-dark', 'vs-dark'],
    ['Default Light Modern', 'panel-lens-light.png', 'vscode-light', 'vs'],
    ['Default High Contrast', 'panel-lens-hc.png', 'vscode-high-contrast', 'hc-black'],
  ]) {
    step = `lens and watched tokens, theme ${theme}`;
    await setTheme(theme, wb);
    await webview.locator(`body.${cls}`).waitFor();
    await panelGroup.screenshot({ path: path.join(RESULTS_DIR, file) });
    say(`screenshot test-results/${file}`);
  }
  step = 'the lens section in view';
  await webview.locator('.section-lens').evaluate((e) => e.scrollIntoView({ block: 'start' }));
  await panelGroup.screenshot({ path: path.join(RESULTS_DIR, 'panel-lens-table.png') });
  say('screenshot test-results/panel-lens-table.png');
  if (pageErrors.length) note(`page errors: ${[...new Set(pageErrors)].slice(0, 3).join(' | ')}`);
}

let code = 0;
try {
  await main();
  say(`e2e OK${notes.length ? ` (${notes.length} note(s) above)` : ''}`);
} catch (err) {
  code = 1;
  process.stderr.write(`[e2e ${elapsed(t0)}] FAILED at "${step}": ${err?.message?.split('\n')[0] ?? err}\n`);
  if (process.env.E2E_DEBUG) process.stderr.write(`${err?.stack}\n`);
  const p = browser?.context.pages()[0];
  if (p) await p.screenshot({ path: path.join(RESULTS_DIR, 'e2e-failure.png') }).catch(() => {});
  if (p && process.env.E2E_DEBUG) {
    const dump = await p.evaluate(() => [...document.querySelectorAll('.view-overlays')].map((v) => v.innerHTML.slice(0, 1500)).join('\n---\n')).catch((e) => String(e));
    process.stderr.write(`view-overlays: ${dump}\n`);
    const styles = await p.evaluate(() => [...document.querySelectorAll('.view-overlays [class*="ced-"]')].slice(0, 5).map((e) => e.className + ' ' + getComputedStyle(e).backgroundColor).join('\n')).catch((e) => String(e));
    process.stderr.write(`styles: ${styles}\n`);
  }
  process.stderr.write(`[e2e] failure screenshot: test-results/e2e-failure.png; code-server log: ${server ? server.logFile : 'n/a'}\n`);
} finally {
  await cleanup();
}
process.exit(code);
