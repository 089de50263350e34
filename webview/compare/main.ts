// Entry of the compare webview: two runs side by side (A | B) with synchronized token overlays and
// head selection (tinted by KL, or by the attention FROM the selected aligned position of the head
// selected in the delta grid, or the mean of all heads, in A and B at once), the per-position KL strip with the top-K changes of the selected position, the
// most different positions, the head-metric delta grid, and what cannot be compared. In `single`
// mode (the .attnrun editor) it shows one saved run. Protocol: src/shared/runsProtocol.ts.
import './compare.css';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { METRICS, type HeadRef, type MetricName, type TokenView } from '../../src/shared/protocol';
import { RUNS_PROTOCOL_VERSION, type CompareInit, type CompareSource, type CompareView, type FromCompare, type OverlayMode, type RunSideView, type ToCompare } from '../../src/shared/runsProtocol';
import { METRIC_INFO } from '../logic/gridLogic';
import { truncateLabel, visibleToken } from '../logic/tokenText';
import { Messenger } from '../../src/shared/messenger';
import { formatProb } from '../logic/colorScale';
import { attentionTints, divergingFraction, divergingMax, floats, formatNats, formatPct, positionIndex, rowsKey, validateToCompare } from './compareLogic';

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

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

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
  if (transientError) {
    const b = el('div', 'banner error');
    b.setAttribute('role', 'alert');
    b.append(el('span', 'codicon codicon-error'), el('span', '', transientError));
    app.append(b);
  }
  if (!init.view) {
    const b = el('div', 'banner error damaged');
    b.setAttribute('role', 'alert');
    b.append(el('span', 'codicon codicon-error'), el('span', 'damaged-text', init.error ?? 'the run could not be read'));
    app.append(b);
    if (init.hint) app.append(el('p', 'muted', init.hint));
    return;
  }
  const view = init.view;
  if (view.mode === 'single') renderSingle(view);
  else renderCompare(view);
}

// ---------- one run (the .attnrun editor) ----------

function runInfo(side: RunSideView): HTMLElement {
  const box = el('div', 'runinfo');
  const title = el('div', 'runtitle');
  title.append(el('span', 'sidelabel', side.label));
  box.append(title);
  const meta = el('div', 'muted small meta');
  // pieces that wrap between, never inside ("1 ms" stays on one line)
  [side.model, `${side.tokens.length} tokens`, side.device, `${side.runMs.toFixed(0)} ms`, new Date(side.createdAt).toLocaleString()].forEach((t, i) => {
    if (i) meta.append(' · ');
    meta.append(el('span', 'nowrap', t));
  });
  box.append(meta);
  const iv = el('div', 'interventions');
  if (side.interventions.length === 0) iv.append(el('span', 'chip none', 'no interventions'));
  for (const line of side.interventions) iv.append(el('span', 'chip iv', line));
  box.append(iv);
  return box;
}

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
  sec.append(tokenFlow(a, null, 'a'));
  app.append(sec);
  const next = section('Next token (after the last token)');
  next.append(probList(a.next.map((n) => ({ text: n.text, prob: n.prob }))));
  app.append(next);
  app.append(headGridSection(view, 'single'));
}

function section(title: string, id?: string): HTMLElement {
  const s = el('section', 'section');
  if (id) s.id = id;
  s.append(el('h3', '', title));
  return s;
}

function probList(items: { text: string; prob: number; cls?: string }[]): HTMLElement {
  const ol = el('ol', 'problist');
  const max = Math.max(1e-9, ...items.map((i) => i.prob));
  for (const it of items) {
    const li = el('li', it.cls ?? '');
    const bar = el('span', 'probbar');
    bar.style.setProperty('--w', `${Math.round((it.prob / max) * 100)}%`);
    li.append(el('code', 'tok', truncateLabel(visibleToken(it.text), 24)), bar, el('span', 'num', formatPct(it.prob)));
    ol.append(li);
  }
  return ol;
}

// ---------- the token flows ----------

/** What tints a token view: KL per aligned token, or the attention row from one token (fractions + values). */
type FlowTint =
  | { kind: 'kl'; of: (token: number) => number | undefined; max: number }
  | { kind: 'attention'; from: number; fraction: Float32Array; row: Float32Array }
  | { kind: 'attention'; from: number | null; fraction: null; row: null }
  | null;

