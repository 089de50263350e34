/// <reference types="mocha" />
// The inspection flow on a real .prompt file: inspect, cursor overlay, head masking and scaling,
// PASTA emphasis, reset, overlay direction and the panel. Every wait is a bounded condition.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { api, maxAbsDiff, openEditor, settle, waitFor } from './helpers';

type Next = { id: number; prob: number }[];

describe('inspect a .prompt file', function () {
  let a: AttnScopeApi;
  let editor: vscode.TextEditor;
  let baseline: Next;

  before(async () => {
    a = await api();
    editor = await openEditor('sample.prompt');
    assert.equal(editor.document.languageId, 'prompt');
  });

  const run = () => {
    const r = a.session.run;
    assert.ok(r, 'no run');
    return r;
  };
  const moveCursor = async (offset: number) => {
    const pos = editor.document.positionAt(offset);
    editor.selection = new vscode.Selection(pos, pos);
    const want = a.session.tokenAt(offset);
    assert.notEqual(want, undefined, `no token at offset ${offset}`);
    await waitFor(() => a.session.overlay?.token === want, `the overlay to follow the cursor to token ${want}`);
    await settle(a);
    return want!;
  };

  it('Inspect Attention gives tokens, heads and next-token predictions whose offsets map to the text', async () => {
    const res = (await vscode.commands.executeCommand('attnscope.inspect')) as { tokens: number } | undefined;
    await settle(a);
    const r = run();
    const text = editor.document.getText();
    assert.ok(res && res.tokens > 10, `inspect returned ${JSON.stringify(res)}`);
    assert.equal(res.tokens, r.tokens.length);
    assert.equal(a.session.doc?.toString(), editor.document.uri.toString());
    assert.equal(r.prompt, text);
    const m = a.session.model!;
    assert.ok(m.layers >= 1 && m.heads >= 1);
    assert.equal(r.heads.length, m.layers * m.heads, 'one metrics row per head');
    for (const h of r.heads) {
      assert.ok(h.entropy !== null && Number.isFinite(h.entropy) && h.entropy >= 0, `L${h.layer}H${h.head} entropy ${h.entropy}`);
      assert.equal(h.scale, 1);
    }
    assert.ok(r.next.length >= 1, 'no next-token predictions');
    const psum = r.next.reduce((s, n) => s + n.prob, 0);
    assert.ok(psum > 0 && psum <= 1 + 1e-5, `top-K probabilities sum to ${psum}`);
    for (let i = 1; i < r.next.length; i++) assert.ok(r.next[i]!.prob <= r.next[i - 1]!.prob + 1e-9, 'next is sorted');

    // UTF-16 offsets: in order, inside the document, and together they spell the prompt
    let pos = 0;
    let pieces = '';
    for (const t of r.tokens) {
      assert.ok(t.start <= t.end && t.end <= text.length, `token ${JSON.stringify(t)} outside the text`);
      if (t.special) continue;
      assert.equal(t.start, pos, `token ${JSON.stringify(t)} does not start where the previous one ended (${pos})`);
      const slice = text.slice(t.start, t.end);
      if (/^[\x20-\x7e]+$/.test(t.text)) assert.equal(slice, t.text, `token text vs document slice at ${t.start}`);
      pieces += slice;
      pos = t.end;
    }
    assert.equal(pieces, text, 'the tokens cover the document text exactly');
    assert.ok(a.session.overlay, 'an overlay after inspect');
    assert.equal(a.session.overlay.values.length, r.tokens.length);
    baseline = r.next;
  });

  it('moving the cursor changes the overlay and the tint without re-running the model', async () => {
    const r = run();
    const runId = r.runId;
    const text = editor.document.getText();
    const last = await moveCursor(text.length - 1);
    const overlayLast = a.session.overlay!;
    const tintedLast = a.decorations.update();
    assert.ok(tintedLast > 1, `tinted ${tintedLast} tokens with the cursor on the last token`);
    const early = r.tokens.findIndex((t) => !t.special && t.start >= 4);
    const q = await moveCursor(r.tokens[early]!.start);
    const overlayEarly = a.session.overlay!;
    const tintedEarly = a.decorations.update();
    assert.notEqual(q, last);
    assert.equal(a.session.run!.runId, runId, 'a cursor move must not re-run the model');
    assert.notDeepEqual([...overlayEarly.values], [...overlayLast.values], 'the overlay values changed');
    assert.equal(overlayEarly.direction, 'from');
    // "from": the token under the cursor attends only to itself and earlier tokens
    for (let i = q + 1; i < overlayEarly.values.length; i++) assert.equal(overlayEarly.values[i], 0, `value after the cursor token (${i})`);
    assert.ok(tintedEarly <= q + 1, `tinted ${tintedEarly} tokens for a cursor on token ${q}`);
    assert.notEqual(tintedEarly, tintedLast, 'the number of tinted tokens changed');
    const rowSum = overlayLast.values.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(rowSum - 1) < 1e-3, `an attention row sums to 1 (got ${rowSum})`);
  });

  it('a re-run repaints the prompt editor once: its overlay comes with the run (no clear in between), an unchanged tint is not repainted', async () => {
    const text = editor.document.getText();
    await moveCursor(text.length - 1);
    a.decorations.update();
    const before = a.decorations.repaints;
    // what the views see at each event: the run and the overlay must belong together at 'run'
    const seen: string[] = [];
    const sub = a.session.onDidChange((what) => {
      if (what === 'run' || what === 'overlay') seen.push(`${what}: run ${a.session.run?.runId}, overlay of run ${a.session.overlay?.runId}`);
    });
    const runId = run().runId;
    try {
      await a.session.setScale([{ layer: 0, head: 1 }], 0);
      await settle(a);
    } finally {
      sub.dispose();
    }
    const next = run().runId;
    assert.ok(next > runId, 'the mask re-ran the model');
    assert.deepEqual(seen, [`run: run ${next}, overlay of run ${next}`, `overlay: run ${next}, overlay of run ${next}`]);
    assert.equal(a.decorations.repaints - before, 1, 'one repaint of the one editor (before: the same tint again on "interventions", a clear on "run", the tint on "overlay")');
    assert.ok(a.decorations.update() > 1, 'the new run is tinted');
    assert.equal(a.decorations.repaints - before, 1, 'the same tint is not painted again');
    a.decorations.update(true);
    assert.equal(a.decorations.repaints - before, 1 + vscode.window.visibleTextEditors.length, 'forced: every visible editor');
    await a.session.setScale([{ layer: 0, head: 1 }], 1);
    await settle(a);
  });

  it('toggling a head (tree node argument) masks it and re-runs with different predictions', async () => {
    const m = a.session.model!;
    const node = { kind: 'head', layer: m.layers - 1, head: Math.min(1, m.heads - 1) };
    const before = run();
    await vscode.commands.executeCommand('attnscope.toggleHead', node);
    await settle(a);
    const after = run();
    assert.equal(a.session.scaleOf(node), 0, 'scale 0 after toggling');
    assert.ok(after.runId > before.runId, 'a new run');
    assert.equal(after.heads.find((h) => h.layer === node.layer && h.head === node.head)?.scale, 0);
    const d = maxAbsDiff(before.next, after.next);
    assert.ok(d > 1e-7, `next-token probabilities changed (max |Δ| ${d})`);
    // the Heads tree shows it unchecked and "masked"
    const item = a.tree.getTreeItem(node as never);
    const cb = item.checkboxState as { state: vscode.TreeItemCheckboxState } | vscode.TreeItemCheckboxState;
    assert.equal(typeof cb === 'object' ? cb.state : cb, vscode.TreeItemCheckboxState.Unchecked);
    assert.match(String(item.description), /masked/);
    // toggling again unmasks
    await vscode.commands.executeCommand('attnscope.toggleHead', node);
    await settle(a);
    assert.equal(a.session.interventions.scales.some((s) => s.layer === node.layer && s.head === node.head), false, 'unmasked again');
    assert.ok(maxAbsDiff(baseline, run().next) < 1e-5, 'unmasking restores the predictions');
  });

  it('Set Head Scale with a node and a value scales the head and re-runs', async () => {
    const node = { kind: 'head', layer: 0, head: 0 };
    const before = run();
    await vscode.commands.executeCommand('attnscope.setHeadScale', node, 2.5);
    await settle(a);
    const after = run();
    assert.equal(a.session.scaleOf({ layer: 0, head: 0 }), 2.5);
    assert.equal(after.heads.find((h) => h.layer === 0 && h.head === 0)?.scale, 2.5);
    assert.ok(after.runId > before.runId, 'a new run');
    assert.ok(maxAbsDiff(before.next, after.next) > 1e-7, 'predictions changed');
    assert.match(String(a.tree.getTreeItem(node as never).description), /×2\.5/);
  });

  it('Emphasize Selection sets the PASTA span and changes the run', async () => {
    const text = editor.document.getText();
    const start = text.indexOf('cat sat');
    assert.ok(start >= 0);
    const end = start + 'cat sat'.length;
    editor.selection = new vscode.Selection(editor.document.positionAt(start), editor.document.positionAt(end));
    await settle(a);
    const before = run();
    await vscode.commands.executeCommand('attnscope.emphasizeSelection', 0.01);
    await settle(a);
    const e = a.session.interventions.emphasis;
    assert.ok(e, 'emphasis set');
    assert.deepEqual({ start: e.start, end: e.end, alpha: e.alpha, heads: e.heads }, { start, end, alpha: 0.01, heads: 'all' });
    assert.equal(a.session.interventionsView().emphasis?.text, 'cat sat');
    const after = run();
    assert.ok(after.runId > before.runId, 'a new run');
    assert.ok(maxAbsDiff(before.next, after.next) > 1e-7, 'predictions changed');
  });

  it('Reset Interventions clears scales and emphasis and restores the predictions', async () => {
    const before = run();
    await vscode.commands.executeCommand('attnscope.resetInterventions');
    await settle(a);
    assert.equal(a.session.interventions.scales.length, 0);
    assert.equal(a.session.interventions.emphasis, null);
    assert.equal(a.session.hasInterventions(), false);
    assert.ok(run().runId > before.runId, 'a new run');
    assert.ok(maxAbsDiff(baseline, run().next) < 1e-5, 'same predictions as the first run');
    assert.ok(run().heads.every((h) => h.scale === 1));
  });

  it('Toggle Overlay Direction switches the overlay between "from" and "to"', async () => {
    const text = editor.document.getText();
    await moveCursor(text.indexOf('cat'));
    const runId = run().runId;
    const from = a.session.overlay!;
    assert.equal(from.direction, 'from');
    await vscode.commands.executeCommand('attnscope.toggleDirection');
    await waitFor(() => a.session.overlay?.direction === 'to', 'the overlay direction to become "to"');
    await settle(a);
    const to = a.session.overlay!;
    assert.equal(to.token, from.token);
    assert.equal(run().runId, runId, 'no re-run for a direction change');
    // "to": attention paid to the cursor token by itself and later tokens only
    for (let i = 0; i < to.token; i++) assert.equal(to.values[i], 0, `value before the cursor token (${i})`);
    assert.notDeepEqual([...to.values], [...from.values]);
    await vscode.commands.executeCommand('attnscope.toggleDirection');
    await waitFor(() => a.session.overlay?.direction === 'from', 'the overlay direction to go back to "from"');
    await settle(a);
  });

  it('Open Panel opens the AttnScope webview panel', async () => {
    await vscode.commands.executeCommand('attnscope.openPanel');
    await settle(a);
    const tab = await waitFor(
      () =>
        vscode.window.tabGroups.all
          .flatMap((g) => g.tabs)
          .find((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('attnscope.panel')),
      'a webview tab of type attnscope.panel',
    );
    assert.equal(tab.label, 'AttnScope');
    // a second call reveals the same panel instead of opening another
    await vscode.commands.executeCommand('attnscope.openPanel');
    await settle(a);
    const panels = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('attnscope.panel'));
    assert.equal(panels.length, 1, 'one panel');
  });
});
