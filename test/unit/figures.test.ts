// Export generators (src/shared/figures): SVG well-formed (parsed by xml2js/sax, strict), texts
// escaped and inert, every head present, printed numbers exact to their shown precision, dims;
// pattern downsampling; CSV/TSV exact values and quoting; the HTML report self-contained under its
// CSP; the scene and PNG validators; the canvas renderer; export arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { makeFixture } from '../fixtures/webviewFixtures';
import { METRICS, formatMetricValue, type HeadSummary } from '../../src/shared/heads';
import { headRoles } from '../../src/shared/headLabels';
import { rankImportance, type ImportanceView } from '../../src/shared/importance';
import { escapeXml, sceneToSvg, shapesInside, tokenLabel, type Scene, type RectShape, type TextShape } from '../../src/shared/figures/scene';
import { gridColoring, gridFigure } from '../../src/shared/figures/gridFigure';
import { binBounds, downsample, niceStep, patternFigure } from '../../src/shared/figures/patternFigure';
import { PAPER, VIRIDIS, defaultThemeColors, rampColor, themePalette } from '../../src/shared/figures/palette';
import { csvField, gridTsv, headMetricsTsv, importanceCsv, metricsCsv, patchingCsv } from '../../src/shared/figures/tables';
import { REPORT_CSS, promptHtml, reportHtml } from '../../src/shared/figures/report';
import { fileStem, formatOfPath, parseExportArg } from '../../src/shared/figures/exportArgs';
import { pngInfo, scene as checkScene } from '../../src/shared/validate';
import { drawScene, rasterSize } from '../../webview/logic/drawScene';
import { OVERLAY_LEVELS, overlayLegend, paintSpan, quantize, tokenAtOffset } from '../../src/shared/overlay';
import type { TokenView } from '../../src/shared/protocol';

const EVIL = 'Say <script>alert("x")</script> & \'co\' ]]> \u0001 \ud800 done';
const fx = makeFixture({ layers: 4, heads: 8, tokens: 30, scales: { '1.2': 0, '3.1': 2 } });
const run = fx.state.run!;
const model = { name: 'tiny-llama-4x8', arch: 'llama', layers: 4, heads: 8 };
const importance: ImportanceView = {
  metric: 'logprob',
  baseline: -1.2345678,
  targetText: ' <b>&',
  runId: 1,
  heads: run.heads.map((h, i) => ({ layer: h.layer, head: h.head, value: -1.2345678 + ((i * 37) % 11) / 10 - 0.5, delta: ((i * 37) % 11) / 10 - 0.5 })),
};

// xml2js (sax underneath, strict mode): a real XML parser for the well-formedness checks. It comes
// with @vscode/vsce (no types of its own).
const { parseStringPromise } = createRequire(__filename)('xml2js') as { parseStringPromise(xml: string, opts: { strict: boolean }): Promise<unknown> };

async function parseSvg(svg: string): Promise<Record<string, unknown>> {
  return (await parseStringPromise(svg, { strict: true })) as Record<string, unknown>;
}
const rects = (s: Scene): RectShape[] => s.shapes.filter((x): x is RectShape => x.kind === 'rect');
const texts = (s: Scene): TextShape[] => s.shapes.filter((x): x is TextShape => x.kind === 'text');

