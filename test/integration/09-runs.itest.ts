/// <reference types="mocha" />
// Saved runs, Compare with Baseline, generation and the .attnrun editor inside a real extension
// host. Every wait is a bounded condition.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { encodeRun, readRunFileAsync, type SavedRun } from '../../src/engine/runs/runFile';
import { api, fileUri, folder, openEditor, settle, waitFor } from './helpers';

/** The page of src/extension/webviewHtml.ts: the one strict CSP, a nonce'd module script of the bundle. */
function assertStrictHtml(w: vscode.Webview, script: string): void {
  const html = w.html;
  const nonce = /<script type="module" nonce="([^"]+)" src="[^"]*\/dist\/([a-z]+)\.js"><\/script>/.exec(html);
  assert.ok(nonce, `no nonce'd module script in ${html.slice(0, 200)}`);
  assert.equal(nonce[2], script);
  const csp = `default-src 'none'; style-src ${w.cspSource}; script-src 'nonce-${nonce[1]}'; font-src ${w.cspSource}; img-src ${w.cspSource} data:`;
  assert.ok(html.includes(`content="${csp}"`), `CSP is not ${csp}`);
  assert.ok(html.includes(`/dist/${script}.css"`) && html.includes('id="vscode-codicon-stylesheet"'), 'stylesheets');
}

