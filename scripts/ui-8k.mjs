#!/usr/bin/env node
// Checks the extension's long-run paths in a real VS Code (code-server + headless Chromium), with
// numbers (BENCHMARKS.md, "At 8,000 tokens"), or takes theme screenshots of the panel. Not a test.
//
//   node scripts/ui-8k.mjs --model /tmp/smollm2-fq --tokens 8000      (the 8k checks)
//   node scripts/ui-8k.mjs --themes /tmp/theme-shots --tokens 2048    (panel screenshots per theme)
//
// 8k checks, after the first inspection (cursor on the last token, panel open):
//   heatmap  select a head in the grid; the pattern's first tile; then 40 pointer moves over the
//            heatmap, 8 wheel zooms and a drag; the webview's frames (rAF deltas) and long tasks
//   heads    the Heads view: wheel-scrolls of its tree and hovers; the workbench's frames
//   cursor   a mask toggle (Heads view checkbox) starts a re-run; clicks in the editor while the
//            status bar says Running, each timed input → first frame after the tint changed
//   cancel   a mask toggle, then the notification's Cancel: when it appeared, how long until the
//            status bar is idle again, and whether the shown run (status text, tint) is the previous one
// The prompt is bench's (as scripts/ui-timings.mjs). Run it alone: `flock /tmp/bench.lock node scripts/ui-8k.mjs ...`.
import fs from 'node:fs';
import path from 'node:path';
import { ensureCodeServer, launchChromium } from './codeserver/ensure.mjs';
import { REPO, tempWorkspace, startDevServer, writeWorkspaceSettings, cleanupFor, cleanupOnSignals } from './lib/testenv.mjs';
import { benchPrompt, INSTALL, median, openPromptAndInspect, opt } from './lib/uiProbe.mjs';

const args = process.argv.slice(2);
const MODEL = opt('model', '');
const TOKENS = Number(opt('tokens', '8000'));
const THEMES = opt('themes', '');
const REPS = Number(opt('reps', '3'));
const TIMEOUT = 200_000;
const say = (m) => process.stdout.write(`[ui-8k] ${m}\n`);

let server, browser, tmp;
const cleanup = cleanupFor(() => ({ browser, server, tmp }), 'UI_KEEP_TMP');
cleanupOnSignals(cleanup);



// frame recorder for a document (the workbench or the webview): rAF deltas and long tasks
const FRAMES = `(() => {
  if (window.__frames) return true;
  const st = { on: false, deltas: [], longtasks: [], last: 0 };
  window.__frames = st;
  const loop = (t) => { if (st.on) { if (st.last) st.deltas.push(t - st.last); st.last = t; } requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  try { new PerformanceObserver((l) => { if (st.on) for (const e of l.getEntries()) st.longtasks.push(Math.round(e.duration)); }).observe({ entryTypes: ['longtask'] }); } catch {}
  window.__framesStart = () => { st.on = true; st.deltas = []; st.longtasks = []; st.last = 0; return true; };
  window.__framesStop = () => {
    st.on = false;
    const d = [...st.deltas].sort((a, b) => a - b);
    const q = (p) => Math.round(d[Math.min(d.length - 1, Math.floor(p * d.length))] ?? 0);
    return { frames: d.length, p50: q(0.5), p95: q(0.95), max: Math.round(d[d.length - 1] ?? 0), over50: d.filter((x) => x > 50).length, longtasks: st.longtasks };
  };
  return true;
})()`;


