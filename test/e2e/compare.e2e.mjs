#!/usr/bin/env node
// End-to-end test of run comparison and generation in a real VS Code (code-server) driven by
// headless Chromium, offline: open a .prompt file, Inspect Attention, mask layer 0, "Compare with
// Baseline" from the palette; in the compare panel check the synchronized token overlays (hovering a
// token in A highlights its partner in B), the KL strip, the top-K changes and the head delta grid;
// the attention overlay (the selected head's, or the mean's, attention from the selected position in
// A and B; a click in B selects the aligned token in A); light and high-contrast themes; then
// "Generate…" from the compare panel (the seed field is disabled at temperature 0): both sides
// stream and finish; Reset Interventions empties the panel's list and only the unmodified side then
// runs; a window reload restores the
// compare panel (runs, selection, overlay) and, with a run file moved away, says it is gone.
// The session's watched tokens (the top two predictions, pinned in the AttnScope panel) show at the
// selected position in A and B, and per step in both generation columns.
// Screenshots in test-results/: compare.png, compare-attention.png, compare-light.png,
// compare-hc.png, compare-watched.png, compare-watched-light.png, compare-watched-hc.png, generate.png, compare-gone.png (compare-e2e-failure.png on failure).
//
//   node test/e2e/compare.e2e.mjs        env: E2E_TIMEOUT_MS (per wait, default 60000), E2E_KEEP_TMP=1
//
// Bounded waits on DOM conditions only (no fixed sleeps); code-server and Chromium always stopped.
import fs from 'node:fs';
import path from 'node:path';
import { ensureCodeServer, launchChromium } from '../../scripts/codeserver/ensure.mjs';
import { REPO, tempWorkspace, startDevServer, RESULTS_DIR, SAMPLE_PROMPT, build, elapsed, testModel, writeWorkspaceSettings, cleanupFor, cleanupOnSignals } from '../../scripts/lib/testenv.mjs';
import { workbench } from '../../scripts/lib/workbench.mjs';

const t0 = Date.now();
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 60_000);
const say = (m) => process.stdout.write(`[compare-e2e ${elapsed(t0)}] ${m}\n`);

let server, browser, tmp, step = 'start';
const cleanup = cleanupFor(() => ({ browser, server, tmp }), 'E2E_KEEP_TMP');
cleanupOnSignals(cleanup);