describe('saved runs, comparison and generation', function () {
  let a: AttnScopeApi;

  before(async () => {
    a = await api();
    await openEditor('sample.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    if (a.session.hasInterventions()) {
      await a.session.reset();
      await settle(a);
    }
  });

  it('saves each inspection to .attnscope/runs without tensors, marked as auto-saved, kept out of git and quick-open', async () => {
    const run = a.session.run!;
    const file = await waitFor(() => a.runs.savedFile(run.runId), 'the auto-saved run file');
    assert.equal(path.dirname(file), path.join(folder().uri.fsPath, '.attnscope', 'runs'));
    assert.ok(fs.existsSync(file));
    const saved = await readRunFileAsync(file);
    assert.equal(saved.header.prompt, run.prompt);
    assert.equal(saved.header.tokens.length, run.tokens.length);
    assert.equal(saved.version, 2);
    assert.equal(saved.header.autoSaved, true, 'the header says AttnScope auto-saved it');
    // what a slim run keeps: the last position's distribution, each position's top-K with texts
    const V = saved.header.model.vocabSize;
    assert.equal(saved.lastLogits!.length, V, 'the last position\'s logits');
    assert.equal(saved.topIds!.length % run.tokens.length, 0);
    assert.ok([...saved.topIds!].every((id) => typeof saved.header.topTexts![id] === 'string'), 'top-K texts');
    assert.ok(!saved.logits && !saved.patterns, 'no per-position logits or patterns in an auto-save');
    assert.ok(fs.statSync(file).size < 2_000_000, `auto-saved run is ${fs.statSync(file).size} bytes`);
    assert.equal(fs.readFileSync(path.join(folder().uri.fsPath, '.attnscope', '.gitignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).join(), '*');
    const exclude = vscode.workspace.getConfiguration('search').get<Record<string, boolean>>('exclude') ?? {};
    assert.equal(exclude['**/.attnscope'], true, `search.exclude ${JSON.stringify(exclude)}`);
    assert.equal(exclude['**/node_modules'], true, 'the contributed default merges with VS Code\'s own');
  });

  it('Save Run As writes a new file and refuses to overwrite it', async () => {
    const target = fileUri('explicit.attnrun');
    fs.rmSync(target.fsPath, { force: true });
    const f = await vscode.commands.executeCommand('attnscope.saveRunAs', target, { tensors: true });
    assert.equal(f, target.fsPath);
    const before = fs.readFileSync(target.fsPath);
    const full = await readRunFileAsync(target.fsPath);
    assert.equal(full.header.prompt, a.session.run!.prompt);
    assert.equal(full.header.autoSaved, false, 'Save Run As is not an auto-save');
    assert.ok(full.logits && full.logits.length === full.header.tokens.length * full.header.model.vocabSize, 'per-position logits saved with tensors');
    assert.ok(full.patterns, 'attention patterns saved with tensors');
    const slimUri = fileUri('explicit-slim.attnrun');
    fs.rmSync(slimUri.fsPath, { force: true });
    await vscode.commands.executeCommand('attnscope.saveRunAs', slimUri, { tensors: false });
    const slim = await readRunFileAsync(slimUri.fsPath);
    assert.ok(!slim.logits && !slim.patterns && slim.lastLogits && slim.header.autoSaved === false);
    fs.rmSync(slimUri.fsPath, { force: true });
    await assert.rejects(a.runs.saveRunAs(target), /already exists/);
    assert.ok(fs.readFileSync(target.fsPath).equals(before), 'the explicit run is untouched');
  });

  it('Compare with Baseline (a head masked) opens the compare panel with KL > 0 somewhere', async () => {
    const m = a.session.model!;
    const heads = Array.from({ length: m.heads }, (_, h) => ({ layer: 0, head: h }));
    await a.session.setScale(heads, 0);
    await settle(a);
    const view = (await vscode.commands.executeCommand('attnscope.compareWithBaseline')) as { kl: { data: ArrayBuffer } } | undefined;
    await settle(a);
    assert.ok(view, 'the command returned no comparison');
    const last = a.runs.lastCompare!;
    assert.equal(last.a.interventions.length, 0, 'A is the baseline');
    assert.ok(last.b!.interventions.some((l) => l.startsWith('mask L0H')), `B has the masks: ${last.b!.interventions}`);
    const kl = new Float32Array(last.kl.data);
    assert.equal(kl.length, a.session.run!.tokens.length, 'same prompt: every token aligned');
    assert.ok(Math.max(...kl) > 0, `max KL ${Math.max(...kl)}`);
    assert.ok(last.mostDifferent.length > 0);
    assert.ok(last.deltas, 'head deltas');
    const panel = await waitFor(() => a.runs.comparePanel, 'the compare panel');
    await waitFor(() => panel.host.ready, 'the compare webview to post ready', 30_000);
    assertStrictHtml(panel.panel.webview, 'compare');
    // the attention overlay: both runs saved patterns; the panel keeps them (not the logits)
    assert.equal(last.attention, null, `attention overlay unavailable: ${last.attention}`);
    const kept = panel.host.runs!;
    assert.ok(kept[0].patterns && kept[1].patterns && !kept[0].logits && !kept[1].logits, 'the panel keeps the patterns only');
    // the session still has the intervened run (the views query it)
    assert.equal(a.session.scaleOf({ layer: 0, head: 0 }), 0);
    assert.ok(a.session.run!.heads.find((h) => h.layer === 0 && h.head === 0)!.scale === 0);
  });

  it('the compare panel shows the session\'s watched tokens in A and B, equal at the last position to the panel\'s baseline and current values', async () => {
    for (const t of [...a.session.watched]) await a.session.unwatchToken(t.id);
    const panel = await waitFor(() => a.runs.comparePanel, 'the compare panel');
    assert.equal(panel.host.init.view!.watch, null, 'nothing watched');
    // the baseline's most likely next token, and the intervened run's
    const last = a.runs.lastCompare!;
    const ids = [...new Set([last.a.next[0]!.id, last.b!.next[0]!.id, last.a.next[1]!.id])].slice(0, 2);
    for (const id of ids) await a.session.watchToken(id);
    await a.runs.compareWatchDone;
    const w = await waitFor(() => panel.host.init.view!.watch ?? undefined, 'the watched values in the comparison');
    assert.deepEqual(w.tokens.map((t) => t.id), ids);
    const P = panel.host.init.view!.positions.length;
    const sess = await waitFor(() => (a.session.watch.runId === a.session.runId && a.session.watch.tokens.every((t) => t.current && t.baseline) ? a.session.watch : undefined), 'the session\'s watched values');
    const f = (m: { data: ArrayBuffer }) => new Float32Array(m.data);
    const src = f(w.a.source);
    assert.equal(src[P - 1], 0, 'from every position\'s logits (Compare with Baseline saves tensors)');
    ids.forEach((id, i) => {
      const t = sess.tokens.find((x) => x.id === id)!;
      // A = the baseline, B = the run with the interventions; the last position is the panel's
      for (const [side, stat] of [[w.a, t.baseline!], [w.b, t.current!]] as const) {
        const lp = f(side.logprob)[i * P + P - 1]!;
        assert.ok(Math.abs(lp - stat.logprob) < 1e-3, `token ${id}: log p ${lp} vs the panel's ${stat.logprob}`);
        assert.equal(f(side.rank)[i * P + P - 1], stat.rank, `token ${id}: rank`);
        assert.ok(Math.abs(f(side.logit)[i * P + P - 1]! - stat.logit) < 1e-2, `token ${id}: logit`);
      }
    });
    // every aligned position has a value (full logits), and the pair's difference is logit(first) − logit(second)
    assert.ok([...f(w.a.logprob), ...f(w.b.logprob)].every((x) => Number.isFinite(x) && x <= 0));
    const d = f(w.b.pairDiff)[P - 1]!;
    assert.ok(Math.abs(d - (f(w.b.logit)[P - 1]! - f(w.b.logit)[P + P - 1]!)) < 1e-4, `pair diff ${d}`);
    // unwatching updates the panel
    await a.session.unwatchToken(ids[1]!);
    await a.runs.compareWatchDone;
    assert.deepEqual(panel.host.init.view!.watch!.tokens.map((t) => t.id), [ids[0]]);
    await a.session.watchToken(ids[1]!);
    await a.runs.compareWatchDone;
  });

  it('the Compare panel is restored from the run files in its webview state (a reload), and says when a file is gone', async () => {
    const last = a.runs.lastCompare!;
    const files: [string, string] = [last.a.file!, last.b!.file!];
    const labels: [string, string] = [last.a.label, last.b!.label];
    assert.ok(files.every((f) => fs.existsSync(f)), `run files ${files}`);
    const revived = () => vscode.window.createWebviewPanel('attnscope.compare', 'Compare', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: true });
    // what the serializer gets after a window reload: the state the webview saved
    await a.runs.restoreCompare(revived(), { metric: 'entropy', position: 1, head: null, overlay: 'attention', source: { files, labels } });
    let panel = a.runs.comparePanel!;
    assert.equal(panel.host.init.error, null);
    assert.equal(panel.host.init.view!.a.file, files[0]);
    assert.equal(panel.host.init.view!.b!.label, 'with interventions');
    assert.equal(panel.panel.title, 'Compare: baseline ↔ with interventions');
    assert.ok(panel.host.runs && panel.host.runs[1].patterns, 'the overlay can read the restored runs');
    assertStrictHtml(panel.panel.webview, 'compare');
    // (whether a webview opened beside loads in this harness varies with focus; test/e2e/compare.e2e.mjs reloads the window for real)
    // a run file that is gone: the panel says so (and which one)
    const moved = `${files[0]}.moved`;
    fs.renameSync(files[0], moved);
    try {
      await a.runs.restoreCompare(revived(), { source: { files, labels } });
      panel = a.runs.comparePanel!;
      assert.equal(panel.host.init.view, null);
      assert.match(panel.host.init.error!, /^baseline \(.*\.attnrun\): the run file is gone, so the comparison cannot be restored$/);
      assert.match(panel.host.init.hint!, /Compare Runs/);
    } finally {
      fs.renameSync(moved, files[0]);
    }
    // no usable state: a clear message, not a blank panel
    await a.runs.restoreCompare(revived(), { source: { files: ['/etc/passwd', files[1]], labels } });
    assert.match(a.runs.comparePanel!.host.init.error!, /not saved with the window/);
    // the restored panels replaced each other: one compare panel
    a.runs.comparePanel!.dispose();
    assert.equal(a.runs.comparePanel, undefined);
  });

  it('comparing two runs saved without tensors says what they cannot show (no tokenizer is opened)', async () => {
    const runsDir = path.join(folder().uri.fsPath, '.attnscope', 'runs');
    const autos: string[] = [];
    for (const n of fs.readdirSync(runsDir).filter((x) => x.endsWith('.attnrun'))) {
      const r = await readRunFileAsync(path.join(runsDir, n), { tensors: false });
      if (r.header.autoSaved && !n.includes('-baseline-') && !n.includes('-intervened-')) autos.push(path.join(runsDir, n));
    }
    assert.ok(autos.length >= 2, `two slim auto-saved runs: ${autos}`);
    const view = await a.runs.compareFiles(autos[0]!, autos[1]!, ['first', 'second']);
    assert.match(view.attention!, /^both runs were saved without attention patterns \(saved without tensors/);
    assert.ok(view.notComparable.some((x) => /^per-position KL: both runs were saved without every position's logits \(saved without tensors\)/.test(x)), view.notComparable.join(' | '));
    assert.ok(view.positions.some((p) => p.topA.length > 0 && p.topA.every((t) => !t.text.startsWith('#'))), 'top-K texts come from the runs');
    a.runs.comparePanel?.dispose();
  });

  it('pruning deletes only runs whose header says AttnScope auto-saved them, oldest first, past the count', async () => {
    const dir = path.join(folder().uri.fsPath, '.attnscope', 'runs');
    const base = await readRunFileAsync(a.runs.lastCompare!.a.file!, { tensors: false });
    const synth = (autoSaved: boolean): SavedRun => ({ header: { ...base.header, autoSaved }, lastLogits: base.lastLogits, topIds: base.topIds, topLogprobs: base.topLogprobs });
    const old = new Date('2020-01-01T00:00:00Z');
    const made: string[] = [];
    const put = (name: string, bytes: Buffer, when: Date) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      fs.utimesSync(f, when, when);
      made.push(f);
      return f;
    };
    try {
      for (let i = 0; i < 60; i++) put(`synthetic-2020-01-01T00-00-${String(i).padStart(2, '0')}-000Z.attnrun`, encodeRun(synth(true)), new Date(old.getTime() + i * 1000));
      const foreign = put('foreign-2019-01-01T00-00-00-000Z.attnrun', encodeRun(synth(false)), new Date('2019-01-01T00:00:00Z'));
      const junk = put('notes-2019-01-01T00-00-01-000Z.attnrun', Buffer.from('not a run'), new Date('2019-01-01T00:00:00Z'));
      const newest = await a.runs.savedFile(a.session.runId);
      await a.runs.prune(dir);
      const left = fs.readdirSync(dir).filter((n) => n.startsWith('synthetic-'));
      assert.ok(left.length < 60, `pruned synthetic runs: ${60 - left.length}`);
      assert.ok(!left.includes('synthetic-2020-01-01T00-00-00-000Z.attnrun'), 'the oldest auto-saved run went first');
      assert.ok(fs.existsSync(foreign), 'a run with an auto-save name but no autoSaved flag stays');
      assert.ok(fs.existsSync(junk), 'a file that is not a run stays');
      if (newest) assert.ok(fs.existsSync(newest), 'the newest auto-saved run stays');
      assert.ok(fs.existsSync(fileUri('explicit.attnrun').fsPath), 'Save Run As files stay');
    } finally {
      for (const f of made) fs.rmSync(f, { force: true });
    }
  });

  it('generates with and without the interventions, streams tokens, and Stop ends it', async function () {
    this.timeout(120_000);
    await vscode.commands.executeCommand('attnscope.generate');
    const gp = await waitFor(() => a.runs.generatePanel, 'the generation panel');
    assertStrictHtml(gp.panel.webview, 'generate');
    // (the webview's own rendering is checked by test/e2e/compare.e2e.mjs; here the host side)
    // a long generation, stopped at once (waiting for a few tokens first raced: a warm engine can
    // produce all 400 before a 25 ms poll sees the third; the engine-level test stops mid-stream)
    const long = gp.generate({ maxTokens: 400, temperature: 0, seed: 0 });
    gp.stop();
    await long;
    assert.equal(gp.lanes.without.stopReason, 'cancelled');
    assert.ok(gp.lanes.without.tokens < 400, `stopped after ${gp.lanes.without.tokens} tokens`);
    assert.equal(gp.lanes.with.stopReason, 'cancelled', 'the second lane does not start after Stop');
    // a short one runs both lanes to the end
    await gp.generate({ maxTokens: 6, temperature: 0, seed: 0 });
    assert.ok(gp.lanes.without.tokens >= 1 && gp.lanes.with.tokens >= 1, `tokens ${gp.lanes.without.tokens} / ${gp.lanes.with.tokens}`);
    assert.ok(!gp.running);
    // inspect the generated text: a new untitled .prompt document, inspected
    const prompt = a.session.prompt;
    const doc = await gp.inspectLane('with');
    await settle(a);
    assert.equal(doc.languageId, 'prompt');
    assert.equal(doc.isUntitled, true);
    assert.equal(a.session.doc?.toString(), doc.uri.toString());
    assert.equal(a.session.run!.prompt, prompt + gp.lanes.with.text);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('generation reports the watched tokens\' probability at every step; the first step without interventions is the prompt\'s baseline', async function () {
    this.timeout(120_000);
    assert.ok(a.session.watched.length >= 1, 'tokens watched by the compare test');
    // (after the generation test, which inspected its generated text: back to the sample, heads of layer 0 masked)
    await openEditor('sample.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    if (!a.session.hasInterventions()) {
      await a.session.setScale(Array.from({ length: a.session.model!.heads }, (_, h) => ({ layer: 0, head: h })), 0);
      await settle(a);
    }
    await vscode.commands.executeCommand('attnscope.generate');
    const gp = await waitFor(() => a.runs.generatePanel, 'the generation panel');
    await gp.generate({ maxTokens: 5, temperature: 0, seed: 0 });
    const ids = a.session.watched.map((t) => t.id);
    assert.deepEqual(gp.watchedTokens.map((t) => t.id), ids);
    for (const lane of ['without', 'with'] as const) {
      const l = gp.lanes[lane];
      assert.equal(l.watched.length, l.tokens, `${lane}: one entry per generated token`);
      assert.ok(l.watched.every((s) => s.length === ids.length && s.every((p) => p >= 0 && p <= 1)), `${lane}: probabilities`);
    }
    const sess = await waitFor(() => (a.session.watch.tokens.every((t) => t.current && t.baseline) ? a.session.watch : undefined), 'the session\'s watched values');
    ids.forEach((id, i) => {
      const t = sess.tokens.find((x) => x.id === id)!;
      // step 1 predicts the token after the prompt: the baseline (without) and the current run (with)
      const g0 = gp.lanes.without.watched[0]![i]!;
      const g1 = gp.lanes.with.watched[0]![i]!;
      assert.ok(Math.abs(Math.log(g0) - t.baseline!.logprob) < 1e-3, `token ${id} without: ${g0} vs baseline ${t.baseline!.prob}`);
      assert.ok(Math.abs(Math.log(g1) - t.current!.logprob) < 1e-3, `token ${id} with: ${g1} vs current ${t.current!.prob}`);
    });
    for (const t of [...a.session.watched]) await a.session.unwatchToken(t.id);
  });

  it('opening a damaged .attnrun shows its error in the editor and leaves the file untouched', async () => {
    const uri = fileUri('damaged.attnrun');
    const bytes = Buffer.concat([Buffer.from('ATTNRUN\n', 'latin1'), Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0, 0]), Buffer.from('{"format":')]);
    fs.writeFileSync(uri.fsPath, bytes);
    const mtime = fs.statSync(uri.fsPath).mtimeMs;
    await vscode.commands.executeCommand('vscode.openWith', uri, 'attnscope.runEditor');
    const host = await waitFor(() => [...a.runs.editors].find((e) => e.init.error), 'the run editor with an error');
    assert.match(host.init.error!, /damaged\.attnrun: .*(truncated|damaged)/);
    assert.ok(!host.init.error!.includes('\n'), 'one line');
    // (whether the webview loads in this harness varies with focus; the e2e test covers rendering)
    assert.ok(fs.readFileSync(uri.fsPath).equals(bytes), 'the damaged file is unchanged');
    assert.equal(fs.statSync(uri.fsPath).mtimeMs, mtime);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('opens a good .attnrun in the run editor', async () => {
    const uri = fileUri('explicit.attnrun');
    await vscode.commands.executeCommand('vscode.openWith', uri, 'attnscope.runEditor');
    const host = await waitFor(() => [...a.runs.editors].find((e) => e.init.view?.a.file === uri.fsPath), 'the run editor with the run');
    assert.equal(host.init.view!.mode, 'single');
    assert.ok(host.init.view!.a.tokens.length > 5, "the saved tokens are shown");
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  after(async () => {
    await a.session.reset().catch(() => undefined);
    await settle(a).catch(() => undefined);
  });
});
