// Entry of the panel webview: wires the view components to the host through the envelope
// protocol (src/shared/protocol.ts). Posts `ready`, renders `init`/`state`, applies `overlay`
// rows, asks for the selected head's `pattern` (or, past PATTERN_EXACT_MAX_T tokens, the
// `patternTile`s the heatmap needs), keeps UI state with vscode.setState.
import './styles.css';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { AGGREGATIONS, PATTERN_EXACT_MAX_T, PROTOCOL_VERSION, headKey, headLabel, type Aggregation, type FromWebview, type GridMetric, type HeadRef, type PanelState, type RunView, type ToWebview, type ViewSettings } from '../src/shared/protocol';
import { parseHeadKey } from '../src/shared/heads';
import { HeadGrid } from './components/headGrid';
import { Heatmap } from './components/heatmap';
import { LensTable } from './components/lensTable';
import { WatchedTokens } from './components/watchedTokens';
import { NextTokens } from './components/nextTokens';
import { PromptOverlay } from './components/promptOverlay';
import { Steering } from './components/steering';
import { hideTooltip } from './components/tooltip';
import { buildLayout, type SectionId } from './layout';
import { isScaleKind } from './logic/colorScale';
import { sanitizeUiState, type UiState } from './logic/uiState';
import { tensorValues, validateToWebview } from './logic/validate';
import { changedKeys, partsFor, RenderBatch, RENDER_PARTS, type RenderPart } from './logic/renderPlan';
import { decodeTile, tileAnswers, type Tile, type TileRequest } from './logic/patternTile';
import { Messenger, RequestError } from '../src/shared/messenger';
import { onThemeChange, theme } from './theme';
import { drawScene, rasterSize } from './logic/drawScene';
import type { Scene } from '../src/shared/figures/scene';
import type { ThemeColors } from '../src/shared/figures/palette';

const vscode = acquireVsCodeApi();
let ui: UiState = sanitizeUiState(vscode.getState());
let state: PanelState | null = null;
let shownRun: RunView | null = null;
let previousNext: { prompt: string; next: RunView['next'] } | null = null;
let overlay: { runId: number; token: number; values: Float32Array; direction: 'from' | 'to' } | null = null;
let dismissedError: string | null = null;
let eventError: string | null = null;

const messenger = new Messenger<ToWebview, FromWebview>((env) => vscode.postMessage(env), {
  errorOf: (b) => (b.type === 'error' ? b.message : undefined),
  // Pattern replies come from the stored run and are quick; allow for a host busy with a long run.
  timeoutMs: 120_000,
});
const post = (msg: FromWebview): void => void messenger.sendEvent(msg);

const L = buildLayout(document.getElementById('app') ?? document.body.appendChild(document.createElement('div')));

// ---------------------------------------------------------------- components
const prompt = new PromptOverlay((index) => post({ type: 'revealToken', index }));
L.slots.prompt.appendChild(prompt.el);

const grid = new HeadGrid({
  onSelect: (h, mode) => (mode === 'replace' ? selectHead(h) : toggleExtra(h)),
  onToggleMask: (h) => post({ type: 'toggleMask', head: h }),
  onMetric: (m) => setMetric(m),
});
L.slots.heads.appendChild(grid.el);

const next = new NextTokens((id, pin) => post(pin ? { type: 'watchToken', id } : { type: 'unwatchToken', id }));
L.slots.next.appendChild(next.el);

const watched = new WatchedTokens({
  onWatchText: async (text) => {
    const body = await messenger.sendRequest({ type: 'watchText', text });
    if (body.type !== 'tokenLookup') throw new Error(`unexpected reply ${body.type}`);
    return body;
  },
  onWatchId: (id) => post({ type: 'watchToken', id }),
  onUnwatch: (id) => post({ type: 'unwatchToken', id }),
  onPair: (pair) => post({ type: 'setWatchPair', pair }),
});
L.slots.next.appendChild(watched.el);

const lens = new LensTable((k) => {
  ui.lensTopK = k;
  saveUi();
  lens.setProps({ topK: k });
});
lens.setProps({ topK: ui.lensTopK });
L.slots.lens.appendChild(lens.el);

const steering = new Steering({
  post,
  onUi: (p) => {
    ui = { ...ui, ...p };
    saveUi();
    renderSteering();
  },
  onDeselect: (h) => toggleExtra(h),
});
L.slots.steering.appendChild(steering.el);

