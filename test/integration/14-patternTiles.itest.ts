/// <reference types="mocha" />
// The panel's pattern tiles and the cancellable re-run inside a real extension host: tiles asked
// through the panel host (what the webview's messages go through) are the engine's exact values or
// block maxima of the head's full pattern; windows outside the run, stale runs and malformed
// requests get error replies. A re-run cancelled as soon as it starts leaves the previous run on
// screen with its interventions. Per-stage timings of mask toggles are printed (the prompt is cut at
// the default model's 2,048 positions), with the CPU time each group of processes took meanwhile
// (logging only: no timed assertions).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { PanelHost } from '../../src/extension/panel';
import { PROTOCOL_VERSION, type Envelope, type ToWebview } from '../../src/shared/protocol';
import { api, openEditor, settle, waitFor } from './helpers';

function spyPosts(webview: vscode.Webview): Envelope<ToWebview>[] {
  const sent: Envelope<ToWebview>[] = [];
  const post = webview.postMessage.bind(webview);
  (webview as { postMessage: (m: unknown) => Thenable<boolean> }).postMessage = (m: unknown) => {
    sent.push(m as Envelope<ToWebview>);
    return post(m);
  };
  return sent;
}

/**
 * CPU seconds used so far (from /proc, Linux only): by the engine process (a child of this extension
 * host running engineProcess.js), by this extension host, by the rest of VS Code (code-server's
 * other processes and Chromium: a process with `code-server` or `chrom` in its own or an ancestor's
 * command line), by every other process on the machine, and the machine's idle and stolen time (all cores).
 */
function cpuNow(): { engine: number; host: number; vscode: number; rest: number; idle: number; steal: number; each: Map<string, number> } | undefined {
  try {
    const hz = 100; // USER_HZ: clock ticks per second on Linux
    const read = (f: string) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch {
        return ''; // ended while listing
      }
    };
    const [, ...cols] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const idle = (Number(cols[3]) + Number(cols[4])) / hz;
    const steal = Number(cols[7] ?? 0) / hz; // time the hypervisor gave this machine's CPUs to others
    const procs = new Map<number, { ppid: number; secs: number; cmd: string }>();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const stat = read(`/proc/${d}/stat`);
      if (!stat) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(d), { ppid: Number(f[1]), secs: (Number(f[11]) + Number(f[12])) / hz, cmd: read(`/proc/${d}/cmdline`) });
    }
    const inVscode = (pid: number): boolean => {
      for (let p = pid, n = 0; p > 1 && n < 64; n++) {
        const x = procs.get(p);
        if (!x) return false;
        if (/code-server|chrom/.test(x.cmd)) return true;
        p = x.ppid;
      }
      return false;
    };
    const t = { engine: 0, host: 0, vscode: 0, rest: 0, idle, steal, each: new Map<string, number>() };
    for (const [pid, x] of procs) {
      if (pid === process.pid) t.host += x.secs;
      else if (x.ppid === process.pid && x.cmd.includes('engineProcess')) t.engine += x.secs;
      else if (inVscode(pid)) {
        t.vscode += x.secs;
        // named by program and Chromium's --type= (renderer, gpu-process, …) or code-server's entry
        const type = /--type=([\w-]+)/.exec(x.cmd)?.[1];
        const what = type ?? (/bootstrap-fork[\0 ]+--type=(\w+)/.exec(x.cmd)?.[1] ?? (/code-server/.test(x.cmd) ? 'code-server' : path.basename(x.cmd.split(/[\0 ]/)[0] ?? '')));
        const name = `${pid} ${/chrom/.test(x.cmd) ? 'chromium ' : ''}${what}`;
        t.each.set(name, x.secs);
      }
      else {
        t.rest += x.secs;
        t.each.set(`${pid} ${path.basename(x.cmd.split(/[\0 ]/)[0] ?? '')} ${(x.cmd.split('\0')[1] ?? '').split('/').pop()!.slice(0, 30)}`, x.secs);
      }
    }
    return t;
  } catch {
    return undefined;
  }
}

