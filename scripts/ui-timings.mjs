#!/usr/bin/env node
// Times the extension's interactive paths in a real VS Code (code-server + headless Chromium), to
// compare with `attnscope bench --views` on the same prompt (BENCHMARKS.md, "VS Code after the ring
// and save fixes"). Not a test: a measurement, printed as JSON lines and a summary.
//
//   node scripts/ui-timings.mjs [--model DIR] [--tokens 2048] [--reps 5] [--shots DIR] [--only a,b,c]
//
// The prompt is bench's (`promptOfTokens` in src/cli/bench.ts: the same words, trimmed to just at or
// above N tokens), in one wrapped line. Measured, each `--reps` times, in page time (the input
// event's timeStamp to the first animation frame after the editor's tint changed; see INSTALL):
//   a  head-mask toggle (click on L0H0's checkbox in the Heads view) → the new overlay painted, panel closed
//   b  the same with the AttnScope panel open beside the editor
//   c  a cursor move (a click in the editor) while that re-run is in flight → the overlay painted
//      from the kept previous run (panel open)
//   d  a cursor move (a click in the editor) with no run in flight; e  the same by Ctrl+Left; f  d with the panel open
//   diag  the workbench's running animations during a re-run; trace, trace-c  Chromium's trace of
//   one toggle / one cursor move during a run, trace-d: one cursor click with no run (the renderer's busiest events); profile  its JavaScript
// After each, it waits until the engine and the extension host are idle (the auto-save done) and
// reads the run's stage line from the AttnScope output channel (`split`: input → rerun() start,
// the host's stages, host end → the DOM change, DOM change → frame); the CPU seconds each process
// used between the event and the paint come from /proc (Chromium renderers, extension host, engine;
// `others`: every process not started here). Run it alone: `flock /tmp/bench.lock node scripts/ui-timings.mjs`.
// --model '' (default) uses the extension's default model (models/default).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureCodeServer, launchChromium } from './codeserver/ensure.mjs';
import { REPO, tempWorkspace, startDevServer, writeWorkspaceSettings, cleanupFor, cleanupOnSignals } from './lib/testenv.mjs';
import { benchPrompt, INSTALL, median, openPromptAndInspect, opt } from './lib/uiProbe.mjs';

const MODEL = opt('model', '');
const TOKENS = Number(opt('tokens', '2048'));
const REPS = Number(opt('reps', '5'));
const SHOTS = opt('shots', '');
const ONLY = new Set(opt('only', 'a,b,c').split(','));
const TIMEOUT = Number(opt('timeout', '120000'));
const WAIT_IDLE = opt('idle', '1') !== '0';
const say = (m) => process.stdout.write(`[ui-timings] ${m}\n`);

let server, browser, tmp;
const cleanup = cleanupFor(() => ({ browser, server, tmp }), 'UI_KEEP_TMP');
cleanupOnSignals(cleanup);

// ---------------------------------------------------------------------------------------------
// CPU time per process (from /proc), grouped by role

const TICK = 100; // CLK_TCK
function procTable() {
  const out = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(rest[1]);
      const cpu = (Number(rest[11]) + Number(rest[12])) / TICK;
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.set(Number(d), { ppid, cpu, cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}
function descendants(table, roots) {
  const mine = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of table) if (!mine.has(pid) && mine.has(p.ppid)) (mine.add(pid), (grew = true));
  }
  return mine;
}
function role(cmd) {
  if (cmd.includes('engineProcess.js')) return 'engine';
  if (cmd.includes('--type=extensionHost')) return 'exthost';
  if (/chromium/.test(cmd)) {
    const t = /--type=([\w-]+)/.exec(cmd)?.[1];
    return t ? `chromium-${t}` : 'chromium-browser';
  }
  if (cmd.includes('code-server')) return 'code-server';
  return 'other';
}
let roots = [];
function cpuSnapshot() {
  const table = procTable();
  const mine = descendants(table, roots);
  const byPid = new Map();
  let others = 0;
  for (const [pid, p] of table) {
    if (mine.has(pid)) byPid.set(pid, { role: role(p.cmd), cpu: p.cpu });
    else if (pid !== process.pid) others += p.cpu;
  }
  return { at: performance.now(), byPid, others };
}
/** CPU seconds per role between two snapshots (a renderer each: `chromium-renderer:<pid>`) */
function cpuDiff(a, b) {
  const out = {};
  for (const [pid, p] of b.byPid) {
    const d = p.cpu - (a.byPid.get(pid)?.cpu ?? 0);
    if (d <= 0) continue;
    const k = p.role === 'chromium-renderer' ? `renderer:${pid}` : p.role;
    out[k] = Math.round(((out[k] ?? 0) + d) * 100) / 100;
  }
  out.others = Math.round((b.others - a.others) * 100) / 100;
  out.wall = Math.round(b.at - a.at) / 1000;
  return out;
}
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Waits until the engine and the extension host used < 3 % of a core over 400 ms (the run and its auto-save done). */
async function waitIdle(maxMs = TIMEOUT) {
  if (!WAIT_IDLE) return;
  const end = Date.now() + maxMs;
  let prev = cpuSnapshot();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 400));
    const cur = cpuSnapshot();
    const d = cpuDiff(prev, cur);
    if ((d.engine ?? 0) + (d.exthost ?? 0) < 0.012) return;
    prev = cur;
  }
  throw new Error('the engine did not go idle');
}