const heatmap = new Heatmap({
  onReveal: (q) => post({ type: 'revealToken', index: q }),
  onOptions: (o) => {
    ui = { ...ui, heatmapScale: o.kind, heatmapDiscountSink: o.discountSink };
    saveUi();
  },
  onTile: (req) => scheduleTile(req),
});
heatmap.setOptions({ kind: ui.heatmapScale, discountSink: ui.heatmapDiscountSink });
L.slots.pattern.appendChild(heatmap.el);

// ---------------------------------------------------------------- UI state
let saveTimer: ReturnType<typeof setTimeout> | undefined;
function saveUi(): void {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => vscode.setState(ui), 150);
}

for (const [id, sec] of Object.entries(L.sections) as [SectionId, (typeof L.sections)[SectionId]][]) {
  sec.open = !ui.collapsed[id];
  sec.addEventListener('vsc-collapsible-toggle', (e) => {
    ui.collapsed[id] = !e.detail.open;
    saveUi();
    if (id === 'pattern' && e.detail.open) ensurePattern();
    if (id === 'lens' && e.detail.open) scheduleLens(0);
  });
}
const leftColumn = L.main.querySelector<HTMLElement>('.split-left')!;
const rightColumn = L.main.querySelector<HTMLElement>('.split-right')!;
window.addEventListener('scroll', () => {
  ui.pageScrollTop = window.scrollY;
  saveUi();
}, { passive: true });
leftColumn.addEventListener('scroll', () => {
  ui.scrollTop = leftColumn.scrollTop;
  saveUi();
}, { passive: true });
new ResizeObserver(() => heatmap.relayout()).observe(rightColumn);
prompt.el.addEventListener('scroll', () => {
  ui.promptScrollTop = prompt.el.scrollTop;
  saveUi();
}, { passive: true });

// ---------------------------------------------------------------- overlay controls
const oc = L.overlayControls;
oc.scale.value = ui.overlayScale;
prompt.setOptions({ kind: ui.overlayScale });
oc.scale.addEventListener('change', () => {
  if (!isScaleKind(oc.scale.value)) return;
  ui.overlayScale = oc.scale.value;
  prompt.setOptions({ kind: ui.overlayScale });
  saveUi();
});
function setSettings(s: Partial<ViewSettings>): void {
  if (state) state.settings = { ...state.settings, ...s };
  post({ type: 'setSettings', settings: s });
}
oc.direction.addEventListener('change', () => {
  const v = oc.direction.value;
  if ((v === 'from' || v === 'to') && v !== state?.settings.direction) setSettings({ direction: v });
});
oc.aggregation.addEventListener('change', () => {
  const v = oc.aggregation.value;
  if ((AGGREGATIONS as readonly string[]).includes(v) && v !== state?.settings.aggregation) setSettings({ aggregation: v as Aggregation });
});
oc.discount.addEventListener('change', () => {
  const v = oc.discount.checked;
  if (state && v !== state.settings.discountSink) {
    setSettings({ discountSink: v });
    prompt.setOptions({ discountSink: v });
  }
});
L.error.dismiss.addEventListener('click', () => {
  dismissedError = L.error.text.textContent;
  eventError = null;
  L.error.el.hidden = true;
});

// ---------------------------------------------------------------- selection
function headsOfModel(): { L: number; H: number } {
  return { L: state?.model?.layers ?? 0, H: state?.model?.heads ?? 0 };
}
function validHead(h: HeadRef | null): h is HeadRef {
  const { L: nl, H: nh } = headsOfModel();
  return !!h && h.layer < nl && h.head < nh;
}
function targets(): HeadRef[] {
  const sel = state?.selected ?? null;
  const out: HeadRef[] = validHead(sel) ? [sel] : [];
  for (const k of ui.extraSelection) {
    const h = parseHeadKey(k);
    if (h && validHead(h) && !(sel && headKey(sel) === k)) out.push(h);
  }
  return out;
}
function selectHead(h: HeadRef): void {
  if (!state) return;
  state.selected = h;
  ui.selected = h;
  ui.extraSelection = ui.extraSelection.filter((k) => k !== headKey(h));
  saveUi();
  post({ type: 'selectHead', head: h });
  renderSelection();
}
function toggleExtra(h: HeadRef): void {
  if (!state) return;
  const k = headKey(h);
  if (!state.selected) return selectHead(h);
  if (headKey(state.selected) === k) return;
  ui.extraSelection = ui.extraSelection.includes(k) ? ui.extraSelection.filter((x) => x !== k) : [...ui.extraSelection, k];
  saveUi();
  renderSelection();
}
function setMetric(m: GridMetric): void {
  setSettings({ metric: m });
  renderGrid();
}

