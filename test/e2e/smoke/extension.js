// Throwaway smoke extension for the code-server e2e setup (see scripts/codeserver/README.md).
// `smoke.hello` tints the first word of the active editor, opens a webview panel with a strict CSP,
// posts an 8x8 Float32 matrix to it, and resolves with what the webview drew.
'use strict';
const vscode = require('vscode');
const crypto = require('crypto');

const N = 8;

function matrix() {
  // A causal, attention-like matrix: row i spreads over columns 0..i, peaked on the diagonal.
  const m = new Float32Array(N * N);
  for (let i = 0; i < N; i++) {
    let sum = 0;
    for (let j = 0; j <= i; j++) sum += m[i * N + j] = Math.exp(-(i - j) / 2);
    for (let j = 0; j <= i; j++) m[i * N + j] /= sum;
  }
  return m;
}

function html(webview, nonce) {
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource}`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<style nonce="${nonce}">
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
  canvas { border: 1px solid var(--vscode-panel-border, #888); image-rendering: pixelated; }
</style>
</head>
<body>
<h2 id="title">AttnScope smoke webview</h2>
<canvas id="smoke-canvas" width="320" height="320"></canvas>
<p id="status">waiting for data…</p>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const canvas = document.getElementById('smoke-canvas');
  const ctx = canvas.getContext('2d');
  window.addEventListener('message', (event) => {
    const msg = event.data;
    if (!msg || msg.type !== 'data') return;
    const values = msg.values instanceof Float32Array ? msg.values : new Float32Array(msg.values);
    const n = msg.n, cell = canvas.width / n;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const v = values[i * n + j];
        sum += v;
        const a = Math.min(1, Math.sqrt(v));
        ctx.fillStyle = 'rgba(255, 140, 0, ' + a.toFixed(3) + ')';
        ctx.fillRect(j * cell, i * cell, cell - 1, cell - 1);
        ctx.strokeStyle = 'rgba(128,128,128,0.4)';
        ctx.strokeRect(j * cell, i * cell, cell - 1, cell - 1);
      }
    }
    canvas.dataset.drawn = '1';
    document.getElementById('status').textContent = 'drew ' + (n * n) + ' cells, row sums total ' + sum.toFixed(3);
    vscode.postMessage({ type: 'drawn', cells: n * n, sum, byteLength: values.byteLength });
  });
  vscode.postMessage({ type: 'ready' });
</script>
</body>
</html>`;
}

function activate(context) {
  const decoration = vscode.window.createTextEditorDecorationType({
    backgroundColor: 'rgba(255, 140, 0, 0.45)',
    border: '1px solid rgba(255, 140, 0, 0.9)',
    borderRadius: '2px',
  });
  context.subscriptions.push(decoration);

  context.subscriptions.push(
    vscode.commands.registerCommand('smoke.hello', async () => {
      let decorated = 0;
      const editor = vscode.window.activeTextEditor;
      if (editor) {
        const ranges = [];
        const text = editor.document.getText();
        const re = /\w+/g;
        let m;
        // tint every other word of the first line
        const firstLine = editor.document.lineAt(0).text;
        for (let k = 0; (m = re.exec(firstLine)); k++) {
          if (k % 2 === 0) ranges.push(new vscode.Range(0, m.index, 0, m.index + m[0].length));
        }
        if (!ranges.length && text.length) ranges.push(new vscode.Range(0, 0, 0, Math.min(5, firstLine.length)));
        editor.setDecorations(decoration, ranges);
        decorated = ranges.length;
      }

      const panel = vscode.window.createWebviewPanel(
        'attnscopeSmoke',
        'Smoke Webview',
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, localResourceRoots: [] },
      );
      const values = matrix();
      const reply = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('smoke webview did not answer within 60 s')), 60_000);
        panel.webview.onDidReceiveMessage((msg) => {
          if (msg && msg.type === 'ready') panel.webview.postMessage({ type: 'data', n: N, values });
          else if (msg && msg.type === 'drawn') {
            clearTimeout(timer);
            resolve(msg);
          }
        });
        panel.onDidDispose(() => {
          clearTimeout(timer);
          reject(new Error('smoke webview closed before it answered'));
        });
      });
      const nonce = crypto.randomBytes(18).toString('base64');
      panel.webview.html = html(panel.webview, nonce);
      const drawn = await reply;
      return { decorated, cells: drawn.cells, sum: drawn.sum, byteLength: drawn.byteLength };
    }),
  );
}

function deactivate() {}

module.exports = { activate, deactivate };