async function main() {
  await ensureCodeServer({ quiet: true });
  const modelDir = MODEL ? path.resolve(MODEL) : path.join(REPO, 'models', 'default');
  const prompt = benchPrompt(modelDir, TOKENS);
  say(`prompt: ${prompt.length} characters for ${TOKENS} tokens; model ${modelDir}; load ${loadavg()}`);

  let workspace;
  ({ tmp, workspace } = tempWorkspace('attnscope-uitimings-'));
  fs.writeFileSync(path.join(workspace, 'long.prompt'), prompt);
  writeWorkspaceSettings(workspace, { setting: MODEL ? modelDir : '' }, { 'attnscope.maxTokens': Math.max(TOKENS, 2048) });
  server = await startDevServer(tmp, workspace, {
    settings: { 'workbench.colorTheme': 'Default Dark Modern', 'editor.minimap.enabled': false, 'editor.wordWrap': 'on' },
  });
  browser = await launchChromium({ viewport: { width: 1600, height: 1000 } });
  const page = browser.page;
  page.setDefaultTimeout(TIMEOUT);
  await server.open(page, { timeoutMs: 120_000 });
  const table = procTable();
  const chromeRoot = [...table].find(([, p]) => p.cmd.includes(browser.userDataDir) && !/--type=/.test(p.cmd))?.[0];
  roots = [server.pid, chromeRoot].filter(Boolean);
  say(`workbench open; code-server ${server.pid}, chromium ${chromeRoot}`);

  const { palette, statusIdle, running, editor } = await openPromptAndInspect(page, prompt, say);
  await waitIdle();

  const logFile = () => {
    const hits = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/AttnScope\.log$/.test(e.name)) hits.push(p);
      }
    };
    walk(path.join(tmp, 'user-data', 'logs'));
    return hits[0];
  };
  const runLines = () => {
    const f = logFile();
    return f ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => / run \d+: /.test(l)) : [];
  };

  // the Heads view
  await page.locator('.activitybar .action-item a[aria-label^="AttnScope"], .activitybar .action-item [aria-label^="AttnScope"]').first().click();
  const tree = page.locator('.part.sidebar .pane', { hasText: 'Heads' }).first();
  const row = (label) => tree.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${label}$`) }) }).first();
  await row('L0H0').waitFor();
  const checkbox = row('L0H0').locator('.custom-view-tree-node-item-checkbox, .monaco-checkbox, input[type=checkbox]').first();
  const isChecked = () => checkbox.evaluate((el) => el.classList.contains('checked') || el.getAttribute('aria-checked') === 'true' || el.checked === true);

  const results = {};
  const record = (k, r) => {
    (results[k] ??= []).push(r);
    process.stdout.write(JSON.stringify({ case: k, ...r }) + '\n');
  };

  /** One mask toggle, timed from the click to the painted overlay. */
  async function toggle(k) {
    const before = await page.evaluate('window.__tint()');
    const lines = runLines().length;
    const wasChecked = await isChecked();
    const load = loadavg();
    await page.evaluate(`window.__arm(${JSON.stringify(before.sig)})`);
    const c0 = cpuSnapshot();
    await checkbox.click();
    const r = await page.evaluate('window.__done');
    const c1 = cpuSnapshot();
    await statusIdle.waitFor();
    const cpu = cpuDiff(c0, c1);
    await waitIdle();
    const stage = runLines().slice(lines).join(' | ');
    // the host's stage timer covers rerun() start .. views(overlay); the log line's time is its end
    const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}).*total (\d+) ms/.exec(stage);
    const split = m ? (() => {
      const end = new Date(m[1].replace(' ', 'T')).getTime();
      const start = end - Number(m[2]);
      return { clickToRerun: Math.round(start - r.wallT0), hostTotal: Number(m[2]), hostEndToDom: Math.round(r.wallMut - end), domToFrame: r.ms - r.mutMs };
    })() : undefined;
    record(k, { ms: r.ms, mutMs: r.mutMs, split, masked: wasChecked, load, cpu, stage: stage.replace(/^.*?run \d+: /, '') });
  }

  /** A mask toggle, then (once the status bar says Running) a click elsewhere in the editor, timed to the painted overlay. */
  async function cursorDuringRun(k, i) {
    const before = await page.evaluate('window.__tint()');
    const load = loadavg();
    await checkbox.click();
    await running.first().waitFor();
    await page.evaluate(`window.__arm(${JSON.stringify(before.sig)})`);
    const lines = editor.locator('.view-line');
    const n = await lines.count();
    const target = lines.nth(Math.max(0, Math.floor(n * (i % 2 ? 0.3 : 0.6))));
    const c0 = cpuSnapshot();
    await target.click({ position: { x: 200 + 37 * i, y: 5 } });
    const r = await page.evaluate('window.__done');
    const c1 = cpuSnapshot();
    const stillRunning = await running.count();
    await statusIdle.waitFor();
    await waitIdle();
    record(k, { ms: r.ms, mutMs: r.mutMs, runningAtPaint: r.running, runningAfter: stillRunning > 0, load, cpu: cpuDiff(c0, c1) });
    // back to the end of the prompt for the next toggle
    await page.keyboard.press('Control+End');
    await page.waitForFunction('window.__tint().width > 50');
    await waitIdle();
  }

  /** Chromium's trace during `fn`: the renderer threads' busiest event names (self time is not separated: nested events add up). */
  async function traced(name, fn) {
    const cdp = await page.context().newCDPSession(page);
    const events = [];
    cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
    const complete = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
    await cdp.send('Tracing.start', { categories: 'devtools.timeline,disabled-by-default-devtools.timeline,disabled-by-default-devtools.timeline.frame,blink,cc,gpu,viz,toplevel', transferMode: 'ReportEvents' });
    const t0 = performance.now();
    await fn();
    const wall = performance.now() - t0;
    await cdp.send('Tracing.end');
    await complete;
    fs.writeFileSync(path.join(os.tmpdir(), `ui-timings-${name}.trace.json`), JSON.stringify({ traceEvents: events }));
    const threads = new Map();
    for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') threads.set(`${e.pid}/${e.tid}`, e.args.name);
    const sums = new Map();
    const counts = new Map();
    for (const e of events) {
      if (e.ph !== 'X' || !e.dur) continue;
      const th = threads.get(`${e.pid}/${e.tid}`) ?? `${e.pid}/${e.tid}`;
      const k = `${th}: ${e.name}`;
      sums.set(k, (sums.get(k) ?? 0) + e.dur / 1000);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const top = [...sums].sort((a, b) => b[1] - a[1]).slice(0, 40);
    say(`trace ${name} (${Math.round(wall)} ms incl. the idle wait): ${top.map(([k, v]) => `${v.toFixed(0)} ms ×${counts.get(k)} ${k}`).join('\n   ')}`);
  }

  /** A cursor move with no run in flight: a click in the editor (`how` 'click') or Ctrl+Left in the focused editor ('key'). */
  async function cursorIdle(k, i, how) {
    const before = await page.evaluate('window.__tint()');
    const load = loadavg();
    await page.evaluate(`window.__arm(${JSON.stringify(before.sig)})`);
    const c0 = cpuSnapshot();
    if (how === 'click') {
      const lines = editor.locator('.view-line');
      const n = await lines.count();
      await lines.nth(Math.max(0, Math.floor(n * (i % 2 ? 0.3 : 0.6)))).click({ position: { x: 200 + 37 * i, y: 5 } });
    } else await page.keyboard.press('Control+ArrowLeft');
    const r = await page.evaluate('window.__done');
    const c1 = cpuSnapshot();
    await waitIdle();
    record(k, { ms: r.ms, mutMs: r.mutMs, load, cpu: cpuDiff(c0, c1) });
  }

  const shot = async (name) => {
    if (!SHOTS) return;
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, name) });
    say(`screenshot ${path.join(SHOTS, name)}`);
  };

  if (ONLY.has('diag')) {
    // what animates in the workbench while a re-run is in flight
    await checkbox.click();
    await running.first().waitFor();
    const anims = () =>
      page.evaluate(() =>
        document.getAnimations().filter((a) => a.animationName).map((a) => {
          const chain = [];
          for (let e = a.effect?.target; e && chain.length < 8; e = e.parentElement) chain.push(`${e.tagName}.${String(e.className).split(' ').slice(0, 2).join('.')}`);
          return `${a.animationName}: ${chain.join(' < ')}`;
        }),
      );
    say(`animations at Running: ${JSON.stringify(await anims())}`);
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'Running' }).first().waitFor().catch(() => undefined);
    say(`animations with the notification: ${JSON.stringify(await anims())}`);
    await statusIdle.waitFor();
    say(`animations after: ${JSON.stringify(await anims())}`);
    await waitIdle();
  }
  if (ONLY.has('d')) {
    for (let i = 0; i < REPS; i++) await cursorIdle('d', i, 'click');
    if (ONLY.has('trace-d')) await traced('traced-d', () => cursorIdle('traced-d', 1, 'click'));
    // back to the end of the prompt: the toggles below compare the last line's tint
    await page.keyboard.press('Control+End');
    await page.waitForFunction('window.__tint().width > 50');
    await waitIdle();
  }
  if (ONLY.has('e')) {
    await editor.locator('.view-lines').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Control+ArrowLeft'); // the last word's start is still the last token
    await waitIdle();
    for (let i = 0; i < REPS; i++) await cursorIdle('e', i, 'key');
  }
  if (ONLY.has('a')) {
    await toggle('warmup-a');
    for (let i = 0; i < REPS; i++) await toggle('a');
  }
  await shot('closed.png');

  if (ONLY.has('b') || ONLY.has('c') || ONLY.has('f')) {
    await palette('AttnScope: Open Panel');
    const webview = page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
    await webview.locator('header.toolbar').waitFor();
    await webview.locator('.head-grid').first().waitFor();
    await waitIdle();
    await page.evaluate(INSTALL); // the editor element may have moved
    await shot('panel.png');
    if (ONLY.has('b')) {
      await toggle('warmup-b');
      for (let i = 0; i < REPS; i++) await toggle('b');
    }
    if (ONLY.has('c')) for (let i = 0; i < REPS; i++) await cursorDuringRun('c', i);
    if (ONLY.has('f')) {
      for (let i = 0; i < REPS; i++) await cursorIdle('f', i, 'click');
      await page.keyboard.press('Control+End');
      await page.waitForFunction('window.__tint().width > 50');
      await waitIdle();
    }
    if (ONLY.has('trace')) await traced('traced', () => toggle('traced'));
    if (ONLY.has('trace-c')) await traced('traced-c', () => cursorDuringRun('traced-c', 0));
    if (ONLY.has('profile')) {
      // the renderer's JavaScript during one mask toggle (top self time, by function and script)
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
      await toggle('profiled');
      const { profile } = await cdp.send('Profiler.stop');
      const self = new Map();
      const dt = profile.timeDeltas;
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      profile.samples.forEach((id, i) => {
        const n = byId.get(id);
        const f = n.callFrame;
        const k = `${f.functionName || '(anon)'} ${f.url.split('/').slice(-1)[0]}:${f.lineNumber}`;
        self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0) / 1000);
      });
      const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25);
      say(`profile (ms self): ${top.map(([k, v]) => `${v.toFixed(0)} ${k}`).join(' | ')}`);
      fs.writeFileSync(path.join(os.tmpdir(), 'ui-timings.cpuprofile'), JSON.stringify(profile));
    }
    await shot('panel-after.png');
  }

  say(`load at the end ${loadavg()}`);
  for (const [k, rs] of Object.entries(results)) {
    if (k.startsWith('warmup')) continue;
    const ms = rs.map((r) => r.ms);
    say(`${k}: median ${median(ms)} ms, range ${Math.min(...ms)}–${Math.max(...ms)} ms (n=${ms.length})`);
  }
}

main()
  .then(() => cleanup())
  .catch(async (e) => {
    say(`FAILED: ${e?.stack ?? e}`);
    try {
      if (browser?.page) await browser.page.screenshot({ path: path.join(os.tmpdir(), 'ui-timings-failure.png') });
    } catch {}
    await cleanup();
    process.exitCode = 1;
  });