// ---------------------------------------------------------------- rendering
// Writes that leave the DOM alone when the value is already there: setting the same text again
// replaces the text node, and each replaced node costs the window a layout and a repaint.
function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}
function setTitle(e: HTMLElement, title: string): void {
  if (e.title !== title) e.title = title;
}
function setHidden(e: HTMLElement, hidden: boolean): void {
  if (e.hidden !== hidden) e.hidden = hidden;
}

let shownFacts = '';
function renderToolbar(): void {
  const s = state;
  const t = L.toolbar;
  setText(t.model, s?.model?.name ?? 'No model');
  setTitle(t.model, s?.model ? `${s.model.name} (${s.model.arch})` : '');
  setText(t.arch, s?.model?.arch ?? '');
  setHidden(t.arch, !s?.model);
  const facts: [string, string][] = [];
  const fact = (text: string, title: string): void => void facts.push([text, title]);
  if (s?.model) {
    fact(s.model.device, 'Device the model runs on');
    const kv = s.model.kvHeads !== s.model.heads ? ` · ${s.model.kvHeads} KV` : '';
    fact(`${s.model.layers}×${s.model.heads} heads${kv}`, 'layers × query heads (key/value heads when grouped)');
  }
  if (s?.run) {
    fact(`${s.run.tokens.length} tokens`, 'tokens in the run');
    const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
    fact(`run ${ms(s.run.timings.runMs)}`, `last run: ${ms(s.run.timings.runMs)}; model load: ${ms(s.run.timings.loadMs)}`);
  }
  const factsKey = JSON.stringify(facts);
  if (factsKey !== shownFacts) {
    shownFacts = factsKey;
    t.facts.replaceChildren(
      ...facts.map(([text, title]) => {
        const e = document.createElement('span');
        e.className = 'tb-fact';
        e.textContent = text;
        e.title = title;
        return e;
      }),
    );
  }
  // Shown and hidden by visibility, keeping the last label: the toolbar's layout (and its height,
  // when it wraps) stays the same, so a run starting or ending repaints the toolbar only, not the
  // whole page below it.
  t.busy.classList.toggle('idle', !s?.busy);
  if (s?.busy) setText(t.busyText, s.busy);
  const ariaBusy = s?.busy ? 'true' : 'false';
  if (document.body.getAttribute('aria-busy') !== ariaBusy) document.body.setAttribute('aria-busy', ariaBusy);

  const err = eventError ?? s?.error ?? null;
  setHidden(L.error.el, !err || err === dismissedError);
  setText(L.error.text, err ?? '');
  const tr = s?.run?.truncated ?? 0;
  setHidden(L.warn, tr === 0);
  setText(L.warn, tr ? `The prompt was cut: ${tr} token(s) past the token limit (attnscope.maxTokens) were not run.` : '');
  const hasRun = !!s?.run;
  setHidden(L.empty, hasRun);
  setHidden(L.main, !hasRun);
}

function renderGrid(): void {
  if (!state?.run || !state.model) return;
  const notes = new Map<string, string[]>();
  const add = (h: HeadRef, n: string): void => void notes.set(headKey(h), [...(notes.get(headKey(h)) ?? []), n]);
  const iv = state.interventions;
  if (iv.emphasis && iv.emphasis.heads !== 'all') for (const h of iv.emphasis.heads) add(h, `PASTA α ${iv.emphasis.alpha}`);
  if (iv.sink) for (const h of iv.sink.heads) add(h, `sink ×${iv.sink.value}`);
  grid.setProps({
    layers: state.model.layers,
    heads: state.model.heads,
    data: state.run.heads,
    metric: state.settings.metric,
    importance: state.importance && state.importance.runId === state.run.runId ? state.importance : null,
    importanceNote: state.importanceNote,
    patching: state.patching && state.patching.runId === state.run.runId ? state.patching : null,
    patchingNote: state.patchingNote,
    tokens: state.run.tokens.length,
    selected: validHead(state.selected) ? state.selected : null,
    extra: new Set(targets().slice(state.selected ? 1 : 0).map(headKey)),
    notes,
  });
  const d = L.sections.heads;
  d.description = `${state.model.layers} layers × ${state.model.heads} heads`;
}