async function main() {
  await ensureCodeServer({ quiet: true });
  const modelDir = MODEL ? path.resolve(MODEL) : path.join(REPO, 'models', 'default');
  const prompt = benchPrompt(modelDir, TOKENS);
  say(`prompt: ${prompt.length} characters for ${TOKENS} tokens; model ${modelDir}`);
  let workspace;
  ({ tmp, workspace } = tempWorkspace('attnscope-ui8k-'));
  fs.writeFileSync(path.join(workspace, 'long.prompt'), prompt);
  writeWorkspaceSettings(workspace, { setting: MODEL ? modelDir : '' }, { 'attnscope.maxTokens': Math.max(TOKENS, 2048) });
  server = await startDevServer(tmp, workspace, { settings: { 'workbench.colorTheme': 'Default Dark Modern', 'editor.minimap.enabled': false, 'editor.wordWrap': 'on' } });
  browser = await launchChromium({ viewport: { width: 1600, height: 1000 } });
  const page = browser.page;
  page.setDefaultTimeout(TIMEOUT);
  await server.open(page, { timeoutMs: 120_000 });
  const { input, palette, setTheme, statusIdle, running, editor } = await openPromptAndInspect(page, prompt, say);
  let t;

  t = Date.now();
  await palette('AttnScope: Open Panel');
  const wv = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
  await wv.locator('.head-grid canvas').first().waitFor();
  say(`panel open: ${(Date.now() - t) / 1000} s`);
  await page.evaluate(INSTALL);
  const frameOf = async () => {
    for (const f of page.frames()) if (await f.evaluate(() => !!document.querySelector('.head-grid')).catch(() => false)) return f;
    throw new Error('no webview frame with the head grid');
  };
  let wf = await frameOf();

  // a head: a click in the grid's canvas (the second row, third column or so)
  const grid = wv.locator('.head-grid canvas').first();
  const gb = await grid.boundingBox();
  const heat = wv.locator('.heatmap-canvas canvas').first();

  if (THEMES) {
    fs.mkdirSync(THEMES, { recursive: true });
    await grid.click({ position: { x: Math.min(gb.width - 5, 60), y: Math.min(gb.height - 5, 300) }, force: true }) /* below the panel's sticky toolbar */;
    await wv.locator('.heatmap .status-line', { hasText: 'tokens' }).waitFor();
    const hb = await heat.boundingBox();
    for (const [theme, cls, file] of [
      ['Default Dark Modern', 'vs-dark', 'dark-modern.png'],
      ['Default Light Modern', 'vs', 'light-modern.png'],
      ['Default High Contrast', 'hc-black', 'high-contrast-dark.png'],
      ['Default High Contrast Light', 'hc-light', 'high-contrast-light.png'],
    ]) {
      await setTheme(theme, cls);
      await page.mouse.move(hb.x + hb.width * 0.7, hb.y + hb.height * 0.8);
      await wv.locator('.heatmap .status-line', { hasText: 'query' }).waitFor();
      await page.waitForTimeout(300); // screenshots only: let the theme's repaint land
      await page.screenshot({ path: path.join(THEMES, file) });
      say(`screenshot ${path.join(THEMES, file)}`);
    }
    return;
  }

  // -- heatmap: select a head, first tile, hover / zoom / pan
  await wf.evaluate(FRAMES);
  await wf.evaluate('window.__framesStart()');
  t = Date.now();
  await grid.click({ position: { x: Math.min(gb.width - 5, 60), y: Math.min(gb.height - 5, 300) }, force: true }) /* below the panel's sticky toolbar */;
  await wv.locator('.heatmap .status-line', { hasText: 'tokens' }).waitFor();
  await wv.locator('.heatmap-note', { hasText: /./ }).waitFor({ state: 'hidden' }).catch(() => undefined);
  const firstTile = (Date.now() - t) / 1000;
  const select = await wf.evaluate('window.__framesStop()');
  say(`heatmap: head selected → pattern shown ${firstTile} s; frames ${JSON.stringify(select)}; legend "${(await wv.locator('.heatmap .legend').first().textContent()).trim()}"`);
  await heat.scrollIntoViewIfNeeded(); // below the grid of a 30-layer model
  const hb = await heat.boundingBox();
  say(`heatmap canvas at ${JSON.stringify(hb)}`);
  await wf.evaluate('window.__framesStart()');
  t = Date.now();
  for (let i = 0; i < 40; i++) await page.mouse.move(hb.x + hb.width * (0.1 + 0.02 * i), hb.y + hb.height * (0.9 - 0.02 * i), { steps: 2 });
  const hover = { wall: (Date.now() - t) / 1000, ...(await wf.evaluate('window.__framesStop()')) };
  say(`heatmap hover (40 moves): ${JSON.stringify(hover)}; status "${(await wv.locator('.heatmap .status-line').textContent()).trim()}"`);
  await wf.evaluate('window.__framesStart()');
  t = Date.now();
  await page.mouse.move(hb.x + hb.width * 0.6, hb.y + hb.height * 0.7);
  await page.keyboard.down('Control'); // the stacked layout scrolls the page on a plain wheel
  for (let i = 0; i < 8; i++) {
    await page.mouse.wheel(0, -240);
    await page.waitForTimeout(120); // wheel events a user would send, not a burst
  }
  await page.keyboard.up('Control');
  await page.mouse.down();
  await page.mouse.move(hb.x + hb.width * 0.4, hb.y + hb.height * 0.5, { steps: 10 });
  await page.mouse.up();
  for (let i = 0; i < 20; i++) await page.mouse.move(hb.x + hb.width * (0.3 + 0.02 * i), hb.y + hb.height * (0.3 + 0.02 * i), { steps: 2 });
  const zoom = { wall: (Date.now() - t) / 1000, ...(await wf.evaluate('window.__framesStop()')) };
  say(`heatmap zoom (8 wheel) + drag + 20 hovers: ${JSON.stringify(zoom)}; status "${(await wv.locator('.heatmap .status-line').textContent()).trim()}"; legend "${(await wv.locator('.heatmap .legend').first().textContent()).trim()}"`);
  await page.screenshot({ path: path.join('/tmp', 'ui-8k-heatmap.png') });

  // -- the Heads view
  await page.locator('.activitybar .action-item [aria-label^="AttnScope"]').first().click();
  const tree = page.locator('.part.sidebar .pane', { hasText: 'Heads' }).first();
  const row = (label) => tree.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${label}$`) }) }).first();
  await row('L0H0').waitFor();
  await page.evaluate(FRAMES);
  await page.evaluate('window.__framesStart()');
  const tb = await tree.boundingBox();
  t = Date.now();
  for (let i = 0; i < 15; i++) {
    await page.mouse.move(tb.x + tb.width / 2, tb.y + tb.height * (0.3 + 0.03 * i));
    await page.mouse.wheel(0, 200);
    await page.waitForTimeout(60);
  }
  for (let i = 0; i < 15; i++) await page.mouse.wheel(0, -200);
  const heads = { wall: (Date.now() - t) / 1000, ...(await page.evaluate('window.__framesStop()')) };
  say(`Heads view scroll+hover: ${JSON.stringify(heads)}`);
  if (args.includes('--views-only')) return;
  await row('L0H0').waitFor();
  const checkbox = row('L0H0').locator('.custom-view-tree-node-item-checkbox, .monaco-checkbox, input[type=checkbox]').first();
  const isChecked = () => checkbox.evaluate((el) => el.classList.contains('checked') || el.getAttribute('aria-checked') === 'true' || el.checked === true);

  // -- cancel: toggle, the notification's Cancel, the previous run stays
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+End');
  await page.waitForFunction('window.__tint().width > 50');
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: /AttnScope/ }).first();
  const cancels = [];
  for (let i = 0; i < REPS; i++) {
    const before = await page.evaluate('window.__tint()');
    const statusBefore = (await statusIdle.first().textContent()).trim();
    const checkedBefore = await isChecked();
    t = Date.now();
    await checkbox.click();
    await running.first().waitFor();
    const tRunning = Date.now() - t;
    await toast.waitFor();
    const tToast = Date.now() - t;
    const toastText = (await toast.textContent()).trim();
    await page.evaluate(FRAMES);
    await page.evaluate('window.__framesStart()');
    const t1 = Date.now();
    await toast.locator('.monaco-button', { hasText: 'Cancel' }).click();
    await statusIdle.waitFor();
    const tIdle = Date.now() - t1;
    const fr = await page.evaluate('window.__framesStop()');
    await toast.waitFor({ state: 'hidden' }).catch(() => undefined);
    const after = await page.evaluate('window.__tint()');
    const statusAfter = (await statusIdle.first().textContent()).trim();
    const gridOk = await wv.locator('.head-grid canvas').count();
    const r = { toggleToRunningMs: tRunning, toggleToToastMs: tToast, toastText, cancelToIdleMs: tIdle, sameStatus: statusAfter === statusBefore, statusBefore, statusAfter, sameTint: after.sig === before.sig, checkedBefore, checkedAfter: await isChecked(), panelGrid: gridOk, framesAfterCancel: fr };
    cancels.push(r);
    say(`cancel ${i}: ${JSON.stringify(r)}`);
  }

  // -- cursor moves while a full re-run is in flight (then let it finish)
  const clicks = [];
  {
    const before = await page.evaluate('window.__tint()');
    const statusBefore = (await statusIdle.first().textContent()).trim();
    t = Date.now();
    await checkbox.click();
    await running.first().waitFor();
    let sig = before.sig;
    const lines = editor.locator('.view-line');
    for (let i = 0; i < 4; i++) {
      await page.waitForTimeout(i === 0 ? 500 : 8000); // spread the clicks over the run
      if (!(await running.count())) break;
      await page.evaluate(`window.__arm(${JSON.stringify(sig)})`);
      const n = await lines.count();
      await lines.nth(Math.max(0, Math.floor(n * (i % 2 ? 0.3 : 0.6)))).click({ position: { x: 200 + 37 * i, y: 5 } });
      const r = await page.evaluate('window.__done');
      sig = (await page.evaluate('window.__tint()')).sig;
      const stillRunning = (await running.count()) > 0;
      clicks.push({ atS: (Date.now() - t) / 1000, ms: r.ms, runningAtPaint: r.running, runningAfter: stillRunning });
      say(`cursor during run ${i}: ${JSON.stringify(clicks.at(-1))}`);
    }
    await statusIdle.waitFor();
    say(`that re-run finished after ${(Date.now() - t) / 1000} s; status "${(await statusIdle.first().textContent()).trim()}" (before: "${statusBefore}")`);
  }
  say(`SUMMARY cursor-during-run click→paint: median ${median(clicks.map((c) => c.ms))} ms, range ${Math.min(...clicks.map((c) => c.ms))}–${Math.max(...clicks.map((c) => c.ms))} ms, all Running at paint: ${clicks.every((c) => c.runningAtPaint)}`);
  say(`SUMMARY cancel: toast after ${cancels.map((c) => c.toggleToToastMs).join('/')} ms; cancel→idle ${cancels.map((c) => c.cancelToIdleMs).join('/')} ms; previous run kept: ${cancels.every((c) => c.sameStatus && c.sameTint)}`);
  say(`SUMMARY heatmap: select ${firstTile} s (max frame ${select.max} ms); hover max ${hover.max} ms p95 ${hover.p95}; zoom/pan max ${zoom.max} ms p95 ${zoom.p95}; Heads view max ${heads.max} ms p95 ${heads.p95}`);
}

main()
  .then(() => cleanup())
  .catch(async (e) => {
    say(`FAILED: ${e?.stack ?? e}`);
    try {
      if (browser?.page) await browser.page.screenshot({ path: '/tmp/ui-8k-failure.png' });
    } catch {}
    await cleanup();
    process.exitCode = 1;
  });
