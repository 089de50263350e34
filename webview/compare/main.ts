// Entry of the compare webview: wiring only (messenger, UI state, the attention-row cache, layout).
// Two runs side by side (A | B) with synchronized token views (tinted by KL, or by the attention
// FROM the selected aligned position of the head selected in the delta grid, or the mean of all
// heads, in A and B at once), the per-position KL strip, the top-K changes of the selected
// position, the most different positions, the head-metric delta grid, and what cannot be compared.
// In `single` mode (the .attnrun editor) it shows one saved run. The pieces are components in
// ./components/ (the token views over the shared PromptOverlay); their DOM-free parts are
// flowTints.ts, headCells.ts, stripBars.ts and compareLogic.ts. Protocol: src/shared/runsProtocol.ts.
import './compare.css';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { METRICS, type HeadRef, type MetricName } from '../../src/shared/protocol';
import { RUNS_PROTOCOL_VERSION, type CompareInit, type CompareSource, type CompareView, type FromCompare, type OverlayMode, type ToCompare } from '../../src/shared/runsProtocol';
import { Messenger } from '../../src/shared/messenger';
import { banner } from '../components/banner';
import { el } from '../components/el';
import { attentionTints, divergingMax, floats, positionIndex, rowsKey, validateToCompare } from './compareLogic';
import type { FlowTint } from './flowTints';
import { compareSummary, notComparableBanner } from './components/compareSummary';
import { headMetricGrid } from './components/headMetricGrid';
import { klStrip } from './components/klStrip';
import { mostDifferent } from './components/mostDifferent';
import { overlayBar } from './components/overlayBar';
import { positionDetail } from './components/positionDetail';
import { watchedTable } from './components/watchedTable';
import { probList } from './components/probList';
import { runInfo } from './components/runInfo';
import { section } from './components/section';
import { flowLegend, tokenFlow } from './components/tokenFlow';

interface UiState {
  metric: MetricName;
  position: number | null;
  head: HeadRef | null;
  overlay: OverlayMode;
}

const OVERLAYS: readonly OverlayMode[] = ['kl', 'attention'];
const vscode = acquireVsCodeApi();
const saved = (vscode.getState() ?? {}) as Partial<UiState> & { source?: CompareSource };
const ui: UiState = {
  metric: METRICS.includes(saved.metric as MetricName) ? (saved.metric as MetricName) : 'entropy',
  position: Number.isInteger(saved.position) ? (saved.position as number) : null,
  head: saved.head && Number.isInteger(saved.head.layer) && Number.isInteger(saved.head.head) ? saved.head : null,
  overlay: OVERLAYS.includes(saved.overlay as OverlayMode) ? (saved.overlay as OverlayMode) : 'kl',
};
/** the two run files shown (kept in the webview state: the host restores the panel from them after a reload) */
let source: CompareSource | undefined = saved.source;
let init: CompareInit | null = null;
let hoverPos: number | null = null;
let transientError: string | null = null;

// attention rows of the selected position (per position and head), fetched from the host on demand
const rows = new Map<string, { a: Float32Array; b: Float32Array }>();
const pendingRows = new Set<string>();
let rowsError: string | null = null;
/** bumped by every init: replies for an older comparison are dropped */
let generation = 0;

const messenger = new Messenger<ToCompare, FromCompare>((env) => vscode.postMessage(env), { errorOf: (b) => (b.type === 'error' ? b.message : undefined) });
const app = document.getElementById('app')!;

function saveState(): void {
  vscode.setState({ ...ui, source });
}

function persist(): void {
  saveState();
  messenger.sendEvent({ type: 'selected', position: ui.position, head: ui.head, metric: ui.metric, overlay: ui.overlay });
}

/** Whether the token views show attention (chosen, and both runs saved their patterns). */
function attentionOn(view: CompareView): boolean {
  return view.mode === 'compare' && ui.overlay === 'attention' && view.attention === null;
}

/** The head whose attention is shown: the grid's selection (only when the models match), else the mean. */
function rowsHead(view: CompareView): HeadRef | null {
  return view.deltas ? ui.head : null;
}