function renderSteering(): void {
  if (!state) return;
  steering.setProps({
    model: state.model,
    heads: state.run?.heads ?? [],
    targets: targets(),
    interventions: state.interventions,
    alpha: ui.alpha,
    emphasisHeads: ui.emphasisHeads,
    sinkHeads: ui.sinkHeads,
  });
}

function renderPattern(): void {
  const sel = state?.selected;
  const heading = sel ? `Pattern · ${headLabel(sel)}` : 'Pattern';
  if (L.sections.pattern.heading !== heading) L.sections.pattern.heading = heading;
  ensurePattern();
}

function renderSelection(): void {
  renderGrid();
  renderSteering();
  renderPattern();
}

function renderRun(): void {
  const run = state?.run ?? null;
  if (!run) {
    shownRun = null;
    return;
  }
  if (shownRun?.runId !== run.runId) {
    if (shownRun) previousNext = { prompt: shownRun.prompt, next: shownRun.next };
    const tokensChanged = !shownRun || shownRun.prompt !== run.prompt || shownRun.tokens.length !== run.tokens.length;
    if (tokensChanged) {
      prompt.setRun(run.prompt, run.tokens, run.truncated);
      heatmap.setTokens(run.tokens);
    }
    if (overlay && overlay.runId !== run.runId && (tokensChanged || overlay.values.length !== run.tokens.length)) {
      overlay = null;
      prompt.setValues(null, null, state!.settings.direction);
      heatmap.setCursor(null);
    }
    next.setRun(run.next, previousNext && previousNext.prompt === run.prompt ? previousNext.next : null);
    L.sections.next.description = run.next.length ? `top ${run.next.length}` : '';
    shownRun = run;
  }
  const description = `${run.tokens.length} tokens${run.truncated ? ` (+${run.truncated} cut)` : ''}`;
  if (L.sections.prompt.description !== description) L.sections.prompt.description = description;
}

function renderWatch(): void {
  const w = state?.watch;
  if (!w) return;
  watched.setProps(w, state?.run?.runId ?? null);
  next.setWatched(new Set(w.tokens.map((t) => t.id)));
  // The panel's own copy of the list: restored into a new session of the same model (after a reload).
  if (state?.model) {
    ui.watched = w.tokens.map((t) => ({ id: t.id, text: t.text }));
    ui.watchedModel = state.model.name;
    saveUi();
  }
  scheduleLens();
}

function renderSettings(): void {
  if (!state) return;
  const s = state.settings;
  if (oc.direction.value !== s.direction) oc.direction.value = s.direction;
  if (oc.aggregation.value !== s.aggregation) oc.aggregation.value = s.aggregation;
  // Rollout is a from-row (where the cursor token's representation came from): no "to" for it.
  const rollout = s.aggregation === 'rollout';
  oc.direction.toggleAttribute('disabled', rollout);
  oc.direction.title = rollout ? 'Attention rollout is a from-row: it shows where the cursor token’s top-layer representation came from, so the direction does not apply' : '';
  if (oc.discount.checked !== s.discountSink) oc.discount.checked = s.discountSink;
  prompt.setOptions({ discountSink: s.discountSink });
}

/** Renders the parts of the page that depend on the state fields that changed (see logic/renderPlan.ts). */
function renderParts(parts: ReadonlySet<RenderPart>): void {
  if (parts.has('toolbar')) renderToolbar();
  if (parts.has('run')) renderRun();
  if (parts.has('settings')) renderSettings();
  if (parts.has('grid')) renderGrid();
  if (parts.has('steering')) renderSteering();
  if (parts.has('pattern')) renderPattern();
  if (parts.has('watch')) renderWatch();
}

// State messages are rendered once per animation frame, only the parts they change.
const batch = new RenderBatch((cb) => requestAnimationFrame(cb), renderParts);

function render(): void {
  batch.mark(RENDER_PARTS);
  batch.flush();
}