/** How this extension host and its engine process run (niceness, CPUs, threads, settings that change speed), for the timing lines. */
function processNote(): string {
  try {
    const one = (pid: number | 'self') => {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const cpus = /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1];
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((e) => /^(OMP_|ORT_|NODE_OPTIONS|UV_THREADPOOL|ELECTRON_|MKL_|OPENBLAS_)/.test(e));
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 300);
      return `nice ${f[16]}, threads ${f[17]}, CPUs ${cpus}, env [${env.join(' ')}], cmd ${cmd}`;
    };
    const engine = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).find((d) => {
      try {
        const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === process.pid && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('engineProcess');
      } catch {
        return false;
      }
    });
    return `extension host ${process.pid} (${process.version}): ${one('self')}; engine process ${engine}: ${engine ? one(Number(engine)) : 'not found'}`;
  } catch (e) {
    return `process details unavailable (${String(e)})`;
  }
}

/** What the CPUs did between two cpuNow() readings over `ms` of wall time, in one line (processes that ended meanwhile make a group's figure low). */
function cpuNote(a: ReturnType<typeof cpuNow>, b: ReturnType<typeof cpuNow>, ms: number): string {
  if (!a || !b) return '';
  const s = (x: number) => Math.max(0, x).toFixed(2);
  const top = [...b.each].map(([k, v]) => [k, v - (a.each.get(k) ?? v)] as const).filter(([, v]) => v >= 0.05).sort((x, y) => y[1] - x[1]).slice(0, 4);
  return `; CPU s over ${(ms / 1000).toFixed(2)} s wall: engine ${s(b.engine - a.engine)}, extension host ${s(b.host - a.host)}, rest of VS Code (code-server, Chromium) ${s(b.vscode - a.vscode)}, other processes ${s(b.rest - a.rest)}, idle ${s(b.idle - a.idle)}, stolen by the hypervisor ${s(b.steal - a.steal)}${top.length ? `; busiest processes: ${top.map(([k, v]) => `${k} ${s(v)}`).join(', ')}` : ''}`;
}