/** The attention rows of the selected position, or undefined while they are being fetched. */
function selectedRows(view: CompareView): { a: Float32Array; b: Float32Array } | undefined {
  if (ui.position === null || !view.positions[ui.position]) return undefined;
  const position = ui.position;
  const head = rowsHead(view);
  const key = rowsKey(position, head);
  const got = rows.get(key);
  if (got || pendingRows.has(key)) return got;
  pendingRows.add(key);
  const gen = generation;
  messenger
    .sendRequest({ type: 'attentionRows', position, head })
    .then((body) => {
      if (gen !== generation || body.type !== 'attentionRows') return;
      rows.set(key, { a: floats(body.a), b: floats(body.b) });
      rowsError = null;
    })
    .catch((e: Error) => {
      if (gen === generation) rowsError = e.message;
    })
    .finally(() => {
      pendingRows.delete(key);
      if (gen === generation && init?.view && attentionOn(init.view) && ui.position !== null && rowsKey(ui.position, rowsHead(init.view)) === key) render();
    });
  return undefined;
}

window.addEventListener('message', (ev: MessageEvent) => {
  const v = validateToCompare(ev.data);
  if (!v.ok) {
    transientError = `ignored a malformed message (${v.error})`;
    render();
    return;
  }
  if (messenger.receive(v.value)) return;
  const body = v.value.body;
  if (body.type === 'init') {
    init = body.init;
    transientError = null;
    generation++;
    rows.clear();
    rowsError = null;
    const sv = init.view;
    if (sv && sv.mode === 'compare' && sv.b && sv.a.file && sv.b.file) source = { files: [sv.a.file, sv.b.file], labels: [sv.a.label, sv.b.label] };
    const n = init.view?.positions.length ?? 0;
    if (ui.position !== null && ui.position >= n) ui.position = null;
    if (ui.position === null && init.view && init.view.mostDifferent.length) ui.position = init.view.mostDifferent[0]!;
    const v2 = init.view;
    if (ui.head && v2 && (ui.head.layer >= v2.a.layers || ui.head.head >= v2.a.heads)) ui.head = null;
    saveState();
    render();
  } else if (body.type === 'watch') {
    const v = init?.view;
    if (!v || v.mode !== 'compare') return;
    // values for another comparison (a different number of positions) are dropped
    if (body.watch && body.watch.a.source.dims[0] !== v.positions.length) return;
    init = { ...init!, view: { ...v, watch: body.watch } };
    render();
  } else if (body.type === 'error') {
    transientError = body.message;
    render();
  }
});

function render(): void {
  app.replaceChildren();
  if (!init) {
    app.append(el('p', 'muted', 'Loading…'));
    return;
  }
  if (transientError) app.append(banner({ kind: 'error', content: transientError }));
  if (!init.view) {
    app.append(banner({ kind: 'error', cls: 'damaged', textCls: 'damaged-text', content: init.error ?? 'the run could not be read' }));
    if (init.hint) app.append(el('p', 'muted', init.hint));
    return;
  }
  const view = init.view;
  if (view.mode === 'single') renderSingle(view);
  else renderCompare(view);
}

// ---------- wiring of the components ----------

function setHover(pos: number | null): void {
  hoverPos = pos;
  for (const e of document.querySelectorAll<HTMLElement>('[data-pos]')) e.classList.toggle('hover', pos !== null && e.dataset.pos === String(pos));
}

function selectPosition(pos: number | null): void {
  ui.position = pos;
  persist();
  render();
  if (hoverPos !== null) setHover(hoverPos);
}

function setOverlay(mode: OverlayMode): void {
  if (ui.overlay !== mode) {
    ui.overlay = mode;
    persist();
    render();
  }
  document.querySelector<HTMLElement>(`#overlay-mode .seg[data-mode="${mode}"]`)?.focus();
}

function headGrid(view: CompareView, mode: 'single' | 'compare'): HTMLElement {
  return headMetricGrid(
    {
      mode,
      layers: view.a.layers,
      heads: view.a.heads,
      metric: ui.metric,
      selected: ui.head,
      a: floats(view.a.metrics),
      b: view.b ? floats(view.b.metrics) : null,
      deltas: view.deltas ? floats(view.deltas) : null,
      attentionHint: attentionOn(view),
    },
    {
      onMetric: (m) => {
        ui.metric = m;
        persist();
        render();
      },
      onHead: (h) => {
        ui.head = h;
        persist();
        render();
      },
    },
  );
}

// ---------- one run (the .attnrun editor) ----------

