/// <reference types="mocha" />
// The one webview host (src/extension/webviewHost.ts) inside a real extension host: the ready gate
// and version check, validated dispatch with error replies, handler errors; and the Generation panel
// following the session. Messages are handed to the host's `receive` (what the webview's messages
// go through) and what it posts is read from a spy on webview.postMessage.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { CompareWebview } from '../../src/extension/runs/comparePanel';
import type { Envelope } from '../../src/shared/protocol';
import { RUNS_PROTOCOL_VERSION, type ToCompare, type ToGenerate } from '../../src/shared/runsProtocol';
import { api, openEditor, settle, waitFor } from './helpers';

/** Records what the host posts to the webview (and still posts it). */
function spyPosts<T>(webview: vscode.Webview): Envelope<T>[] {
  const sent: Envelope<T>[] = [];
  const post = webview.postMessage.bind(webview);
  (webview as { postMessage: (m: unknown) => Thenable<boolean> }).postMessage = (m: unknown) => {
    sent.push(m as Envelope<T>);
    return post(m);
  };
  return sent;
}

describe('the webview host', function () {
  let a: AttnScopeApi;

  before(async () => {
    a = await api();
  });

  it('sends nothing before ready, checks the version, answers invalid messages and handler errors with error replies', async () => {
    const panel = vscode.window.createWebviewPanel('attnscope.itest', 'host test', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true });
    const logged: string[] = [];
    const log = { info: (m: string) => logged.push(`info ${m}`), warn: (m: string) => logged.push(`warn ${m}`) };
    const sent = spyPosts<ToCompare>(panel.webview);
    const host = new CompareWebview(panel, a.runs.ctx.extensionUri, { view: null, error: 'nothing to show', canGenerate: false }, { log }, 'host test');
    try {
      // synchronously, before the page itself can post its ready
      void host.receive({ messageId: 1, body: { type: 'selected', position: null, head: null, metric: 'entropy', overlay: 'kl' } });
      host.update({ view: null, error: 'still nothing', canGenerate: false }, null);
      void host.receive({ messageId: 2, body: { type: 'ready', version: RUNS_PROTOCOL_VERSION + 100 } });
      void host.receive({ messageId: 3, body: { type: 'attentionRows', position: -1, head: null } });
      assert.equal(host.ready, false);
      assert.deepEqual(
        sent.map((e) => [e.inReplyTo, e.body.type]),
        [
          [1, 'error'],
          [2, 'error'],
          [3, 'error'],
        ],
        'only error replies before ready; the update was not sent',
      );
      assert.match((sent[0]!.body as { message: string }).message, /^selected before ready/);
      assert.match((sent[1]!.body as { message: string }).message, new RegExp(`protocol version ${RUNS_PROTOCOL_VERSION + 100} but the extension speaks ${RUNS_PROTOCOL_VERSION}; reload the window`));
      assert.equal((sent[2]!.body as { message: string }).message, 'malformed attentionRows message: body.position: expected an integer from 0 to 1048576');
      assert.ok(logged.some((l) => l.startsWith('warn host test: ignored a message from the page: malformed attentionRows')), logged.join('\n'));
      // ready: the full state as its reply; then requests are dispatched
      await host.receive({ messageId: 4, body: { type: 'ready', version: RUNS_PROTOCOL_VERSION } });
      assert.equal(host.ready, true);
      const init = sent.find((e) => e.inReplyTo === 4)!;
      assert.equal(init.body.type, 'init');
      assert.equal((init.body as { init: { error: string } }).init.error, 'still nothing', 'the state of now');
      await host.receive({ messageId: 5, body: { type: 'attentionRows', position: 0, head: null } });
      assert.deepEqual(sent.find((e) => e.inReplyTo === 5)?.body, { type: 'error', message: 'no comparison is shown' }, 'a handler error is the reply');
      await host.receive({ messageId: 6, body: { type: 'selected', position: 2, head: { layer: 1, head: 0 }, metric: 'sink', overlay: 'attention' } });
      assert.deepEqual(host.lastSelected, { type: 'selected', position: 2, head: { layer: 1, head: 0 }, metric: 'sink', overlay: 'attention' });
      await host.receive('not an envelope');
      assert.deepEqual(sent.at(-1)!.body, { type: 'error', message: 'message: expected an envelope {messageId, body}' });
      assert.equal(sent.at(-1)!.inReplyTo, undefined);
      assert.ok(host.received >= 7, `received ${host.received}`);
    } finally {
      host.dispose();
    }
    const n = sent.length;
    await host.receive({ messageId: 9, body: { type: 'ready', version: RUNS_PROTOCOL_VERSION } });
    assert.equal(sent.length, n, 'nothing is sent after dispose');
  });

  it('the Generation panel lists the interventions of now: a reset is shown, and then only the "without" lane runs', async function () {
    this.timeout(120_000);
    await openEditor('sample.prompt');
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    await a.session.setScale([{ layer: 0, head: 0 }], 0);
    await settle(a);
    const gp = a.runs.generate();
    const sent = spyPosts<ToGenerate>(gp.panel.webview);
    await gp.receive({ messageId: 1_000_000, body: { type: 'ready', version: RUNS_PROTOCOL_VERSION } });
    const init = sent.find((e) => e.inReplyTo === 1_000_000 && e.body.type === 'init')!.body as Extract<ToGenerate, { type: 'init' }>;
    assert.deepEqual(init.init.interventions, ['mask L0H0']);
    await a.session.reset();
    await settle(a);
    const update = await waitFor(() => sent.filter((e) => e.body.type === 'session').at(-1), 'a session update');
    assert.deepEqual((update.body as Extract<ToGenerate, { type: 'session' }>).session.interventions, [], 'the reset is listed');
    await gp.generate({ maxTokens: 2, temperature: 0, seed: 0 });
    const started = sent.find((e) => e.body.type === 'started')!.body as Extract<ToGenerate, { type: 'started' }>;
    assert.deepEqual(started.lanes, ['without']);
    assert.equal(gp.lanes.with.tokens, 0);
    assert.ok(gp.lanes.without.tokens >= 1);
    gp.dispose();
    assert.equal(a.runs.generatePanel, undefined);
  });
});