// ---------------------------------------------------------------- pattern requests
const patternCache = new Map<string, Float32Array>();
let shownPatternKey = '';
let inflightKey = '';
let requestTimer: ReturnType<typeof setTimeout> | undefined;

function cachePattern(key: string, v: Float32Array): void {
  patternCache.delete(key);
  patternCache.set(key, v);
  while (patternCache.size > 3) patternCache.delete(patternCache.keys().next().value!);
}

function ensurePattern(): void {
  const run = state?.run;
  const sel = state?.selected ?? null;
  if (!run || !validHead(sel)) {
    shownPatternKey = '';
    heatmap.setPattern(null, null, { kind: 'empty', message: run ? 'Select a head in the grid to see its attention pattern.' : '' });
    return;
  }
  if (!L.sections.pattern.open) return;
  const key = `${run.runId}|${headKey(sel)}`;
  if (key === shownPatternKey) return;
  if (run.tokens.length > PATTERN_EXACT_MAX_T) {
    // A long run: tiles at the heatmap's resolution (it asks through onTile → scheduleTile).
    shownPatternKey = key;
    clearTimeout(tileTimer);
    heatmap.setTiled(sel, run.runId, run.tokens.length, { kind: 'loading' });
    return;
  }
  const cached = patternCache.get(key);
  if (cached) {
    shownPatternKey = key;
    heatmap.setPattern(sel, cached, { kind: 'ready' });
    return;
  }
  heatmap.setPattern(sel, null, { kind: 'loading' });
  shownPatternKey = '';
  if (inflightKey === key) return;
  clearTimeout(requestTimer);
  requestTimer = setTimeout(() => requestPattern(sel, run.runId, key), 40);
}

function requestPattern(head: HeadRef, runId: number, key: string): void {
  inflightKey = key;
  messenger.sendRequest({ type: 'requestPattern', head }).then(
    (body) => {
      if (inflightKey === key) inflightKey = '';
      if (body.type === 'pattern') acceptPattern(body);
      ensurePattern();
    },
    (err: unknown) => {
      if (inflightKey === key) inflightKey = '';
      const cur = state?.run && state.selected ? `${state.run.runId}|${headKey(state.selected)}` : '';
      if (cur === key && !(err instanceof RequestError && err.code === 'disposed')) {
        heatmap.setPattern(head, null, { kind: 'error', message: `Could not load the pattern of ${headLabel(head)}: ${err instanceof Error ? err.message : String(err)}` });
      }
      void runId;
    },
  );
}

function acceptPattern(b: Extract<ToWebview, { type: 'pattern' }>): void {
  const run = state?.run;
  if (!run || b.runId !== run.runId) return; // stale: a newer run replaced it
  const T = run.tokens.length;
  if (b.values.dims[0] !== T) return console.warn(`AttnScope: pattern of ${T}×${T} expected, got ${b.values.dims.join('×')}`);
  const key = `${b.runId}|${headKey(b.head)}`;
  cachePattern(key, tensorValues(b.values));
  if (state?.selected && headKey(state.selected) === headKey(b.head)) shownPatternKey = '';
}

// ---------------------------------------------------------------- pattern tiles (long runs)
// Past PATTERN_EXACT_MAX_T tokens the whole [T, T] pattern is never fetched (256 MB at 8,000
// tokens): the heatmap asks for the window it shows at its pixel resolution, exact when the window
// has at most that many tokens per side, else max-pooled by the engine. Requests are debounced
// while the user zooms; a reply for another run, another head or a window zoomed away from is
// dropped (the heatmap checks the window). The last few tiles are cached (a head seen again, Reset
// zoom) and the in-flight request for the same tile is not repeated.
const tileCache: Tile[] = [];
let tileTimer: ReturnType<typeof setTimeout> | undefined;
const tileInflight = new Set<string>();

function tileKey(runId: number, head: string, r: TileRequest): string {
  return `${runId}|${head}|${r.q0},${r.q1},${r.k0},${r.k1},${r.size}`;
}

