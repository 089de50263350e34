/// <reference types="mocha" />
// Exports: every export command writes its file when given a target path (no dialog): the head grid
// and a pattern as SVG (vector, well-formed enough to hold every head) and PNG (drawn by the panel's
// canvas, checked), the metrics CSV (every head), the HTML report with the prompt escaped, and the
// clipboard TSVs.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { AttnScopeApi } from '../../src/extension/extension';
import { METRICS } from '../../src/shared/heads';
import { api, fileUri, openEditor, settle } from './helpers';

// A prompt a report must not execute: markup, an ampersand, quotes.
const HOSTILE = 'Say <script>alert("pwned")</script> & "quotes" — then apple river stone apple river stone';

describe('exports: figures, tables, report, clipboard', function () {
  this.timeout(180_000);
  let a: AttnScopeApi;

  before(async () => {
    a = await api();
    await vscode.workspace.fs.writeFile(fileUri('hostile.prompt'), Buffer.from(HOSTILE, 'utf8'));
    await openEditor('hostile.prompt');
    await a.session.reset().catch(() => undefined);
    await vscode.commands.executeCommand('attnscope.inspect');
    await settle(a);
    assert.equal(a.session.run?.prompt, HOSTILE);
    a.session.select({ layer: 1, head: 0 });
  });

  const read = (name: string) => fs.readFileSync(fileUri(name).fsPath, 'utf8');

  it('exportGrid (SVG, paper) writes vector markup with every head', async () => {
    const m = a.session.model!;
    await vscode.commands.executeCommand('attnscope.exportGrid', { target: fileUri('grid.svg').fsPath, palette: 'paper', metric: 'induction' });
    const svg = read('grid.svg');
    assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.ok(!/<image|base64/.test(svg), 'no embedded bitmap');
    assert.ok(!svg.includes('<script'), 'the prompt in the title is escaped');
    for (let l = 0; l < m.layers; l++) for (let h = 0; h < m.heads; h++) assert.ok(svg.includes(`<title>L${l}H${h}: `), `L${l}H${h} in the SVG`);
  });

  it('exportPattern (SVG) writes the selected head with token labels', async () => {
    await vscode.commands.executeCommand('attnscope.exportPattern', { target: fileUri('pattern.svg').fsPath, format: 'svg', palette: 'paper' });
    const svg = read('pattern.svg');
    assert.ok(svg.includes('L1H0 attention pattern'));
    const T = a.session.run!.tokens.length;
    assert.equal((svg.match(/<title>query \d+ /g) ?? []).length, (T * (T + 1)) / 2, 'one cell per causal (query, key) pair');
  });

  it('exportMetricsCsv writes every head and metric', async () => {
    await vscode.commands.executeCommand('attnscope.exportMetricsCsv', { target: fileUri('metrics.csv').fsPath });
    const lines = read('metrics.csv').trimEnd().split('\r\n');
    const m = a.session.model!;
    assert.equal(lines.length, 1 + m.layers * m.heads);
    const header = lines[0]!.split(',');
    for (const k of METRICS) assert.ok(header.includes(k));
    const h = a.session.run!.heads.find((x) => x.layer === 1 && x.head === 0)!;
    const row = lines[1 + 1 * m.heads + 0]!.split(',');
    assert.equal(Number(row[header.indexOf('induction')]), h.induction, 'exact value');
  });

  it('exportReport writes one self-contained HTML file with the prompt escaped', async () => {
    await vscode.commands.executeCommand('attnscope.exportReport', { target: fileUri('report.html').fsPath });
    const html = read('report.html');
    assert.equal((html.match(/<script/gi) ?? []).length, 0, 'nothing executable');
    assert.ok(html.includes('Say &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;'));
    assert.ok(/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;/.test(html));
    assert.ok(!/(src|href)=/i.test(html), 'nothing loaded from the network or disk');
    assert.ok(html.includes('<svg '), 'the head grid inline');
  });

  it('copyMetrics and copyGrid put TSV on the clipboard', async () => {
    const row = (await vscode.commands.executeCommand('attnscope.copyMetrics', { head: '1.0', target: 'clipboard' })) as string;
    assert.equal(await vscode.env.clipboard.readText(), row);
    assert.ok(row.startsWith('head\tscale\t'));
    assert.ok(row.split('\n')[1]!.startsWith('L1H0\t'));
    const grid = (await vscode.commands.executeCommand('attnscope.copyGrid', { metric: 'sink', target: 'clipboard' })) as string;
    assert.equal(grid.trimEnd().split('\n').length, 1 + a.session.model!.layers);
  });

  it('exportGrid (PNG) is drawn by the panel and written as a checked PNG', async () => {
    const target = fileUri('grid.png').fsPath;
    await vscode.commands.executeCommand('attnscope.exportGrid', { target, palette: 'paper', metric: 'induction' });
    await settle(a);
    const b = fs.readFileSync(target);
    assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(b.readUInt32BE(16) > 400 && b.readUInt32BE(20) > 200, `a ${b.readUInt32BE(16)}×${b.readUInt32BE(20)} PNG`);
  });
});
