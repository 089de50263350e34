// Entry of the compare webview: two runs side by side (A | B) with synchronized token overlays and
// head selection, the per-position KL strip with the top-K changes of the selected position, the
// most different positions, the head-metric delta grid, and what cannot be compared. In `single`
// mode (the .attnrun editor) it shows one saved run. Protocol: src/extension/runs/runsProtocol.ts.
import './compare.css';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { METRICS, type HeadRef, type MetricName, type TokenView } from '../../src/shared/protocol';
import { RUNS_PROTOCOL_VERSION, type CompareInit, type CompareView, type FromCompare, type RunSideView, type ToCompare } from '../../src/extension/runs/runsProtocol';
import { METRIC_INFO } from '../logic/gridLogic';
import { truncateLabel, visibleToken } from '../logic/tokenText';
import { Messenger } from '../messenger';
import { divergingFraction, divergingMax, floats, formatNats, formatPct, positionIndex, validateToCompare } from './compareLogic';

interface UiState {
  metric: MetricName;
  position: number | null;
  head: HeadRef | null;
}

const vscode = acquireVsCodeApi();
const saved = (vscode.getState() ?? {}) as Partial<UiState>;
const ui: UiState = {
  metric: METRICS.includes(saved.metric as MetricName) ? (saved.metric as MetricName) : 'entropy',
  position: Number.isInteger(saved.position) ? (saved.position as number) : null,
  head: saved.head && Number.isInteger(saved.head.layer) && Number.isInteger(saved.head.head) ? saved.head : null,
};
let init: CompareInit | null = null;
let hoverPos: number | null = null;
let transientError: string | null = null;

const messenger = new Messenger<ToCompare, FromCompare>((env) => vscode.postMessage(env), { errorOf: (b) => (b.type === 'error' ? b.message : undefined) });
const app = document.getElementById('app')!;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function persist(): void {
  vscode.setState(ui);
  messenger.sendEvent({ type: 'selected', position: ui.position, head: ui.head, metric: ui.metric });
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
    const n = init.view?.positions.length ?? 0;
    if (ui.position !== null && ui.position >= n) ui.position = null;
    if (ui.position === null && init.view && init.view.mostDifferent.length) ui.position = init.view.mostDifferent[0]!;
    const v2 = init.view;
    if (ui.head && v2 && (ui.head.layer >= v2.a.layers || ui.head.head >= v2.a.heads)) ui.head = null;
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
    app.append(b, el('p', 'muted', 'The file was left untouched.'));
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
  const meta = el('div', 'muted small', `${side.model} · ${side.tokens.length} tokens · ${side.device} · ${side.runMs.toFixed(0)} ms · ${new Date(side.createdAt).toLocaleString()}`);
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

function tokenFlow(side: RunSideView, klOf: ((token: number) => number | undefined) | null, which: 'a' | 'b', posOf?: Map<number, number>, klMax = 1): HTMLElement {
  const flow = el('div', 'flow');
  flow.dataset.side = which;
  const unaligned = new Set(side.unaligned);
  side.tokens.forEach((t: TokenView, i) => {
    const span = el('span', 'tok');
    span.textContent = t.text.replace(/\n/g, '↵\n') || '∅';
    span.dataset.index = String(i);
    const pos = posOf?.get(i);
    if (unaligned.has(i)) {
      span.classList.add('unaligned');
      span.title = `${which.toUpperCase()} token ${i} “${visibleToken(t.text)}” has no partner in the other run`;
    } else if (klOf) {
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
      span.addEventListener('click', () => selectPosition(pos === ui.position ? null : pos));
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

  const cols = el('div', 'columns');
  for (const [side, which, pmap] of [[a, 'a', posA], [b, 'b', posB]] as const) {
    const col = el('div', 'col');
    col.append(runInfo({ ...side, label: `${which.toUpperCase()} · ${side.label}` }));
    col.append(tokenFlow(side, (i) => { const p = pmap.get(i); return p === undefined ? undefined : kl[p]; }, which, pmap, klMax));
    cols.append(col);
  }
  app.append(cols);

  const legend = el('div', 'legend muted small');
  const sw1 = el('span', 'swatch tinted-swatch');
  const sw2 = el('span', 'swatch unaligned-swatch');
  legend.append(sw1, el('span', '', 'KL of the next-token prediction (darker = the runs disagree more)'), sw2, el('span', '', 'token only in one run (not aligned)'));
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
  bar.append(el('label', 'muted', 'Metric'), sel, el('span', 'muted small', METRIC_INFO[ui.metric].help));
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
  } else info.append(el('span', 'muted small', mode === 'compare' ? 'Click a head to see its metrics in A and B. Blue: lower in B; red: higher in B.' : 'Click a head for all its metrics.'));
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