function tokenFlow(side: RunSideView, tint: FlowTint, which: 'a' | 'b', posOf?: Map<number, number>): HTMLElement {
  const flow = el('div', 'flow');
  flow.dataset.side = which;
  flow.dataset.overlay = tint?.kind ?? 'none';
  const unaligned = new Set(side.unaligned);
  side.tokens.forEach((t: TokenView, i) => {
    const span = el('span', 'tok');
    span.textContent = t.text.replace(/\n/g, '↵\n') || '∅';
    span.dataset.index = String(i);
    const pos = posOf?.get(i);
    if (tint?.kind === 'attention') {
      const name = `${which.toUpperCase()} token ${i} “${visibleToken(t.text)}”${unaligned.has(i) ? ' (no partner in the other run)' : ''}`;
      if (unaligned.has(i)) span.classList.add('unaligned');
      if (tint.row && tint.from !== null) {
        const f = tint.fraction[i]!;
        if (f > 0) {
          span.style.setProperty('--a', String(f));
          span.classList.add('attn');
        }
        const future = i > tint.from && tint.row[i] === 0; // a causal model attends to no later token
        if (future) span.classList.add('future');
        span.title = i === tint.from ? `${name}: the token whose attention is shown (to itself ${formatProb(tint.row[i]!)})` : future ? `${name}: after the selected token (not attended to)` : `${name} · attention ${formatProb(tint.row[i]!)}`;
      } else span.title = name;
    } else if (unaligned.has(i)) {
      span.classList.add('unaligned');
      span.title = `${which.toUpperCase()} token ${i} “${visibleToken(t.text)}” has no partner in the other run`;
    } else if (tint?.kind === 'kl') {
      const klOf = tint.of;
      const klMax = tint.max;
      const kl = klOf(i);
      if (kl !== undefined && Number.isFinite(kl)) {
        span.style.setProperty('--kl', String(Math.sqrt(Math.min(1, kl / klMax))));
        span.classList.add('tinted');
      }
      span.title = `token ${i} “${visibleToken(t.text)}”${kl !== undefined ? ` · KL ${formatNats(kl)} nats` : ''}`;
    }
    if (t.special) span.classList.add('special');
    if (pos !== undefined) {
      span.dataset.pos = String(pos);
      if (pos === ui.position) span.classList.add('selected');
      span.addEventListener('mouseenter', () => setHover(pos));
      span.addEventListener('mouseleave', () => setHover(null));
      // (with the attention overlay a click always selects: there is nothing to show without a token)
      span.addEventListener('click', () => selectPosition(pos === ui.position && tint?.kind !== 'attention' ? null : pos));
    }
    flow.append(span);
  });
  return flow;
}

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

// ---------- compare ----------

function overlayBar(view: CompareView, rowsNow: { a: Float32Array; b: Float32Array } | undefined): HTMLElement {
  const bar = el('div', 'toolbar overlaybar');
  bar.id = 'overlay-mode';
  bar.append(el('span', 'muted', 'Tint tokens by'));
  const group = el('div', 'segmented');
  group.setAttribute('role', 'radiogroup');
  group.setAttribute('aria-label', 'What tints the tokens of A and B');
  const on = attentionOn(view) ? 'attention' : 'kl';
  for (const [mode, label, help] of [
    ['kl', 'KL', 'the KL divergence of the next-token prediction at each aligned token'],
    ['attention', 'Attention', 'the attention FROM the selected token: of the head selected in the grid below, or the mean of all heads'],
  ] as const) {
    const btn = el('button', 'seg', label);
    btn.dataset.mode = mode;
    btn.setAttribute('role', 'radio');
    btn.setAttribute('aria-checked', String(on === mode));
    btn.tabIndex = on === mode ? 0 : -1;
    const disabled = mode === 'attention' && view.attention !== null;
    btn.disabled = disabled;
    btn.title = disabled ? `Attention overlay unavailable: ${view.attention}` : `Tint by ${help}`;
    btn.addEventListener('click', () => {
      if (ui.overlay === mode) return;
      ui.overlay = mode;
      persist();
      render();
      document.querySelector<HTMLElement>(`#overlay-mode .seg[data-mode="${mode}"]`)?.focus();
    });
    btn.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      e.preventDefault();
      const next = mode === 'kl' ? 'attention' : 'kl';
      if (next === 'attention' && view.attention !== null) return;
      ui.overlay = next;
      persist();
      render();
      document.querySelector<HTMLElement>(`#overlay-mode .seg[data-mode="${next}"]`)?.focus();
    });
    group.append(btn);
  }
  bar.append(group);
  const hint = el('span', 'overlay-hint small');
  hint.id = 'overlay-source';
  if (view.attention !== null) {
    hint.classList.add('muted');
    hint.append(el('span', 'codicon codicon-info'), el('span', '', ` Attention overlay unavailable: ${view.attention}.`));
  } else if (on === 'attention') {
    const p = ui.position === null ? undefined : view.positions[ui.position];
    const head = rowsHead(view);
    if (!p) hint.append(el('span', 'muted', 'Click a token (in A or B) to see where it attends in both runs.'));
    else {
      hint.append(el('span', 'muted', 'attention from '), el('code', 'tok', truncateLabel(visibleToken(p.text), 24)), el('span', 'muted', ` (A ${p.a} · B ${p.b}), `));
      hint.append(el('strong', '', head ? `head L${head.layer}H${head.head}` : `mean of all ${view.a.layers * view.a.heads} heads`));
      if (!head && view.deltas) hint.append(el('span', 'muted', ' · pick a head in the grid below for one head'));
      if (rowsError) hint.append(el('span', 'rows-error', ` · ${rowsError}`));
      else if (!rowsNow) hint.append(el('span', 'muted', ' · loading…'));
    }
  }
  bar.append(hint);
  return bar;
}