function renderSingle(view: CompareView): void {
  const a = view.a;
  const top = el('div', 'toolbar');
  const btn = el('vscode-button') as HTMLElement;
  btn.textContent = 'Compare with…';
  btn.setAttribute('icon', 'diff');
  btn.id = 'compare-with';
  btn.addEventListener('click', () => messenger.sendEvent({ type: 'compareWith' }));
  top.append(btn);
  app.append(runInfo(a), top);
  const sec = section('Prompt', 'tokens-single');
  sec.append(tokenFlow({ prompt: a.prompt, tokens: a.tokens, unaligned: a.unaligned, which: 'a', tint: null, posOf: null, selected: ui.position }, { onHover: () => {}, onPick: () => {} }));
  app.append(sec);
  const next = section('Next token (after the last token)');
  next.append(probList(a.next.map((n) => ({ text: n.text, prob: n.prob }))));
  app.append(next);
  app.append(headGrid(view, 'single'));
}

// ---------- two runs ----------

function renderCompare(view: CompareView): void {
  const a = view.a;
  const b = view.b!;
  const kl = floats(view.kl);
  const shift = floats(view.shift);
  const klMax = divergingMax(kl, 1e-6);
  const posA = positionIndex(view, 'a');
  const posB = positionIndex(view, 'b');

  app.append(compareSummary({ aligned: view.aligned, onlyA: a.unaligned.length, onlyB: b.unaligned.length, kl, canGenerate: !!init?.canGenerate }, () => messenger.sendEvent({ type: 'generate' })));
  if (view.notComparable.length) app.append(notComparableBanner(view.notComparable));

  const attn = attentionOn(view);
  const rowsNow = attn ? selectedRows(view) : undefined;
  const selPos = ui.position === null ? undefined : view.positions[ui.position];
  app.append(
    overlayBar(
      {
        on: attn ? 'attention' : 'kl',
        unavailable: view.attention,
        from: selPos ?? null,
        head: rowsHead(view),
        heads: a.layers * a.heads,
        canPickHead: view.deltas !== null,
        rows: rowsError ? { error: rowsError } : rowsNow ? 'loaded' : 'loading',
      },
      setOverlay,
    ),
  );
  const tints = rowsNow ? attentionTints(rowsNow.a, rowsNow.b, a.tokens.map((t) => !!t.special), b.tokens.map((t) => !!t.special)) : undefined;
  const cols = el('div', 'columns');
  for (const [side, which, pmap] of [[a, 'a', posA], [b, 'b', posB]] as const) {
    const col = el('div', 'col');
    col.append(runInfo({ ...side, label: `${which.toUpperCase()} · ${side.label}` }));
    let tint: FlowTint;
    if (!attn) tint = { kind: 'kl', of: (i) => { const p = pmap.get(i); return p === undefined ? undefined : kl[p]; }, max: klMax };
    else if (rowsNow && tints && selPos) tint = { kind: 'attention', from: selPos[which], fraction: tints[which], row: rowsNow[which] };
    else tint = { kind: 'attention', from: selPos ? selPos[which] : null, fraction: null, row: null };
    col.append(
      tokenFlow(
        { prompt: side.prompt, tokens: side.tokens, unaligned: side.unaligned, which, tint, posOf: pmap, selected: ui.position },
        // (with the attention overlay a click always selects: there is nothing to show without a token)
        { onHover: setHover, onPick: (pos) => selectPosition(pos === ui.position && !attn ? null : pos) },
      ),
    );
    cols.append(col);
  }
  app.append(cols);
  app.append(flowLegend({ attention: attn, unaligned: a.unaligned.length + b.unaligned.length > 0 }));

  app.append(klStrip({ positions: view.positions, kl, shift, klMax, mostDifferent: view.mostDifferent, selected: ui.position }, { onHover: setHover, onPick: (i) => selectPosition(i === ui.position ? null : i) }));

  const lower = el('div', 'columns');
  const i = ui.position;
  const p = i === null ? undefined : view.positions[i];
  const left = el('div', 'col');
  left.append(positionDetail({ position: p ?? null, kl: i === null ? NaN : kl[i]!, shift: i === null ? NaN : shift[i]! }), watchedTable({ watch: view.watch, position: p ? i : null, labels: [a.label, b.label] }));
  lower.append(
    left,
    mostDifferent({ positions: view.positions, kl, mostDifferent: view.mostDifferent, selected: ui.position }, selectPosition),
  );
  app.append(lower);
  app.append(headGrid(view, 'compare'));
}

render();
messenger.sendEvent({ type: 'ready', version: RUNS_PROTOCOL_VERSION });