describe('pattern tiles and cancellable re-runs', function () {
  let a: AttnScopeApi;
  before(async () => {
    a = await api();
  });

  it('answers requestPatternTile with the exact window or block maxima of the full pattern; bad windows get error replies', async function () {
    this.timeout(120_000);
    await openEditor('sample.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    const host = PanelHost.show(a.runs.ctx, a.session);
    const sent = spyPosts(host.panel.webview);
    if (!host.ready) await host.receive({ messageId: 800_000, body: { type: 'ready', version: PROTOCOL_VERSION } });
    const run = a.session.run!;
    const T = run.tokens.length;
    const head = { layer: 1, head: 2 };
    const full = (await a.session.pattern(head))!;
    let id = 800_100;
    const ask = async (body: Record<string, unknown>) => {
      const messageId = ++id;
      await host.receive({ messageId, body: { type: 'requestPatternTile', runId: run.runId, head, ...body } });
      return (await waitFor(() => sent.find((e) => e.inReplyTo === messageId), `the reply to ${messageId}`)).body;
    };
    // exact: one cell per token, the pattern's own values (zeros above the diagonal)
    const exact = await ask({ q0: 5, q1: 12, k0: 3, k1: 10, size: 64 });
    assert.equal(exact.type, 'patternTile');
    const et = (exact as Extract<ToWebview, { type: 'patternTile' }>).tile;
    assert.equal(et.pooled, false);
    assert.deepEqual(et.values.dims, [7, 7]);
    const ev = new Float32Array(et.values.data);
    for (let r = 0; r < 7; r++) for (let c = 0; c < 7; c++) assert.equal(ev[r * 7 + c], full[(5 + r) * T + 3 + c], `(${5 + r}, ${3 + c})`);
    // pooled: each cell the max over its block of the full pattern
    const pooled = await ask({ q0: 0, q1: T, k0: 0, k1: T, size: 4 });
    const pt = (pooled as Extract<ToWebview, { type: 'patternTile' }>).tile;
    assert.equal(pt.pooled, true);
    assert.deepEqual(pt.values.dims, [4, 4]);
    const pv = new Float32Array(pt.values.data);
    for (let r = 0; r < 4; r++)
      for (let c = 0; c < 4; c++) {
        let m = 0;
        for (let q = pt.rowEdges[r]!; q < pt.rowEdges[r + 1]!; q++) for (let k = pt.colEdges[c]!; k < pt.colEdges[c + 1]! && k <= q; k++) m = Math.max(m, full[q * T + k]!);
        assert.equal(pv[r * 4 + c], m, `block ${r},${c}`);
      }
    const outside = await ask({ q0: 0, q1: T + 1, k0: 0, k1: T, size: 8 });
    assert.deepEqual(outside, { type: 'error', message: `pattern window queries 0..${T + 1} × keys 0..${T} is not inside the run's ${T} tokens` });
    const stale = await ask({ runId: run.runId - 1, q0: 0, q1: T, k0: 0, k1: T, size: 8 });
    assert.deepEqual(stale, { type: 'error', message: 'that run was replaced by a newer one' });
    const tooBig = await ask({ q0: 0, q1: T, k0: 0, k1: T, size: 5000 });
    assert.equal(tooBig.type, 'error');
    assert.match((tooBig as { message: string }).message, /^malformed requestPatternTile message: body\.size: expected an integer from 1 to 1024/);
    const noHead = await ask({ head: { layer: 99, head: 0 }, q0: 0, q1: T, k0: 0, k1: T, size: 8 });
    assert.match((noHead as { message: string }).message, /head 99\.0 does not exist/);
  });

  it('a re-run cancelled as it starts keeps the previous run on screen and its interventions', async function () {
    this.timeout(120_000);
    await openEditor('sample.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    const before = a.session.run!;
    assert.deepEqual(a.session.interventions.scales, []);
    const runs: number[] = [];
    const sub = a.session.onDidChange((what) => {
      if (what === 'run') runs.push(a.session.run!.runId);
      // as soon as the run is in flight (busy says what it does): Cancel
      if (what === 'busy' && a.session.running && a.session.busy) assert.equal(a.session.cancelRun(), true);
    });
    try {
      await a.session.setScale([{ layer: 0, head: 0 }], 0);
    } finally {
      sub.dispose();
    }
    assert.deepEqual(runs, [], 'no run was shown');
    assert.equal(a.session.run, before, 'the previous run stays');
    assert.deepEqual(a.session.interventions.scales, [], 'the mask that started the run is undone');
    assert.equal(a.session.busy, null);
    assert.equal(a.session.running, false);
    assert.equal(a.session.cancelRun(), false, 'nothing left to cancel');
    // Cancelled before the engine started it: the engine's kept run is still the one on screen.
    const detail = await a.session.tokenDetail(0);
    assert.ok(detail, 'the previous run is still queryable');
    assert.equal(a.session.keptLost, false);
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(a.session.error, null);
    assert.ok(a.session.run!.runId > before.runId);
  });

  it('times mask toggles at about 1,500 tokens by stage (printed; compare with bench --views)', async function () {
    this.timeout(240_000);
    const words = 'The keeper hid a brass key under the blue stone by the door, and each night she climbed the steps to light the lamp. ';
    const doc = await vscode.workspace.openTextDocument({ content: words.repeat(70), language: 'plaintext' });
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a, 120_000);
    const T = a.session.run!.tokens.length;
    assert.ok(T > 1000, `${T} tokens`);
    // A toggle as a person makes it: toggle, wait until the views (decorations, panel state,
    // overlay) are updated, and with the panel open until the heatmap's tile of the new run came.
    const toggle = async (label: string) => {
      const ms: number[] = [];
      for (let i = 0; i < 4; i++) {
        const panel = PanelHost.current;
        const cpu0 = cpuNow();
        const t0 = performance.now();
        await a.session.toggleMask({ layer: 0, head: 0 });
        await settle(a, 120_000);
        const views = performance.now() - t0;
        const cpu = cpuNote(cpu0, cpuNow(), views);
        let tile = '';
        if (panel) {
          const done = await waitFor(() => panel.answered.find((x) => x.at >= t0 && x.type === 'requestPatternTile'), 'the heatmap tile of the new run', 120_000);
          tile = `; the heatmap's tile answered ${(done.at + done.ms - t0).toFixed(0)} ms after the toggle (${done.ms.toFixed(0)} ms in the host)`;
        }
        ms.push(views);
        console.log(`  [timing] ${label} toggle ${i}: views updated after ${views.toFixed(0)} ms; session stages: ${a.session.lastRunStages}${tile}${cpu}`);
      }
      return ms.slice(1).sort((x, y) => x - y)[1]!;
    };
    PanelHost.current?.panel.dispose();
    console.log(`  [timing] ${processNote()}`);
    const closed = await toggle('panel closed');
    const host = PanelHost.show(a.runs.ctx, a.session);
    await waitFor(() => host.ready, 'the panel page to be ready', 60_000);
    a.session.select({ layer: 1, head: 2 });
    await settle(a);
    const open = await toggle('panel open');
    console.log(`  [timing] ${T} tokens: median mask toggle ${closed.toFixed(0)} ms with the panel closed, ${open.toFixed(0)} ms with it open`);
    host.panel.dispose();
  });
});