function scheduleTile(req: TileRequest): void {
  const run = state?.run;
  const sel = state?.selected;
  if (!run || !sel) return;
  const hk = headKey(sel);
  const hit = tileCache.find((t) => t.runId === run.runId && t.headKey === hk && tileAnswers(t, req));
  clearTimeout(tileTimer);
  if (hit) {
    queueMicrotask(() => heatmap.setTile(hit));
    return;
  }
  // the first tile of a head at once, zoom steps once the wheel rests
  const first = !tileCache.some((t) => t.runId === run.runId && t.headKey === hk);
  tileTimer = setTimeout(() => requestTile(run.runId, sel, req), first ? 0 : 120);
}

function requestTile(runId: number, head: HeadRef, req: TileRequest): void {
  const hk = headKey(head);
  const key = tileKey(runId, hk, req);
  if (tileInflight.has(key)) return;
  tileInflight.add(key);
  const current = () => state?.run?.runId === runId && !!state.selected && headKey(state.selected) === hk;
  messenger.sendRequest({ type: 'requestPatternTile', runId, head, ...req }).then(
    (body) => {
      tileInflight.delete(key);
      if (body.type !== 'patternTile' || !current()) return; // stale: another run or head
      const t = decodeTile(runId, hk, body.tile, tensorValues(body.tile.values));
      tileCache.unshift(t);
      tileCache.length = Math.min(tileCache.length, 6);
      heatmap.setTile(t);
    },
    (err: unknown) => {
      tileInflight.delete(key);
      if (!current() || (err instanceof RequestError && err.code === 'disposed')) return;
      const msg = err instanceof Error ? err.message : String(err);
      if (/replaced by a newer/.test(msg)) return; // the new run brings its own request
      heatmap.setTileError(`Could not load this part of the pattern of ${headLabel(head)}: ${msg}`);
    },
  );
}

// ---------------------------------------------------------------- logit lens requests
// The lens follows the overlay's query token (the editor cursor), debounced; answered by one lens
// run in the engine per (run, token, watch list), cached here for the last few.
const lensCache = new Map<string, Extract<ToWebview, { type: 'lens' }>['layers']>();
let lensToken: number | null = null;
let lensShownKey = '';
let lensInflight = '';
let lensTimer: ReturnType<typeof setTimeout> | undefined;

function lensKey(): string {
  const run = state?.run;
  if (!run || lensToken === null || lensToken >= run.tokens.length) return '';
  return `${run.runId}|${lensToken}|${(state?.watch.tokens ?? []).map((t) => t.id).join(',')}`;
}

function scheduleLens(delayMs = 160): void {
  const run = state?.run;
  const key = lensKey();
  const tok = run && lensToken !== null ? run.tokens[lensToken] : undefined;
  lens.setProps({ token: tok ? { index: lensToken!, text: tok.text } : null, watched: state?.watch.tokens ?? [] });
  if (!key || !run) {
    lensShownKey = '';
    lens.setProps({ layers: null, status: { kind: 'idle' } });
    return;
  }
  L.sections.lens.description = tok ? `at token ${lensToken}` : '';
  if (!L.sections.lens.open || key === lensShownKey) return;
  const hit = lensCache.get(key);
  if (hit) {
    lensShownKey = key;
    lens.setProps({ layers: hit, status: { kind: 'ready' } });
    return;
  }
  lens.setProps({ status: { kind: 'loading' } });
  clearTimeout(lensTimer);
  lensTimer = setTimeout(() => requestLens(run.runId, lensToken!, key), delayMs);
}

function requestLens(runId: number, position: number, key: string): void {
  if (lensInflight === key) return;
  lensInflight = key;
  messenger.sendRequest({ type: 'requestLens', runId, position }).then(
    (body) => {
      if (lensInflight === key) lensInflight = '';
      if (body.type !== 'lens') return;
      lensCache.delete(key);
      lensCache.set(key, body.layers);
      while (lensCache.size > 24) lensCache.delete(lensCache.keys().next().value!);
      scheduleLens(0);
    },
    (err: unknown) => {
      if (lensInflight === key) lensInflight = '';
      if (key !== lensKey() || (err instanceof RequestError && err.code === 'disposed')) return;
      const msg = err instanceof Error ? err.message : String(err);
      // a newer run replaced this one: the overlay of the new run brings a new request
      if (/replaced by a newer/.test(msg)) return;
      lens.setProps({ layers: null, status: { kind: 'error', message: `The logit lens failed: ${msg}` } });
    },
  );
}

