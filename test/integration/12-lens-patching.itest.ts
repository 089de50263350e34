/// <reference types="mocha" />
// Research depth, VS Code side: the logit lens at the cursor token, watched tokens (this run vs the
// clean baseline) and "Patch Heads from a Clean Prompt" end to end.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import type { HeadNode } from '../../src/extension/headsTree';
import { headLabel } from '../../src/shared/heads';
import { rankPatching, type PatchingView } from '../../src/shared/patching';
import { ErrorSpy, api, fileUri, openEditor, settle, waitFor } from './helpers';

// examples/repeated-words.prompt: ten random words, then the first five again (an induction probe).
const REPEATED = 'apple river stone horse garden table window mountain candle bridge apple river stone horse garden';
// The same ten words, then five different ones: no repeat to copy from.
const CORRUPT = 'apple river stone horse garden table window mountain candle bridge paper cloud music forest yellow';

describe('logit lens, watched tokens, activation patching', function () {
  this.timeout(240_000);
  let a: AttnScopeApi;
  let editor: vscode.TextEditor;

  before(async () => {
    a = await api();
    await vscode.workspace.fs.writeFile(fileUri('repeated-words.prompt'), Buffer.from(REPEATED, 'utf8'));
    await vscode.workspace.fs.writeFile(fileUri('corrupt-words.prompt'), Buffer.from(CORRUPT, 'utf8'));
    editor = await openEditor('repeated-words.prompt');
    await a.session.reset().catch(() => undefined);
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(a.session.run?.prompt, REPEATED);
  });

  after(async () => {
    for (const t of [...a.session.watched]) await a.session.unwatchToken(t.id);
    await a.session.reset().catch(() => undefined);
    await settle(a);
  });

  it('the lens rows at the cursor token are the engine logit lens of the run; the last layer at the last token is the next-token list', async () => {
    const run = a.session.run!;
    const text = editor.document.getText();
    // the cursor on "stone" of the repeat: the overlay's query token
    const at = text.lastIndexOf('stone') + 1;
    editor.selection = new vscode.Selection(editor.document.positionAt(at), editor.document.positionAt(at));
    const q = a.session.tokenAt(at)!;
    await waitFor(() => a.session.overlay?.token === q, 'the overlay at "stone"');
    const rows = await a.session.lensAt(run.runId, q);
    const direct = await a.session.engine.lens({ prompt: REPEATED, position: q, topK: 10, watch: [], maxTokens: a.session.settings.maxTokens, interventions: a.session.interventions });
    assert.equal(rows.length, a.session.model!.layers + 1, 'embeddings + one row per block');
    assert.deepEqual(rows, direct.layers.map((l) => ({ layer: l.layer, top: l.top, watched: [] })));
    const last = await a.session.lensAt(run.runId, run.tokens.length - 1);
    const out = last[last.length - 1]!.top;
    assert.deepEqual(out.map((t) => t.id), run.next.map((n) => n.id), 'the output row lists the same tokens as the next-token list');
    for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i]!.prob - run.next[i]!.prob) < 1e-5, `${out[i]!.text}: lens ${out[i]!.prob} vs run ${run.next[i]!.prob}`);
    await assert.rejects(a.session.lensAt(run.runId, run.tokens.length), /outside the run/);
  });

  it('a watched token keeps its values; masking L1H0 separates this run from the clean baseline (cached)', async () => {
    const r = await a.session.watchText(' table');
    assert.ok(r.added, `" table" is one token (${r.message})`);
    const multi = await a.session.watchText(' tablecloth mountain');
    assert.equal(multi.added, null);
    assert.match(multi.message ?? '', /is \d+ tokens .*a watched token is a single token/);
    await settle(a);
    const plain = a.session.watch;
    assert.equal(plain.runId, a.session.run!.runId);
    assert.equal(plain.steered, false);
    const t0 = plain.tokens[0]!;
    assert.equal(t0.text, ' table');
    assert.ok(t0.current && t0.baseline);
    assert.deepEqual(t0.current, t0.baseline, 'no interventions: the run is the baseline');
    // the values are the lens's last layer at the last token (the model's prediction)
    const L = a.session.model!.layers;
    const lens = await a.session.engine.lens({ prompt: REPEATED, topK: 1, watch: [t0.id], maxTokens: a.session.settings.maxTokens });
    assert.equal(t0.current.prob, lens.layers[L]!.watched[0]!.prob);
    assert.equal(t0.current.rank, lens.layers[L]!.watched[0]!.rank);

    await a.session.setScale([{ layer: 1, head: 0 }], 0);
    await settle(a);
    const steered = a.session.watch;
    assert.equal(steered.runId, a.session.run!.runId);
    assert.equal(steered.steered, true);
    const t1 = steered.tokens[0]!;
    assert.deepEqual(t1.baseline, t0.current, 'the baseline is the unsteered run');
    assert.notEqual(t1.current!.prob, t1.baseline!.prob, 'masking L1H0 changes p(" table")');
    console.log(`p(" table"): baseline ${t1.baseline!.prob.toFixed(4)} (rank ${t1.baseline!.rank}), L1H0 masked ${t1.current!.prob.toFixed(4)} (rank ${t1.current!.rank})`);
    const direct = await a.session.engine.lens({ prompt: REPEATED, topK: 1, watch: [t1.id], maxTokens: a.session.settings.maxTokens, interventions: a.session.interventions });
    assert.equal(t1.current!.prob, direct.layers[L]!.watched[0]!.prob);
    // the lens at a token now carries the watched token's rank at every layer
    const rows = await a.session.lensAt(a.session.run!.runId, a.session.run!.tokens.length - 1);
    assert.deepEqual(rows.map((l) => l.watched[0]!.rank), direct.layers.map((l) => l.watched[0]!.rank));
    await a.session.reset();
    await settle(a);
  });

  it('Patch Heads from a Clean Prompt: L1H0 restores most of the repeat; the grid metric and the Heads view follow; a change of interventions clears it', async () => {
    await openEditor('corrupt-words.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(a.session.run?.prompt, CORRUPT);
    const view = (await vscode.commands.executeCommand('attnscope.patchHeads', fileUri('repeated-words.prompt'))) as PatchingView | undefined;
    await settle(a);
    assert.ok(view, 'the command returned a result');
    const m = a.session.model!;
    assert.equal(view.heads.length, m.layers * m.heads);
    assert.equal(a.session.patching, view);
    assert.equal(view.cleanLabel, 'repeated-words.prompt');
    assert.ok(view.clean > view.corrupt, `log p(target) clean ${view.clean} > corrupt ${view.corrupt}`);
    const ranked = rankPatching(view);
    console.log(`patching (target ${JSON.stringify(view.targetText)}): ${ranked.slice(0, 4).map((h) => `${headLabel(h)} ${h.effect?.toFixed(3)}`).join(', ')}`);
    if (a.session.modelView()?.name === 'default model') {
      assert.equal(view.targetText, ' table');
      assert.equal(headLabel(ranked[0]!), 'L1H0', 'the induction head restores the most');
    }
    assert.equal(a.tree.order.metric, 'patching');
    const flat = a.tree.getChildren({ kind: 'model' }) as Extract<HeadNode, { kind: 'head' }>[];
    assert.deepEqual(flat.map(headLabel), ranked.map(headLabel));
    const item = a.tree.getTreeItem(flat[0]!);
    assert.match(String(item.description), /patch effect \d\.\d\d/);
    // the effects as CSV: ranked like the tree, every head once
    await vscode.commands.executeCommand('attnscope.exportPatchingCsv', { target: fileUri('patching.csv').fsPath });
    const csv = Buffer.from(await vscode.workspace.fs.readFile(fileUri('patching.csv'))).toString('utf8').trimEnd().split('\r\n');
    assert.equal(csv.length, 2 + m.layers * m.heads);
    assert.deepEqual(csv.slice(2).map((l) => l.split(',')[3]), ranked.map(headLabel));
    assert.match((item.tooltip as vscode.MarkdownString).value, /Patching this head from repeated-words\.prompt/);

    await a.session.setScale([{ layer: 0, head: 0 }], 0);
    await settle(a);
    assert.equal(a.session.patching, undefined);
    assert.match(a.session.patchingNote ?? '', /cleared: the interventions changed/);
    await a.session.reset();
    await settle(a);
  });

  it('prompts of different token lengths: one line naming both lengths', async () => {
    const spy = new ErrorSpy();
    try {
      const r = await vscode.commands.executeCommand('attnscope.patchHeads', { text: 'apple river stone', label: 'short' });
      await settle(a);
      assert.equal(r, undefined);
      if (spy.supported) {
        const msg = spy.messages.find((x) => /patching needs prompts of the same token count/.test(x));
        assert.ok(msg, `an error notification (${spy.messages.join(' | ')})`);
        assert.match(msg, /the clean prompt has \d+ tokens and the corrupt prompt \d+/);
        assert.ok(!msg.includes('\n'), 'one line');
      }
    } finally {
      spy.dispose();
    }
  });
});