test('escapeXml: markup characters escaped, XML-invalid characters replaced', () => {
  assert.equal(escapeXml('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
  assert.equal(escapeXml('a\u0001b\ud800c\ud83d\ude00'), 'a\ufffdb\ufffdc\ud83d\ude00', 'a valid surrogate pair is kept');
  assert.equal(tokenLabel('\n'), '⏎');
  assert.equal(tokenLabel('   '), '···');
  assert.equal(tokenLabel('abcdefghijklmnop', 6), 'abcde…');
});

test('sceneToSvg: well-formed, dims, hostile text inert and round-trips', async () => {
  const s: Scene = {
    width: 200.5,
    height: 100,
    background: '#ffffff',
    fontFamily: 'Helvetica, "Arial"',
    title: EVIL,
    desc: EVIL,
    shapes: [
      { kind: 'rect', x: 1, y: 2, w: 3, h: 4, fill: '#440154', title: EVIL },
      { kind: 'text', x: 5, y: 6, text: EVIL, size: 10, fill: '#000000', rotate: -90, anchor: 'middle', baseline: 'middle', bold: true, mono: true },
      { kind: 'line', x1: 0, y1: 0, x2: 10, y2: 10, stroke: '#000000', width: 1 },
    ],
  };
  const svg = sceneToSvg(s);
  assert.ok(!/<script/i.test(svg), 'no script element');
  assert.ok(!/<image|base64|href=/i.test(svg), 'vector only: no embedded bitmap, no links');
  const doc = (await parseSvg(svg)) as { svg: { $: Record<string, string>; text: { _: string }[]; rect: unknown[]; title: string[] } };
  assert.equal(doc.svg.$.width, '200.5');
  assert.equal(doc.svg.$.height, '100');
  assert.equal(doc.svg.$.viewBox, '0 0 200.5 100');
  const expected = EVIL.replace('\u0001', '\ufffd').replace('\ud800', '\ufffd');
  assert.equal(doc.svg.text[0]!._, expected, 'the text reads back as written (but the invalid characters)');
  assert.equal(doc.svg.title[0], expected);
  assert.equal(doc.svg.rect.length, 2, 'background + one rect');
});

test('gridFigure: every head once, values printed to 2 decimals exactly, dims, well-formed', async () => {
  for (const metric of METRICS) {
    const s = gridFigure({ model, prompt: EVIL, heads: run.heads, tokens: run.tokens.length, metric, importance: null, interventions: ['mask L1H2', 'scale L3H1 ×2'], selected: { layer: 2, head: 5 }, palette: PAPER });
    assert.ok(shapesInside(s), `${metric}: every shape inside the ${s.width}×${s.height} figure`);
    const cells = rects(s).filter((r) => r.title);
    assert.equal(cells.length, 32, `${metric}: one cell per head`);
    for (const h of run.heads) {
      const cell = cells.filter((r) => r.title!.startsWith(`L${h.layer}H${h.head}: `));
      assert.equal(cell.length, 1, `${metric}: L${h.layer}H${h.head} once`);
      assert.ok(cell[0]!.title!.includes(formatMetricValue(metric, h[metric])), `${metric}: the title carries the value`);
      // the printed value: the cell's text at its center
      const c = cell[0]!;
      const printed = texts(s).find((t) => t.x === c.x + c.w / 2 && t.y === c.y + c.h / 2);
      assert.ok(printed, `${metric}: a value printed in L${h.layer}H${h.head}`);
      const v = h[metric];
      assert.equal(printed!.text, v === null ? 'n/a' : v.toFixed(2));
      if (v !== null && metric !== 'entropy') assert.equal(c.fill, rampColor(VIRIDIS, v), 'fractions on the fixed 0..1 viridis scale');
    }
    const labels = texts(s).map((t) => t.text);
    for (let l = 0; l < 4; l++) assert.ok(labels.includes(`L${l}`));
    for (let h = 0; h < 8; h++) assert.ok(labels.includes(`H${h}`));
    assert.ok(cells.find((r) => r.title!.startsWith('L1H2: '))!.title!.includes('masked'));
    assert.equal(s.shapes.filter((x) => x.kind === 'line' && x.width === 1).length, 2, 'one × for the masked head');
    assert.ok(rects(s).some((r) => r.fill === 'none' && r.stroke === PAPER.selected && r.strokeWidth === 2), 'the selected head outlined');
    const svg = sceneToSvg(s);
    assert.ok(!svg.includes('<script'), 'the prompt in the title is escaped');
    const doc = (await parseSvg(svg)) as { svg: { $: Record<string, string> } };
    assert.equal(Number(doc.svg.$.width), s.width);
    assert.equal(Number(doc.svg.$.height), s.height);
  }
});

test('gridFigure: importance on a diverging scale, colored by harm, printed as measured', () => {
  const s = gridFigure({ model, prompt: 'p', heads: run.heads, tokens: run.tokens.length, metric: 'importance', importance, interventions: [], selected: null, palette: PAPER });
  const col = gridColoring({ model, heads: run.heads, metric: 'importance', importance });
  assert.equal(col.ramp, 'diverging');
  const m = Math.max(...importance.heads.map((h) => Math.abs(h.delta)));
  for (const h of importance.heads) {
    const cell = col.cells[h.layer * 8 + h.head]!;
    assert.equal(cell.value, h.delta);
    // logprob: a drop (negative Δ) hurts → harm −Δ → the red end
    assert.equal(cell.t, 0.5 + -h.delta / (2 * m));
    assert.equal(cell.text, h.delta === 0 ? '0.00' : `${h.delta < 0 ? '−' : '+'}${Math.abs(h.delta).toFixed(2)}`);
  }
  assert.equal(rects(s).filter((r) => r.title).length, 32);
  assert.throws(() => gridColoring({ model, heads: run.heads, metric: 'importance', importance: null }), /Rank Heads by Ablation/);
});

test('gridFigure: a large model labels sparsely and stays inside its bounds', () => {
  const big = makeFixture({ layers: 24, heads: 32, tokens: 20 });
  const s = gridFigure({ model: { ...model, layers: 24, heads: 32 }, prompt: 'x', heads: big.state.run!.heads, tokens: 20, metric: 'sink', importance: null, interventions: [], selected: null, palette: themePalette(defaultThemeColors('dark')) });
  assert.equal(rects(s).filter((r) => r.title).length, 24 * 32);
  assert.ok(shapesInside(s));
  assert.ok(texts(s).filter((t) => /^H\d+$/.test(t.text)).length < 32, 'column labels thinned');
  assert.equal(s.background, '#1f1f1f');
});

test('patternFigure: token axes for small T, causal triangle blank, exact cell colors', async () => {
  const T = run.tokens.length;
  const p = fx.pattern({ layer: 2, head: 5 });
  const s = patternFigure({ model, prompt: run.prompt, tokens: run.tokens, head: { layer: 2, head: 5 }, pattern: p, metrics: run.heads[2 * 8 + 5], interventions: [], palette: PAPER });
  const cells = rects(s).filter((r) => r.title);
  assert.equal(cells.length, (T * (T + 1)) / 2, 'the lower triangle and the diagonal, nothing above');
  for (const c of cells) {
    const m = /^query (\d+) .* → key (\d+) .*: ([\d.]+)$/.exec(c.title!);
    assert.ok(m, c.title);
    const q = Number(m![1]);
    const k = Number(m![2]);
    assert.ok(k <= q);
    assert.equal(m![3], p[q * T + k]!.toFixed(4));
    assert.equal(c.fill, rampColor(VIRIDIS, p[q * T + k]!));
  }
  const labels = texts(s).map((t) => t.text);
  assert.ok(labels.includes(tokenLabel(run.tokens[3]!.text)), 'token text on the axes');
  assert.ok(shapesInside(s));
  await parseSvg(sceneToSvg(s));
});

test('patternFigure: long prompts are block-mean downsampled, index ticks, said in the caption', () => {
  const T = 300;
  const tokens: TokenView[] = Array.from({ length: T }, (_, i) => ({ text: `t${i}`, start: i, end: i + 1, special: false, id: i }));
  const p = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = 0; k <= q; k++) p[q * T + k] = 1 / (q + 1);
  const s = patternFigure({ model, prompt: 'x'.repeat(T), tokens, head: { layer: 0, head: 0 }, pattern: p, interventions: [], palette: PAPER, maxCells: 100 });
  assert.ok(texts(s).some((t) => t.text.includes('Downsampled from 300×300 to 100×100')));
  assert.ok(!texts(s).some((t) => t.text === 't5'), 'no token labels');
  assert.ok(texts(s).some((t) => t.text === '100'), 'index ticks');
  assert.ok(shapesInside(s));
  const d = downsample(p, T, 100);
  const [q0, q1] = binBounds(T, 100, 7);
  const [k0, k1] = binBounds(T, 100, 3);
  let sum = 0;
  for (let q = q0; q < q1; q++) for (let k = k0; k < k1; k++) sum += p[q * T + k]!;
  assert.equal(d[7 * 100 + 3], sum / ((q1 - q0) * (k1 - k0)));
  assert.deepEqual(binBounds(300, 100, 99), [297, 300]);
  assert.equal(niceStep(300, 10), 50);
  assert.throws(() => patternFigure({ model, prompt: 'x', tokens, head: { layer: 0, head: 0 }, pattern: new Float32Array(4), interventions: [], palette: PAPER }), /300×300/);
});

test('metricsCsv: every head and metric, exact values, roles, importance columns', () => {
  const csv = metricsCsv(model, run.heads, run.tokens.length, importance);
  const lines = csv.trimEnd().split('\r\n');
  assert.equal(lines.length, 1 + 32);
  const header = lines[0]!.split(',');
  assert.deepEqual(header.slice(0, 4), ['layer', 'head', 'label', 'scale']);
  const ranks = new Map(rankImportance(importance).map((h, i) => [`${h.layer}.${h.head}`, i + 1]));
  for (const h of run.heads) {
    const row = lines[1 + h.layer * 8 + h.head]!.split(',');
    const at = (c: string) => row[header.indexOf(c)]!;
    assert.equal(at('label'), `L${h.layer}H${h.head}`);
    assert.equal(Number(at('scale')), h.scale);
    for (const m of METRICS) assert.equal(at(m) === '' ? null : Number(at(m)), h[m], `${m} read back exactly`);
    assert.equal(at('roles'), headRoles(h as HeadSummary, run.tokens.length).join(';'));
    const imp = importance.heads.find((x) => x.layer === h.layer && x.head === h.head)!;
    assert.equal(Number(at('importance_delta')), imp.delta);
    assert.equal(Number(at('importance_value')), imp.value);
    assert.equal(Number(at('importance_rank')), ranks.get(`${h.layer}.${h.head}`));
  }
  const noImp = metricsCsv(model, run.heads, run.tokens.length, null).split('\r\n')[1]!;
  assert.ok(noImp.endsWith(',,,,'), 'no ablation: empty importance fields');
});

test('csvField: quoting and formula neutralisation; importanceCsv ranks', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"\n'), '"say ""hi""\n"');
  assert.equal(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  assert.equal(csvField('-1.5', false), '-1.5', 'numbers are not touched');
  const csv = importanceCsv(importance).trimEnd().split('\r\n');
  assert.ok(csv[0]!.startsWith('# importance by ablation'));
  assert.equal(csv.length, 2 + 32);
  const first = csv[2]!.split(',');
  const top = rankImportance(importance)[0]!;
  assert.deepEqual(first.slice(0, 3), ['1', String(top.layer), String(top.head)]);
  assert.equal(Number(first[6]), top.delta);
  assert.equal(Number(first[7]), -top.delta, 'logprob harm = −Δ');
});

test('patchingCsv: largest restoration first, exact values, null effects empty, the clean label inert', () => {
  const heads = [
    { layer: 0, head: 0, value: -5.5, effect: 0.1 },
    { layer: 0, head: 1, value: -0.2, effect: 0.97 },
    { layer: 1, head: 0, value: -6, effect: null },
  ];
  const v = { targetId: 7, targetText: ' table', clean: -0.048, corrupt: -5.8393, heads, cleanLabel: 'a,b\n=cmd.prompt', tokens: 16, runId: 3, steered: false };
  const csv = patchingCsv(v as never).trimEnd().split('\r\n');
  assert.ok(csv[0]!.startsWith('# activation patching') && !csv[0]!.includes('\n'));
  assert.equal(csv[1], 'rank,layer,head,label,value,effect');
  assert.equal(csv.length, 2 + 3);
  assert.deepEqual(csv[2]!.split(','), ['1', '0', '1', 'L0H1', '-0.2', '0.97']);
  assert.deepEqual(csv[3]!.split(','), ['2', '0', '0', 'L0H0', '-5.5', '0.1']);
  assert.equal(csv[4]!.split(',')[5], '', 'a null effect is an empty field, never a number');
});

test('TSV: the grid of a metric and one head row, exact', () => {
  const t = gridTsv(model, run.heads, 'induction', null).trimEnd().split('\n');
  assert.equal(t.length, 5);
  assert.deepEqual(t[0]!.split('\t'), ['induction', ...Array.from({ length: 8 }, (_, h) => `H${h}`)]);
  for (const h of run.heads) {
    const cell = t[1 + h.layer]!.split('\t')[1 + h.head]!;
    assert.equal(cell === '' ? null : Number(cell), h.induction);
  }
  const row = headMetricsTsv({ layer: 2, head: 5 }, run.heads, run.tokens.length, importance).trimEnd().split('\n');
  const hdr = row[0]!.split('\t');
  const vals = row[1]!.split('\t');
  const h = run.heads[2 * 8 + 5]!;
  assert.equal(vals[0], 'L2H5');
  for (const m of METRICS) assert.equal(vals[hdr.indexOf(m)] === '' ? null : Number(vals[hdr.indexOf(m)]), h[m]);
  assert.equal(hdr.at(-1), 'importance_logprob_delta');
  assert.throws(() => headMetricsTsv({ layer: 9, head: 0 }, run.heads, 30, null), /L9H0 is not in the run/);
});

test('reportHtml: one self-contained file, CSP with the style hash, prompt escaped and tinted', () => {
  const prompt = `${EVIL}\n    indented line`;
  const tokens: TokenView[] = [{ text: '<s>', start: 0, end: 0, special: true, id: 1 }];
  const re = / ?\S+|\n|\s+/g;
  for (let m = re.exec(prompt); m; m = re.exec(prompt)) tokens.push({ text: m[0], start: m.index, end: m.index + m[0].length, special: false, id: tokens.length });
  const values = Float32Array.from(tokens.map((_, i) => (i % 3) / 3));
  const hash = (css: string) => `sha256-${crypto.createHash('sha256').update(css, 'utf8').digest('base64')}`;
  const gridSvg = sceneToSvg(gridFigure({ model, prompt, heads: run.heads, tokens: 30, metric: 'sink', importance: null, interventions: [], selected: null, palette: PAPER }), { xmlDeclaration: false });
  const html = reportHtml(
    {
      model: { ...model, device: 'cpu', kvHeads: 4 },
      prompt,
      tokens,
      heads: run.heads,
      next: [{ id: 5, text: '</table><script>', prob: 0.5 }],
      timings: { runMs: 12.3, loadMs: 1 },
      truncated: 0,
      overlay: { token: 2, direction: 'from', values, aggregation: 'mean', scale: 'linear', discountSink: false, enabled: 31 },
      selected: { layer: 2, head: 5 },
      interventions: ['mask L1H2 <b>'],
      importance,
      gridSvg,
      patternSvg: null,
      generatedAt: '2026-01-01T00:00:00Z',
      version: '0.1.0',
    },
    hash,
  );
  assert.equal((html.match(/<script/gi) ?? []).length, 0, 'no script at all: the prompt and tokens are inert');
  assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;'));
  assert.ok(html.includes('&lt;/table&gt;&lt;script&gt;'));
  assert.ok(html.includes('mask L1H2 &lt;b&gt;'));
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!.replace(/&#39;/g, "'");
  assert.ok(csp.startsWith("default-src 'none'"));
  assert.ok(csp.includes(`'${hash(REPORT_CSS)}'`), 'the one style block is allowed by its hash');
  const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
  assert.equal(style, REPORT_CSS);
  assert.equal((html.match(/<style/g) ?? []).length, 1);
  assert.ok(!/ style="/.test(html), 'no style attributes (a hash CSP blocks them)');
  assert.ok(!/(src|href)=/i.test(html), 'nothing loaded from anywhere');
  assert.ok(!/https?:\/\/(?!www\.w3\.org\/2000\/svg")/.test(html), 'no URL but the SVG namespace');
  assert.equal((html.match(/<svg /g) ?? []).length, 1);
  assert.ok(html.includes('Attention FROM token 2'), 'the legend');
  // tint classes as quantize gives them, the cursor outlined
  const levels = quantize(values, tokens, 'linear', false);
  for (let i = 1; i < tokens.length; i++) {
    const span = paintSpan(prompt, tokens[i]!);
    if (i !== 2 && span && levels[i]! > 0) assert.ok(html.includes(`class="t l${levels[i]}" title="token ${i} `), `token ${i} at level ${levels[i]}`);
  }
  assert.ok(/class="t( l\d)? cur"/.test(html));
  assert.ok(!/class="t l\d" title="token \d+ &quot;\\n {4}/.test(html), 'indentation is not painted');
  for (let l = 1; l <= OVERLAY_LEVELS; l++) assert.ok(REPORT_CSS.includes(`.prompt .l${l}{`));
});

test('promptHtml: gaps kept, special tokens marked, leading whitespace outside the tint', () => {
  const prompt = 'a  b';
  const tokens: TokenView[] = [
    { text: '<s>', start: 0, end: 0, special: true, id: 0 },
    { text: 'a', start: 0, end: 1, special: false, id: 1 },
    { text: '  b', start: 1, end: 4, special: false, id: 2 },
  ];
  const html = promptHtml(prompt, tokens, Uint8Array.from([0, 3, 5]), 1);
  assert.equal(html, '<span class="sp" title="special token 0">&lt;s&gt;</span><span class="t l3 cur" title="token 1 &quot;a&quot; · level 3">a</span>  <span class="t l5" title="token 2 &quot;  b&quot; · level 5">b</span>');
});

test('paintSpan, tokenAtOffset at a token\'s first character, overlayLegend', () => {
  const prompt = 'def f():\n    return  1';
  assert.deepEqual(paintSpan(prompt, { start: 8, end: 13 }), null, 'newline + indentation: no block');
  assert.deepEqual(paintSpan(prompt, { start: 8, end: 19 }), [13, 19]);
  assert.deepEqual(paintSpan(prompt, { start: 0, end: 3 }), [0, 3]);
  const toks: TokenView[] = [
    { text: 'def', start: 0, end: 3, special: false, id: 1 },
    { text: ' f', start: 3, end: 5, special: false, id: 2 },
    { text: '():', start: 5, end: 8, special: false, id: 3 },
  ];
  for (const t of toks) assert.equal(tokenAtOffset(toks, t.start), toks.indexOf(t), 'the caret before a token\'s first character selects it');
  assert.equal(tokenAtOffset(toks, 4), 1);
  const lg = overlayLegend({ direction: 'to', aggregation: 'head', selected: { layer: 1, head: 0 }, enabled: 31, total: 32, token: { index: 4, text: 'x' }, scale: 'sqrt', discountSink: true, max: 0.4567 });
  assert.match(lg[0]!, /^Attention TO token 4 "x"/);
  assert.equal(lg[1], 'Heads: head L1H0 only');
  assert.match(lg[2]!, /8 tint levels, sqrt scale: darkest = 0\.457 \(first and special tokens left out/);
  const mean = overlayLegend({ direction: 'from', aggregation: 'layer', selected: null, enabled: 30, total: 32, token: null, scale: 'linear', discountSink: false, max: 0 });
  assert.match(mean[1]!, /mean over 30 enabled of 32 heads \(no head selected for "layer"\)/);
});

test('scene validation: colors only #rrggbb, bounded; PNG header check', () => {
  const ok: Scene = { width: 10, height: 10, background: '#ffffff', fontFamily: 'x', title: 't', desc: 'd', shapes: [{ kind: 'rect', x: 0, y: 0, w: 1, h: 1, fill: 'none', stroke: '#000000' }, { kind: 'text', x: 1, y: 1, text: '<b>', size: 9, fill: '#000000', rotate: -90 }] };
  assert.deepEqual(checkScene(JSON.parse(JSON.stringify(ok)), 'scene'), ok);
  const bad = (patch: object, re: RegExp) => assert.throws(() => checkScene({ ...ok, ...patch }, 'scene'), re);
  bad({ background: 'red' }, /scene\.background: expected a color/);
  bad({ shapes: [{ kind: 'rect', x: 0, y: 0, w: 1, h: 1, fill: 'url(https://x)' }] }, /scene\.shapes\[0\]\.fill/);
  bad({ shapes: [{ kind: 'image', x: 0 }] }, /scene\.shapes\[0\]\.kind/);
  bad({ width: 1e9 }, /scene\.width/);
  const png = new Uint8Array(33);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 1, 0, 0, 0, 0, 200]);
  assert.deepEqual(pngInfo(png.buffer, 'png', { width: 256, height: 200 }), { width: 256, height: 200 });
  assert.throws(() => pngInfo(png.buffer, 'png', { width: 255, height: 200 }), /expected a 255×200 PNG, got 256×200/);
  assert.throws(() => pngInfo(new Uint8Array(40).buffer, 'png'), /not a PNG/);
  assert.throws(() => pngInfo('x', 'png'), /expected PNG bytes/);
});

test('drawScene: every shape drawn once, at the scale', () => {
  const s = gridFigure({ model, prompt: 'p', heads: run.heads, tokens: 30, metric: 'sink', importance: null, interventions: [], selected: { layer: 0, head: 0 }, palette: PAPER });
  const calls: Record<string, number> = {};
  const scaled: number[] = [];
  const ctx = new Proxy({} as Record<string, unknown>, {
    get: (_t, k: string) => (k in calls || typeof k === 'string' ? (...a: number[]) => { calls[k] = (calls[k] ?? 0) + 1; if (k === 'scale') scaled.push(...a); } : undefined),
    set: () => true,
  });
  drawScene(ctx as never, s, 2);
  const fills = rects(s).filter((r) => r.fill !== 'none').length;
  assert.equal(calls.fillRect, fills + 1, 'the background and every filled rect');
  assert.equal(calls.strokeRect, rects(s).filter((r) => r.stroke).length);
  assert.equal(calls.fillText, texts(s).length);
  assert.deepEqual(scaled, [2, 2]);
  assert.deepEqual(rasterSize(s, 2), { width: Math.round(s.width * 2), height: Math.round(s.height * 2) });
});

test('parseExportArg: menus, tree nodes, webview context, caller options', () => {
  assert.deepEqual(parseExportArg(undefined), {});
  assert.deepEqual(parseExportArg({ kind: 'head', layer: 1, head: 2 }), { head: { layer: 1, head: 2 } });
  assert.deepEqual(parseExportArg({ webview: 'attnscope.panel', webviewSection: 'headGrid', head: '3.4' }), { section: 'headGrid', head: { layer: 3, head: 4 } });
  assert.deepEqual(parseExportArg({ target: '/tmp/x.svg', format: 'svg', palette: 'theme', metric: 'importance' }), { target: '/tmp/x.svg', format: 'svg', palette: 'theme', metric: 'importance' });
  assert.throws(() => parseExportArg({ format: 'gif' }), /format "gif" is not png or svg/);
  assert.throws(() => parseExportArg({ head: 'L1' }), /is not a head/);
  assert.throws(() => parseExportArg({ metric: 'x' }), /metric "x"/);
  assert.equal(formatOfPath('/a/b.SVG'), 'svg');
  assert.equal(formatOfPath('/a/b.pdf'), undefined);
  assert.equal(fileStem('/w/my notes.prompt'), 'my_notes');
  assert.equal(fileStem(undefined), 'attnscope');
});