// ---------------------------------------------------------------- messages
function handle(body: ToWebview): void {
  switch (body.type) {
    case 'init': {
      state = body.state;
      sendTheme();
      eventError = null;
      patternCache.clear();
      tileCache.length = 0;
      shownPatternKey = '';
      shownRun = null;
      overlay = null;
      if (!state.selected && ui.selected && validHead(ui.selected) && state.run) selectHead(ui.selected);
      // A new session of the same model starts with no watched tokens: bring back the panel's list.
      if (state.watch.tokens.length === 0 && ui.watched.length && state.model && ui.watchedModel === state.model.name) {
        for (const t of ui.watched) post({ type: 'watchToken', id: t.id });
      }
      lensCache.clear();
      lensShownKey = '';
      lensToken = null;
      render();
      requestAnimationFrame(() => {
        window.scrollTo(0, ui.pageScrollTop);
        leftColumn.scrollTop = ui.scrollTop;
        prompt.el.scrollTop = ui.promptScrollTop;
      });
      return;
    }
    case 'state': {
      if (!state) return console.warn('AttnScope: state before init ignored');
      const parts = partsFor(changedKeys(state, body.state));
      state = { ...state, ...body.state };
      if (body.state.error !== undefined) {
        if (eventError !== null) parts.add('toolbar');
        eventError = null;
        if (body.state.error !== dismissedError) dismissedError = null;
      }
      batch.mark(parts);
      return;
    }
    case 'overlay': {
      // The overlay of a new run colors that run's token spans: render the run first.
      batch.flush();
      const run = state?.run;
      const values = tensorValues(body.values);
      if (!run || body.runId !== run.runId || values.length !== run.tokens.length || body.token >= run.tokens.length) return;
      overlay = { runId: body.runId, token: body.token, values, direction: body.direction };
      prompt.setValues(values, body.token, body.direction);
      prompt.revealCursor();
      heatmap.setCursor(body.token);
      lensToken = body.token;
      scheduleLens();
      return;
    }
    case 'lens':
    case 'tokenLookup':
      return; // replies to requests that are no longer pending
    case 'pattern':
      acceptPattern(body);
      ensurePattern();
      return;
    case 'patternTile':
      return; // a reply to a request that is no longer pending
    case 'rasterize':
      void rasterize(body.job, body.scene, body.scale);
      return;
    case 'error':
      eventError = body.message;
      dismissedError = null;
      renderToolbar();
      return;
    default: {
      const never: never = body;
      console.warn('AttnScope: unhandled message', never);
    }
  }
}

// ---------------------------------------------------------------- exports
/** Draws an export figure on a canvas and sends the PNG bytes back (the host validates and writes them). */
async function rasterize(job: number, scene: Scene, scale: number): Promise<void> {
  try {
    const { width, height } = rasterSize(scene, scale);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas context');
    drawScene(ctx as unknown as CanvasRenderingContext2D, scene, scale);
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    post({ type: 'rasterized', job, png: await blob.arrayBuffer(), error: null });
  } catch (e) {
    post({ type: 'rasterized', job, png: null, error: `could not draw the PNG: ${e instanceof Error ? e.message : String(e)}`.slice(0, 900) });
  }
}

/** The theme's colors as #rrggbb, for "current theme" exports. */
function sendTheme(): void {
  const t = theme();
  const hex = (c: readonly number[]): string => `#${c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;
  const colors: ThemeColors = { kind: t.kind, bg: hex(t.bg), fg: hex(t.fg), muted: hex(t.muted), low: hex(t.low), high: hex(t.high), focus: hex(t.focus) };
  post({ type: 'theme', colors });
}

window.addEventListener('message', (e: MessageEvent) => {
  const v = validateToWebview(e.data);
  if (!v.ok) {
    console.warn(`AttnScope: ignored a malformed message from the host: ${v.error}`);
    eventError = `Ignored a malformed message from the extension (${v.error}).`;
    dismissedError = null;
    renderToolbar();
    return;
  }
  if (messenger.receive(v.value)) return;
  handle(v.value.body);
});
window.addEventListener('blur', hideTooltip);
window.addEventListener('pagehide', () => messenger.dispose());

onThemeChange(() => {
  prompt.refreshTheme();
  grid.refreshTheme();
  heatmap.refreshTheme();
  if (state) sendTheme();
});

renderToolbar();
post({ type: 'ready', version: PROTOCOL_VERSION });
