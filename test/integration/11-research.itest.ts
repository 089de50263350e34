/// <reference types="mocha" />
// Research depth in the editor: head importance by ablation (command, Heads view, invalidation),
// automatic head roles in the Heads view, and the attention-rollout overlay.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import type { HeadNode } from '../../src/extension/headsTree';
import { headLabel } from '../../src/shared/heads';
import { headRoles } from '../../src/shared/headLabels';
import { rankImportance, type ImportanceView } from '../../src/shared/importance';
import { api, fileUri, openEditor, setSetting, settle, waitFor } from './helpers';

// Repeated random words: the classic induction probe (Olsson et al. 2022).
const REPEATED = 'apple river stone horse garden table window mountain candle bridge apple river stone horse garden';

describe('research depth: ablation, roles, rollout', function () {
  this.timeout(180_000);
  let a: AttnScopeApi;
  let editor: vscode.TextEditor;

  before(async () => {
    a = await api();
    await vscode.workspace.fs.writeFile(fileUri('repeated.prompt'), Buffer.from(REPEATED, 'utf8'));
    editor = await openEditor('repeated.prompt');
    await a.session.reset().catch(() => undefined);
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(a.session.run?.prompt, REPEATED);
  });

  after(async () => {
    await setSetting('attnscope.overlay.aggregation', undefined);
    await setSetting('attnscope.overlay.direction', undefined);
  });

  it('Rank Heads by Ablation ranks every head; the previous-token and induction heads lead; the Heads view lists the top heads', async () => {
    const view = (await vscode.commands.executeCommand('attnscope.ablateHeads', 'logprob')) as ImportanceView | undefined;
    await settle(a);
    const m = a.session.model!;
    const run = a.session.run!;
    assert.ok(view, 'the command returned no ranking');
    assert.equal(view.metric, 'logprob');
    assert.equal(view.heads.length, m.layers * m.heads);
    assert.equal(a.session.importance, view, 'the session keeps the ranking for this run');
    assert.equal(view.runId, run.runId);
    // log p of the run's own top-1 at baseline
    assert.ok(Math.abs(view.baseline - Math.log(run.next[0]!.prob)) < 1e-3, `baseline ${view.baseline} vs log ${run.next[0]!.prob}`);
    const ranked = rankImportance(view).map(headLabel);
    const best = (k: 'prevToken' | 'induction') => headLabel([...run.heads].sort((x, y) => (y[k] ?? -1) - (x[k] ?? -1))[0]!);
    const top3 = ranked.slice(0, 3);
    console.log(`ablation (logprob of ${JSON.stringify(view.targetText)}): ${rankImportance(view).slice(0, 5).map((h) => `${headLabel(h)} ${h.delta.toFixed(3)}`).join(', ')}`);
    assert.ok(top3.includes(best('prevToken')) && top3.includes(best('induction')), `top heads ${top3} include the previous-token head ${best('prevToken')} and the induction head ${best('induction')}`);
    if (a.session.modelView()?.name === 'default model') {
      assert.ok(top3.includes('L1H0') && top3.includes('L0H7'), `default model: L1H0 and L0H7 among ${top3}`);
    }
    // The Heads view switched to the flat list by importance, in ranked order, with Δ log p in the description.
    assert.equal(a.tree.order.metric, 'importance');
    assert.equal(a.tree.order.flat, true);
    const flat = a.tree.getChildren({ kind: 'model' }) as Extract<HeadNode, { kind: 'head' }>[];
    assert.deepEqual(flat.map(headLabel), ranked);
    const item = a.tree.getTreeItem(flat[0]!);
    assert.match(String(item.description), /Δ log p −\d/);
    assert.match((item.tooltip as vscode.MarkdownString).value, /Masking this head.*Δ log p/);
    await vscode.commands.executeCommand('attnscope.headsByLayer');
    assert.equal(a.tree.getChildren({ kind: 'model' })[0]!.kind, 'layer');
  });

  it('a ranking is cleared when the interventions change, and the Heads view says why', async () => {
    assert.ok(a.session.importance, 'a ranking from the previous test');
    await a.session.setScale([{ layer: 0, head: 0 }], 0);
    await settle(a);
    assert.equal(a.session.importance, undefined);
    assert.match(a.session.importanceNote ?? '', /cleared: the interventions changed/);
    a.tree.refresh();
    assert.match(a.tree.view.message ?? '', /interventions changed/);
    await a.session.reset();
    await settle(a);
    assert.equal(a.session.importance, undefined, 'undoing the change does not bring an old ranking back');
  });

  it('automatic head roles appear in the Heads view description and tooltip with their source', async () => {
    const run = a.session.run!;
    const T = run.tokens.length;
    const induction = run.heads.find((h) => headRoles(h, T).includes('induction'));
    assert.ok(induction, `some head is an induction head on a repeated sequence (max induction ${Math.max(...run.heads.map((h) => h.induction ?? 0))})`);
    const item = a.tree.getTreeItem({ kind: 'head', layer: induction.layer, head: induction.head });
    assert.match(String(item.description), /induction/);
    const tip = (item.tooltip as vscode.MarkdownString).value;
    assert.match(tip, /\*\*Induction\*\*: attends to the token after an earlier occurrence/);
    assert.match(tip, /Olsson et al\. 2022/);
  });

  it('the rollout overlay shows a from-row that sums to 1 and differs from the mean overlay', async () => {
    const text = editor.document.getText();
    const pos = editor.document.positionAt(text.length - 2);
    editor.selection = new vscode.Selection(pos, pos);
    const q = a.session.tokenAt(text.length - 2)!;
    await setSetting('attnscope.overlay.aggregation', 'mean');
    await waitFor(() => a.session.overlay?.token === q, 'the overlay at the last word');
    await settle(a);
    const mean = Float32Array.from(a.session.overlay!.values);
    await setSetting('attnscope.overlay.aggregation', 'rollout');
    await setSetting('attnscope.overlay.direction', 'to');
    const roll = await waitFor(() => {
      const o = a.session.overlay;
      return o && o.token === q && o.values.some((v, i) => Math.abs(v - mean[i]!) > 1e-3) ? o : undefined;
    }, 'the rollout overlay');
    await settle(a);
    const o = a.session.overlay!;
    assert.equal(o.direction, 'from', 'rollout is a from-row whatever the direction setting');
    const sum = o.values.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum - 1) < 1e-4, `rollout row sums to ${sum}`);
    for (let k = q + 1; k < o.values.length; k++) assert.equal(o.values[k], 0, 'nothing from later tokens');
    let diff = 0;
    for (let i = 0; i < mean.length; i++) diff = Math.max(diff, Math.abs(o.values[i]! - mean[i]!));
    assert.ok(diff > 1e-3, `rollout differs from the mean row (max |diff| ${diff})`);
    void roll;
    const tinted = a.decorations.update();
    assert.ok(tinted > 1, `the editor overlay tints ${tinted} tokens`);
  });
});