function renderCompare(view: CompareView): void {
  const a = view.a;
  const b = view.b!;
  const kl = floats(view.kl);
  const shift = floats(view.shift);
  const klMax = divergingMax(kl, 1e-6);
  const posA = positionIndex(view, 'a');
  const posB = positionIndex(view, 'b');

  const head = el('div', 'summary');
  const finite = [...kl].filter(Number.isFinite);
  const meanKl = finite.length ? finite.reduce((s, v) => s + v, 0) / finite.length : NaN;
  head.append(
    el('span', 'chip', `${view.aligned} aligned tokens`),
    el('span', view.a.unaligned.length + b.unaligned.length ? 'chip warn' : 'chip', `${a.unaligned.length} only in A · ${b.unaligned.length} only in B`),
    el('span', 'chip', `mean KL ${formatNats(meanKl)} · max ${formatNats(finite.length ? Math.max(...finite) : NaN)} nats`),
  );
  if (init?.canGenerate) {
    const g = el('vscode-button') as HTMLElement;
    g.textContent = 'Generate…';
    g.setAttribute('secondary', '');
    g.setAttribute('icon', 'sparkle');
    g.addEventListener('click', () => messenger.sendEvent({ type: 'generate' }));
    head.append(g);
  }
  app.append(head);

  if (view.notComparable.length) {
    const nc = el('div', 'banner warn notcomparable');
    nc.setAttribute('role', 'status');
    nc.append(el('span', 'codicon codicon-warning'));
    const txt = el('div');
    txt.append(el('strong', '', 'Not compared: '));
    const ul = el('ul');
    for (const r of view.notComparable) ul.append(el('li', '', r));
    txt.append(ul);
    nc.append(txt);
    app.append(nc);
  }

  const attn = attentionOn(view);
  const rowsNow = attn ? selectedRows(view) : undefined;
  app.append(overlayBar(view, rowsNow));
  const selPos = ui.position === null ? undefined : view.positions[ui.position];
  const tints = rowsNow ? attentionTints(rowsNow.a, rowsNow.b, a.tokens.map((t) => !!t.special), b.tokens.map((t) => !!t.special)) : undefined;
  const cols = el('div', 'columns');
  for (const [side, which, pmap] of [[a, 'a', posA], [b, 'b', posB]] as const) {
    const col = el('div', 'col');
    col.append(runInfo({ ...side, label: `${which.toUpperCase()} · ${side.label}` }));
    let tint: FlowTint;
    if (!attn) tint = { kind: 'kl', of: (i) => { const p = pmap.get(i); return p === undefined ? undefined : kl[p]; }, max: klMax };
    else if (rowsNow && tints && selPos) tint = { kind: 'attention', from: selPos[which], fraction: tints[which], row: rowsNow[which] };
    else tint = { kind: 'attention', from: selPos ? selPos[which] : null, fraction: null, row: null };
    col.append(tokenFlow(side, tint, which, pmap));
    cols.append(col);
  }
  app.append(cols);

  const legend = el('div', 'legend muted small');
  const item = (swatch: string, text: string, title?: string) => {
    const it = el('span', 'legend-item');
    it.append(el('span', `swatch ${swatch}`), el('span', '', text));
    if (title) it.title = title;
    return it;
  };
  if (attn) legend.append(item('attn-swatch', 'attention from the selected token (one scale for A and B)', 'The first token (an attention sink) does not set the top of the scale, so it does not wash out the rest; it saturates instead.'));
  else legend.append(item('tinted-swatch', 'KL of the next-token prediction (darker = the runs disagree more)'));
  if (a.unaligned.length + b.unaligned.length > 0) legend.append(item('unaligned-swatch', 'token only in one run (not aligned)'));
  app.append(legend);

  // KL strip
  const stripSec = section('Per-position KL(A‖B) of the next-token predictions', 'kl-strip');
  const strip = el('div', 'strip');
  strip.setAttribute('role', 'listbox');
  strip.setAttribute('aria-label', 'positions by KL divergence');
  const most = new Set(view.mostDifferent.slice(0, 5));
  view.positions.forEach((p, i) => {
    const bar = el('div', 'bar');
    bar.dataset.pos = String(i);
    const v = kl[i]!;
    bar.style.setProperty('--h', Number.isFinite(v) ? `${Math.max(2, Math.sqrt(v / klMax) * 100)}%` : '2%');
    if (!Number.isFinite(v)) bar.classList.add('nan');
    if (most.has(i)) bar.classList.add('most');
    if (i === ui.position) bar.classList.add('selected');
    bar.title = `“${visibleToken(p.text)}” (A ${p.a} · B ${p.b}): KL ${formatNats(v)} nats${Number.isFinite(shift[i]!) ? ` · attention shift ${formatNats(shift[i]!)}` : ''}`;
    bar.addEventListener('mouseenter', () => setHover(i));
    bar.addEventListener('mouseleave', () => setHover(null));
    bar.addEventListener('click', () => selectPosition(i === ui.position ? null : i));
    strip.append(bar);
  });
  stripSec.append(strip);
  app.append(stripSec);

  const lower = el('div', 'columns');
  // details of the selected position
  const det = section('Selected position', 'position-detail');
  if (ui.position === null || !view.positions[ui.position]) det.append(el('p', 'muted', 'Hover or click a token or a bar to see how the top predictions changed there.'));
  else {
    const i = ui.position;
    const p = view.positions[i]!;
    const hdr = el('div', 'posheader');
    hdr.append(el('code', 'tok big', visibleToken(p.text)), el('span', 'muted', `A token ${p.a} · B token ${p.b}`), el('span', 'chip', `KL ${formatNats(kl[i]!)} nats`));
    if (Number.isFinite(shift[i]!)) hdr.append(el('span', 'chip', `attention shift ${formatNats(shift[i]!)}`));
    det.append(hdr);
    const two = el('div', 'columns tight');
    const ca = el('div', 'col');
    const leftIds = new Set(p.left.map((x) => x.id));
    const enteredIds = new Set(p.entered.map((x) => x.id));
    ca.append(el('h4', '', 'Top next tokens in A'), probList(p.topA.map((t) => ({ text: t.text, prob: t.prob, cls: leftIds.has(t.id) ? 'left' : '' }))));
    const cb = el('div', 'col');
    cb.append(el('h4', '', 'Top next tokens in B'), probList(p.topB.map((t) => ({ text: t.text, prob: t.prob, cls: enteredIds.has(t.id) ? 'entered' : '' }))));
    two.append(ca, cb);
    det.append(two);
    const changes = el('div', 'changes');
    if (p.left.length === 0 && p.entered.length === 0) changes.append(el('span', 'muted', 'The same tokens are in both top lists.'));
    for (const x of p.left) changes.append(el('span', 'chip left', `− ${visibleToken(x.text)} ${formatPct(x.probA)} → ${formatPct(x.probB)}`));
    for (const x of p.entered) changes.append(el('span', 'chip entered', `+ ${visibleToken(x.text)} ${formatPct(x.probA)} → ${formatPct(x.probB)}`));
    det.append(changes);
  }
  const md = section('Most different positions', 'most-different');
  if (view.mostDifferent.length === 0) md.append(el('p', 'muted', 'No position could be compared.'));
  const ol = el('ol', 'mostlist');
  for (const i of view.mostDifferent) {
    const p = view.positions[i]!;
    const li = el('li', i === ui.position ? 'selected' : '');
    li.dataset.pos = String(i);
    const btn = el('button', 'linklike');
    btn.append(el('code', 'tok', truncateLabel(visibleToken(p.text), 20)), el('span', 'num', `${formatNats(kl[i]!)} nats`));
    btn.addEventListener('click', () => selectPosition(i));
    li.append(btn);
    ol.append(li);
  }
  md.append(ol);
  lower.append(det, md);
  app.append(lower);
  app.append(headGridSection(view, 'compare'));
}