async function main() {
  step = 'build';
  build();
  for (const f of ['compare.js', 'generate.js']) if (!fs.existsSync(path.join(REPO, 'dist', f))) throw new Error(`dist/${f} is missing after the build`);
  const model = testModel();
  await ensureCodeServer({ quiet: true });
  say(`built; model: ${model.kind}`);

  step = 'workspace';
  let workspace;
  ({ tmp, workspace } = tempWorkspace('attnscope-compare-e2e-'));
  const fileName = 'story.prompt';
  fs.writeFileSync(path.join(workspace, fileName), SAMPLE_PROMPT);
  writeWorkspaceSettings(workspace, model, { 'attnscope.generate.maxTokens': 24 });
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  for (const f of ['compare.png', 'compare-attention.png', 'compare-light.png', 'compare-hc.png', 'compare-watched.png', 'compare-watched-light.png', 'compare-watched-hc.png', 'generate.png', 'compare-gone.png', 'compare-e2e-failure.png']) fs.rmSync(path.join(RESULTS_DIR, f), { force: true });

  step = 'start code-server';
  server = await startDevServer(tmp, workspace, {
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'editor.minimap.enabled': false, 'workbench.startupEditor': 'none' },
  });
  browser = await launchChromium();
  const page = browser.page;
  page.setDefaultTimeout(TIMEOUT);
  await page.setViewportSize({ width: 1600, height: 1000 }).catch(() => {});
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  step = 'open the workbench';
  await server.open(page, { timeoutMs: TIMEOUT });

  const { input, palette, setTheme } = workbench(page);
  const statusIdle = page.locator('.statusbar-item', { hasText: / tok · \d+ ms/ });

  step = 'dark theme';
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: fileName }).first().waitFor();
  await setTheme('Default Dark Modern', 'vs-dark');

  step = `open ${fileName}`;
  await page.keyboard.press('F1');
  await input.waitFor();
  await input.fill(fileName);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: fileName }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: fileName }).waitFor();
  await page.locator('.editor-group-container .monaco-editor .view-lines', { hasText: 'cat' }).first().waitFor();

  step = 'hide the side bar (room for the panels)';
  await palette('View: Toggle Primary Side Bar Visibility');
  await page.locator('.part.sidebar').waitFor({ state: 'hidden' });

  step = 'inspect';
  await palette('AttnScope: Inspect Attention');
  await statusIdle.waitFor();
  say(`inspected: "${(await statusIdle.first().textContent()).trim()}"`);

  step = 'watch two tokens in the AttnScope panel (pin the top two predictions)';
  await palette('AttnScope: Open Panel');
  const panelGroup = page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'AttnScope' }) }).first();
  await panelGroup.waitFor();
  const mainPanel = page.frameLocator('iframe.webview:visible').frameLocator('iframe#active-frame');
  await mainPanel.locator('.nt-pin').nth(1).waitFor();
  await mainPanel.locator('.nt-pin').nth(0).click();
  await mainPanel.locator('.wt-table tbody tr').first().waitFor();
  await mainPanel.locator('.nt-pin').nth(1).click();
  await mainPanel.locator('.wt-table tbody tr').nth(1).waitFor();
  await mainPanel.locator('.wt-table tbody td', { hasText: /#\d+/ }).first().waitFor();
  say(`watching: ${(await mainPanel.locator('.wt-table tbody .wt-tok').allInnerTexts()).join(', ')}`);
  // close the panel (the session keeps the watched tokens): one webview on screen for the steps below
  await panelGroup.locator('.tab.active .action-label.codicon-close').click();
  await panelGroup.waitFor({ state: 'detached' });

  step = 'mask layer 0';
  await palette('AttnScope: Mask Layer');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Layer 0' }).first().waitFor();
  await input.fill('Layer 0');
  await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'Layer 0' }).waitFor();
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });
  await statusIdle.waitFor();

  step = 'Compare with Baseline';
  await palette('AttnScope: Compare with Baseline');
  const compareGroup = page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'Compare:' }) }).first();
  await compareGroup.waitFor();
  const cmp = page.frameLocator('iframe.webview:visible').frameLocator('iframe#active-frame');
  await cmp.locator('.flow[data-side="a"] .tok').first().waitFor();
  await cmp.locator('.flow[data-side="b"] .tok').first().waitFor();
  const nA = await cmp.locator('.flow[data-side="a"] .tok').count();
  const nB = await cmp.locator('.flow[data-side="b"] .tok').count();
  const bars = await cmp.locator('.strip .bar').count();
  if (nA < 5 || nA !== nB || bars !== nA) throw new Error(`compare panel: ${nA} tokens in A, ${nB} in B, ${bars} KL bars`);
  const tinted = await cmp.locator('.flow[data-side="a"] .tok.tinted').count();
  if (tinted === 0) throw new Error('no token is tinted by KL although layer 0 is masked');
  say(`compare panel: ${nA} tokens per side, ${tinted} tinted by KL, ${bars} bars`);
  const mostItems = await cmp.locator('#most-different li').count();
  if (mostItems === 0) throw new Error('no most-different positions listed');

  step = 'synchronized hover';
  const tokA = cmp.locator('.flow[data-side="a"] .tok[data-pos="3"]');
  await tokA.hover();
  await cmp.locator('.flow[data-side="b"] .tok.hover[data-pos="3"]').waitFor();
  await cmp.locator('.strip .bar.hover[data-pos="3"]').waitFor();
  say('hovering A token 3 highlights its partner in B and its KL bar');

  step = 'select the most different position';
  await cmp.locator('#most-different li button').first().click();
  await cmp.locator('#position-detail .problist li').first().waitFor();
  const detail = (await cmp.locator('#position-detail').innerText()).replace(/\s+/g, ' ');
  say(`position detail: "${detail.slice(0, 140)}…"`);

  step = 'select a head in the delta grid';
  await cmp.locator('#head-grid .cell[data-head="0.1"]').click();
  await cmp.locator('#head-grid .cell.selected[data-head="0.1"]').waitFor();
  await cmp.locator('#head-detail', { hasText: 'L0H1' }).waitFor();
  // the selected position is kept when the head changes
  await cmp.locator('.flow[data-side="b"] .tok.selected').first().waitFor();
  // the screenshot from the top; hover away (selection, not hover)
  await cmp.locator('.summary').scrollIntoViewIfNeeded();
  await page.mouse.move(2, 2);
  await compareGroup.screenshot({ path: path.join(RESULTS_DIR, 'compare.png') });
  say('screenshot test-results/compare.png');

  step = 'watched tokens at the selected position (the last token) in A and B';
  await cmp.locator(`.flow[data-side="a"] .tok[data-pos="${nA - 1}"]`).click();
  await cmp.locator(`.flow[data-side="a"] .tok.selected[data-pos="${nA - 1}"]`).waitFor();
  await cmp.locator('#watched-compare .cw-table tbody tr').nth(1).waitFor();
  const wrows = await cmp.locator('#watched-compare .cw-table tbody tr').count();
  const wtext = (await cmp.locator('#watched-compare').innerText()).replace(/\s+/g, ' ');
  if (wrows !== 2 || !/%/.test(wtext) || !/#\d+/.test(wtext) || !/logit diff/.test(wtext) || /below the saved/.test(wtext)) throw new Error(`watched tokens in the compare panel: ${wrows} rows, "${wtext}"`);
  say(`compare watched: "${wtext.slice(0, 240)}"`);
  const lowerCols = cmp.locator('#watched-compare').locator('xpath=../..');
  await cmp.locator('#watched-compare').scrollIntoViewIfNeeded();
  await page.mouse.move(2, 2);
  await lowerCols.screenshot({ path: path.join(RESULTS_DIR, 'compare-watched.png') });
  say('screenshot test-results/compare-watched.png');

  step = 'attention overlay: the selected head, from the selected position, in A and B';
  await cmp.locator('#overlay-mode .seg[data-mode="attention"]:not([disabled])').click();
  await cmp.locator('#overlay-mode .seg[data-mode="attention"][aria-checked="true"]').waitFor();
  await cmp.locator('#overlay-source', { hasText: 'head L0H1' }).waitFor();
  await cmp.locator('.flow[data-side="a"][data-overlay="attention"] .tok.attn').first().waitFor();
  await cmp.locator('.flow[data-side="b"][data-overlay="attention"] .tok.attn').first().waitFor();
  if (await cmp.locator('.flow .tok.tinted').count()) throw new Error('KL tints are still shown in attention mode');
  // a position clicked in B selects its aligned token in A too, and both views show its attention
  const pick = Math.min(4, nA - 1);
  await cmp.locator(`.flow[data-side="b"] .tok[data-pos="${pick}"]`).click();
  await cmp.locator(`.flow[data-side="a"] .tok.selected[data-pos="${pick}"]`).waitFor();
  await cmp.locator('#overlay-source', { hasText: `(A ${pick} · B ${pick})` }).waitFor();
  await cmp.locator(`.flow[data-side="a"] .tok.future[data-index="${pick + 1}"]`).waitFor();
  const attnA = await cmp.locator('.flow[data-side="a"] .tok.attn').count();
  const attnB = await cmp.locator('.flow[data-side="b"] .tok.attn').count();
  if (attnA === 0 || attnB === 0 || attnA > pick + 1 || attnB > pick + 1) throw new Error(`attention tints: ${attnA} in A, ${attnB} in B for token ${pick} (at most ${pick + 1} each)`);
  say(`attention from token ${pick} (L0H1): ${attnA} tokens tinted in A, ${attnB} in B`);
  // no head selected: the mean of all heads
  await cmp.locator('#head-grid .cell[data-head="0.1"]').click();
  await cmp.locator('#head-grid .cell.selected').waitFor({ state: 'detached' });
  await cmp.locator('#overlay-source', { hasText: /mean of all \d+ heads/ }).waitFor();
  await cmp.locator('#head-grid .cell[data-head="1.2"]').click();
  await cmp.locator('#overlay-source', { hasText: 'head L1H2' }).waitFor();
  await cmp.locator('.flow[data-side="b"] .tok.attn').first().waitFor();
  await cmp.locator('.summary').scrollIntoViewIfNeeded();
  await page.mouse.move(2, 2);
  await compareGroup.screenshot({ path: path.join(RESULTS_DIR, 'compare-attention.png') });
  say('screenshot test-results/compare-attention.png');

  step = 'compare panel in light and high-contrast themes';
  for (const [theme, file, wb, body] of [
    ['Default Light Modern', 'compare-light.png', 'vs', 'vscode-light'],
    ['Default High Contrast', 'compare-hc.png', 'hc-black', 'vscode-high-contrast'],
  ]) {
    await setTheme(theme, wb);
    await cmp.locator(`body.${body} .flow .tok.attn`).first().waitFor();
    await page.mouse.move(2, 2);
    await compareGroup.screenshot({ path: path.join(RESULTS_DIR, file) });
    say(`screenshot test-results/${file}`);
    const wfile = file.replace('compare-', 'compare-watched-');
    await cmp.locator('#watched-compare .cw-table tbody tr').nth(1).waitFor();
    await cmp.locator('#watched-compare').scrollIntoViewIfNeeded();
    await lowerCols.screenshot({ path: path.join(RESULTS_DIR, wfile) });
    say(`screenshot test-results/${wfile}`);
    await cmp.locator('.summary').scrollIntoViewIfNeeded();
  }
  await setTheme('Default Dark Modern', 'vs-dark');

  step = 'Generate from the compare panel';
  await cmp.locator('vscode-button', { hasText: 'Generate' }).click();
  const genGroup = page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'AttnScope: Generate' }) }).first();
  await genGroup.waitFor();
  // the newest webview (the compare panel stays visible in its own group)
  const gen = page.frameLocator('iframe.webview:visible >> nth=-1').frameLocator('iframe#active-frame');
  await gen.locator('#gen-run').waitFor();
  await gen.locator('.col[data-lane="with"]').waitFor();
  // temperature 0 (greedy): the seed field is disabled, with the reason shown; sampling enables it
  await gen.locator('#gen-seed[disabled]').waitFor();
  await gen.locator('#gen-seed-hint', { hasText: 'seed is not used' }).waitFor();
  await gen.locator('#gen-temperature input').fill('0.7');
  await gen.locator('#gen-seed:not([disabled])').waitFor();
  await gen.locator('#gen-seed-hint').waitFor({ state: 'hidden' });
  await gen.locator('#gen-temperature input').fill('0');
  await gen.locator('#gen-seed[disabled]').waitFor();
  say('the seed field is disabled at temperature 0 and enabled when sampling');
  await gen.locator('#gen-run').click();
  // both sides stream and finish (the status line says how each one ended)
  await gen.locator('.col[data-lane="without"] .status', { hasText: /\d+ tokens · / }).waitFor();
  await gen.locator('.col[data-lane="with"] .status', { hasText: /\d+ tokens · / }).waitFor();
  const withText = await gen.locator('.col[data-lane="with"] .generated').innerText();
  const withoutText = await gen.locator('.col[data-lane="without"] .generated').innerText();
  if (!withText.length || !withoutText.length) throw new Error('a side generated nothing');
  say(`generated: without "${withoutText.slice(0, 50).replace(/\n/g, '↵')}…" | with "${withText.slice(0, 50).replace(/\n/g, '↵')}…"`);
  await gen.locator('#gen-run:not([disabled])').waitFor();
  // the watched tokens: a sparkline and the last step's probability per side
  for (const lane of ['without', 'with']) {
    const n = await gen.locator(`.col[data-lane="${lane}"] .gw-table tr`).count();
    const finals = await gen.locator(`.col[data-lane="${lane}"] .gw-final`).allInnerTexts();
    const pts = await gen.locator(`.col[data-lane="${lane}"] .gw-line`).first().getAttribute('points');
    if (n !== 2 || !finals.every((f) => /%$/.test(f)) || !pts || pts.split(' ').length < 2) throw new Error(`${lane}: watched rows ${n}, finals ${finals}, points "${pts}"`);
    say(`generation ${lane}: watched last-step ${finals.join(', ')}`);
  }
  await page.mouse.move(2, 2);
  await genGroup.screenshot({ path: path.join(RESULTS_DIR, 'generate.png') });
  say('screenshot test-results/generate.png');

  step = 'Reset Interventions: the Generation panel follows the session';
  await gen.locator('.interventions .chip.iv', { hasText: 'mask' }).first().waitFor();
  await palette('AttnScope: Reset Interventions');
  await gen.locator('.interventions', { hasText: 'No interventions are active' }).waitFor();
  await statusIdle.waitFor();
  await gen.locator('#gen-run').click();
  await gen.locator('.col[data-lane="without"] .status', { hasText: /\d+ tokens · / }).waitFor();
  await gen.locator('#gen-run:not([disabled])').waitFor();
  await gen.locator('.col[data-lane="with"]').waitFor({ state: 'detached' });
  say('after Reset Interventions the panel lists none and generates the unmodified model only');

  step = 'reload the window: the compare panel comes back with its runs and selection';
  // close the generation panel (it is not restored after a reload)
  await genGroup.locator('.tab.active .action-label.codicon-close').click();
  await genGroup.waitFor({ state: 'detached' });
  const reload = async () => {
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.locator('.monaco-workbench').waitFor();
    await page.locator('.tabs-container .tab', { hasText: 'Compare:' }).first().click();
  };
  await reload();
  const cmp2 = page.frameLocator('iframe.webview:visible').frameLocator('iframe#active-frame');
  await cmp2.locator('#overlay-source', { hasText: 'head L1H2' }).waitFor();
  await cmp2.locator(`.flow[data-side="a"] .tok.selected[data-pos="${pick}"]`).waitFor();
  await cmp2.locator('.flow[data-side="b"] .tok.attn').first().waitFor();
  say('after a reload: the same runs, position, head and overlay');

  step = 'reload with a run file gone: the panel says so';
  const runsDir = path.join(workspace, '.attnscope', 'runs');
  const baseline = fs.readdirSync(runsDir).find((n) => n.startsWith('story-baseline-') && n.endsWith('.attnrun'));
  if (!baseline) throw new Error(`no baseline run in ${runsDir}`);
  fs.renameSync(path.join(runsDir, baseline), path.join(tmp, baseline));
  try {
    await reload();
    await cmp2.locator('.banner.error', { hasText: /baseline \(.*\): the run file is gone/ }).waitFor();
    await page.mouse.move(2, 2);
    await page.locator('.editor-group-container', { has: page.locator('.tab.active', { hasText: 'Compare:' }) }).first().screenshot({ path: path.join(RESULTS_DIR, 'compare-gone.png') });
    say('with the baseline run moved away the restored panel says it is gone (test-results/compare-gone.png)');
  } finally {
    fs.renameSync(path.join(tmp, baseline), path.join(runsDir, baseline));
  }
  if (pageErrors.length) say(`note: page errors: ${[...new Set(pageErrors)].slice(0, 3).join(' | ')}`);
}

let code = 0;
try {
  await main();
  say('compare e2e OK');
} catch (err) {
  code = 1;
  process.stderr.write(`[compare-e2e ${elapsed(t0)}] FAILED at "${step}": ${err?.message?.split('\n')[0] ?? err}\n`);
  const p = browser?.context.pages()[0];
  if (p) await p.screenshot({ path: path.join(RESULTS_DIR, 'compare-e2e-failure.png') }).catch(() => {});
  if (p && process.env.E2E_DEBUG) {
    for (const f of p.frames()) {
      const html = await f.evaluate(() => document.body?.innerHTML.slice(0, 300) ?? '').catch((e) => `(${e.message.split('\n')[0]})`);
      process.stderr.write(`frame ${f.url().slice(0, 120)}: ${html.replace(/\s+/g, ' ')}\n`);
    }
  }
  process.stderr.write(`[compare-e2e] failure screenshot: test-results/compare-e2e-failure.png; code-server log: ${server ? server.logFile : 'n/a'}\n`);
} finally {
  await cleanup();
}
process.exit(code);