// ---------- head grids ----------

function headGridSection(view: CompareView, mode: 'single' | 'compare'): HTMLElement {
  const sec = section(mode === 'compare' ? 'Head metric deltas (B − A)' : 'Head metrics', 'head-grid');
  const bar = el('div', 'toolbar');
  const sel = el('vscode-single-select') as HTMLElement & { value: string };
  sel.id = 'metric';
  for (const m of METRICS) {
    const o = el('vscode-option') as HTMLElement & { value: string };
    o.textContent = METRIC_INFO[m].label;
    o.setAttribute('value', m);
    if (m === ui.metric) o.setAttribute('selected', '');
    sel.append(o);
  }
  sel.addEventListener('change', () => {
    if (METRICS.includes(sel.value as MetricName)) {
      ui.metric = sel.value as MetricName;
      persist();
      render();
    }
  });
  bar.append(el('label', 'muted', 'Metric'), sel, el('span', 'muted small', METRIC_INFO[ui.metric].description));
  sec.append(bar);
  const L = view.a.layers;
  const H = view.a.heads;
  const mi = METRICS.indexOf(ui.metric);
  const A = floats(view.a.metrics).subarray(mi * L * H, (mi + 1) * L * H);
  const B = view.b ? floats(view.b.metrics).subarray(mi * L * H, (mi + 1) * L * H) : null;
  if (mode === 'compare' && !view.deltas) {
    sec.append(el('p', 'muted', 'The runs’ models differ in shape: head metrics cannot be compared.'));
    return sec;
  }
  const values = mode === 'compare' ? floats(view.deltas).subarray(mi * L * H, (mi + 1) * L * H) : A;
  const max = divergingMax(values);
  const grid = el('div', 'hgrid');
  grid.style.setProperty('--cols', String(H));
  grid.append(el('span', 'corner'));
  for (let h = 0; h < H; h++) grid.append(el('span', 'axis', `H${h}`));
  for (let l = 0; l < L; l++) {
    grid.append(el('span', 'axis', `L${l}`));
    for (let h = 0; h < H; h++) {
      const v = values[l * H + h]!;
      const cell = el('button', 'cell');
      cell.dataset.head = `${l}.${h}`;
      if (!Number.isFinite(v)) cell.classList.add('nan');
      else {
        const f = mode === 'compare' ? divergingFraction(v, max) : Math.sqrt(Math.min(1, Math.abs(v) / max));
        cell.classList.add(f < 0 ? 'neg' : 'pos');
        cell.style.setProperty('--f', String(Math.abs(f)));
      }
      if (ui.head && ui.head.layer === l && ui.head.head === h) cell.classList.add('selected');
      const a = A[l * H + h]!;
      const b = B ? B[l * H + h]! : NaN;
      const label = mode === 'compare' ? `L${l}H${h} ${METRIC_INFO[ui.metric].label}: A ${fmt(a)} → B ${fmt(b)} (Δ ${fmt(v, true)})` : `L${l}H${h} ${METRIC_INFO[ui.metric].label}: ${fmt(a)}`;
      cell.title = label;
      cell.setAttribute('aria-label', label);
      cell.addEventListener('click', () => {
        ui.head = ui.head && ui.head.layer === l && ui.head.head === h ? null : { layer: l, head: h };
        persist();
        render();
      });
      grid.append(cell);
    }
  }
  sec.append(grid);
  const info = el('div', 'headinfo');
  info.id = 'head-detail';
  if (ui.head) {
    const { layer: l, head: h } = ui.head;
    const i = l * H + h;
    if (mode === 'compare') {
      info.append(el('strong', '', `L${l}H${h}`), el('span', 'chip', `A ${fmt(A[i]!)}`), el('span', 'chip', `B ${fmt(B![i]!)}`), el('span', 'chip', `Δ ${fmt(values[i]!, true)}`));
      const all = el('div', 'muted small');
      all.textContent = METRICS.map((m, k) => {
        const d = floats(view.deltas).subarray(k * L * H, (k + 1) * L * H)[i]!;
        return `${METRIC_INFO[m].short} Δ ${fmt(d, true)}`;
      }).join(' · ');
      info.append(all);
    } else info.append(el('strong', '', `L${l}H${h}`), el('span', 'muted', METRICS.map((m, k) => `${METRIC_INFO[m].short} ${fmt(floats(view.a.metrics)[(k * L + l) * H + h]!)}`).join(' · ')));
  } else info.append(el('span', 'muted small', mode === 'compare' ? `Click a head to see its metrics in A and B${attentionOn(view) ? ' and its attention in the token views' : ''}. Blue: lower in B; red: higher in B.` : 'Click a head for all its metrics.'));
  sec.append(info);
  return sec;
}

function fmt(v: number, signed = false): string {
  if (!Number.isFinite(v)) return '—';
  const s = Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1);
  return signed && v > 0 ? `+${s}` : s;
}

render();
messenger.sendEvent({ type: 'ready', version: RUNS_PROTOCOL_VERSION });
