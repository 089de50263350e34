// A fake extension host for the preview harness: answers the webview's messages the way the real
// host does (init after ready, state after each change, overlay rows, pattern replies), from the
// synthetic fixture in test/fixtures/webviewFixtures.ts. Also installs acquireVsCodeApi.
import { makeFixture } from '../../test/fixtures/webviewFixtures';
import { headKey, type Envelope, type FromWebview, type HeadRef, type PanelState, type ToWebview } from '../../src/shared/protocol';
import { parseHeadKey } from '../../src/shared/heads';
// The engine's own tiling (exact or max-pooled windows) over the fixture's patterns: the preview
// answers requestPatternTile with the same cells the extension would.
import { patternSource, patternTile } from '../../src/engine/analysis/kept';

const params = new URLSearchParams(location.search);
export const T_TOKENS = Math.max(4, Math.min(8192, Number(params.get('tokens') ?? 60) || 60));
const initialScales = { '0.6': 0, '3.7': 0, '1.5': 1.5, '2.2': 0.5 };
const fx = makeFixture({ tokens: T_TOKENS, scales: initialScales, layers: Number(params.get('layers') ?? 4) || 4, heads: Number(params.get('heads') ?? 8) || 8 });
const state: PanelState = fx.state;
const fullRun = fx.state.run!;
// Scenarios for screenshots: no run yet, an error, metrics that are null (no repeated tokens).
const scenario = params.get('scenario');
if (scenario === 'empty') state.run = null;
if (scenario === 'error') state.error = 'Model load failed: config.json: unsupported architecture "mamba" (supported: gpt2, llama, mistral, qwen2, gpt_neox).';
if (scenario === 'nulls') for (const h of state.run!.heads) h.induction = null;
if (scenario === 'busy') state.busy = 'Running tiny-llama-4x8 on cpu…';
const T = fullRun.tokens.length;
const scales = new Map<string, number>(Object.entries(initialScales));
let cursor = Math.min(T - 1, 56);
let nextId = 1;
let runTimer: ReturnType<typeof setTimeout> | undefined;
const baseNext = fullRun.next.map((n) => ({ ...n }));
const log: FromWebview[] = [];

export function envelope(body: ToWebview, inReplyTo?: number): Envelope<ToWebview> {
  return inReplyTo === undefined ? { messageId: nextId++, body } : { messageId: nextId++, inReplyTo, body };
}
function send(body: ToWebview, inReplyTo?: number, delay = 0): void {
  const env = envelope(body, inReplyTo);
  setTimeout(() => window.postMessage(env, '*'), delay);
}

function overlayValues(token: number): Float32Array<ArrayBuffer> {
  const { aggregation, direction } = state.settings;
  const L = state.model!.layers;
  const H = state.model!.heads;
  const sel = state.selected;
  let heads: HeadRef[] = [];
  for (let layer = 0; layer < L; layer++)
    for (let head = 0; head < H; head++) {
      if ((scales.get(`${layer}.${head}`) ?? 1) === 0) continue;
      if (aggregation === 'head' && sel && !(sel.layer === layer && sel.head === head)) continue;
      if (aggregation === 'layer' && sel && sel.layer !== layer) continue;
      heads.push({ layer, head });
    }
  // At thousands of tokens, average a few heads only (generating every pattern would take seconds).
  if (T > 256) heads = heads.filter((h) => (sel && headKey(h) === headKey(sel)) || headKey(h) === '1.3' || headKey(h) === '0.0').slice(0, 3);
  const out = new Float32Array(T);
  for (const h of heads) {
    const p = fx.pattern(h);
    if (direction === 'from') for (let k = 0; k < T; k++) out[k]! += p[token * T + k]!;
    else for (let q = 0; q < T; q++) out[q]! += p[q * T + token]!;
  }
  if (heads.length) for (let i = 0; i < T; i++) out[i]! /= heads.length;
  return out;
}

function sendOverlay(delay = 0): void {
  if (!state.run) return;
  const values = overlayValues(cursor);
  send({ type: 'overlay', runId: state.run!.runId, token: cursor, direction: state.settings.direction, values: { dims: [T], data: values.buffer } }, undefined, delay);
}

/** Simulates a re-run after an intervention: busy, then a new run with changed predictions. */
function rerun(): void {
  state.busy = 'Running…';
  send({ type: 'state', state: { busy: state.busy } });
  clearTimeout(runTimer);
  runTimer = setTimeout(() => {
    const run = state.run ?? fullRun;
    const induction = scales.get('2.5') ?? 1;
    const emph = state.interventions.emphasis ? 1.25 : 1;
    const next = baseNext
      .map((n, i) => ({ ...n, prob: n.prob * (i === 0 ? induction * emph : 1) * (state.interventions.sink ? 1 + 0.1 * (i % 3) : 1) }))
      .sort((a, b) => b.prob - a.prob);
    const z = next.reduce((s, n) => s + n.prob, 0) / 0.83;
    state.run = {
      ...run,
      runId: run.runId + 1,
      heads: run.heads.map((h) => ({ ...h, scale: scales.get(`${h.layer}.${h.head}`) ?? 1 })),
      next: next.map((n) => ({ ...n, prob: n.prob / z })),
      timings: { runMs: 30 + Math.round(Math.random() * 20), loadMs: 0 },
    };
    state.interventions.scales = [...scales].map(([k, value]) => ({ ...parseHeadKey(k)!, value }));
    state.busy = null;
    send({ type: 'state', state: { run: state.run, interventions: state.interventions, busy: null } });
    sendOverlay();
  }, 350);
}

function handle(env: Envelope<FromWebview>): void {
  const m = env.body;
  log.push(m);
  switch (m.type) {
    case 'ready':
      send({ type: 'init', state });
      sendOverlay(10);
      return;
    case 'selectHead':
      state.selected = m.head;
      send({ type: 'state', state: { selected: m.head } });
      if (state.settings.aggregation !== 'mean') sendOverlay();
      return;
    case 'toggleMask': {
      const k = headKey(m.head);
      if ((scales.get(k) ?? 1) === 0) scales.delete(k);
      else scales.set(k, 0);
      return rerun();
    }
    case 'setScale':
      for (const h of m.heads) {
        if (m.value === 1) scales.delete(headKey(h));
        else scales.set(headKey(h), m.value);
      }
      return rerun();
    case 'emphasizeSelection': {
      const text = 'a brass key under the blue stone';
      const start = state.run!.prompt.indexOf(text);
      state.interventions.emphasis = { start, end: start + text.length, alpha: m.alpha, heads: m.heads, text };
      return rerun();
    }
    case 'clearEmphasis':
      state.interventions.emphasis = null;
      return rerun();
    case 'setSink':
      state.interventions.sink = m.value === 1 ? null : { heads: m.heads, value: m.value };
      return rerun();
    case 'reset':
      scales.clear();
      state.interventions = { scales: [], emphasis: null, sink: null };
      return rerun();
    case 'setSettings':
      state.settings = { ...state.settings, ...m.settings };
      send({ type: 'state', state: { settings: state.settings } });
      sendOverlay();
      return;
    case 'revealToken':
      cursor = Math.max(0, Math.min(T - 1, m.index));
      sendOverlay();
      return;
    case 'requestPattern': {
      const { layer, head } = m.head;
      if (layer >= state.model!.layers || head >= state.model!.heads) return send({ type: 'error', message: `no head L${layer}H${head}` }, env.messageId);
      const p = fx.pattern(m.head);
      send({ type: 'pattern', runId: state.run!.runId, head: m.head, values: { dims: [T, T], data: p.slice().buffer } }, env.messageId, 20);
      return;
    }
    case 'requestPatternTile': {
      const { layer, head } = m.head;
      if (layer >= state.model!.layers || head >= state.model!.heads) return send({ type: 'error', message: `no head L${layer}H${head}` }, env.messageId);
      if (m.runId !== state.run!.runId) return send({ type: 'error', message: 'that run was replaced by a newer one' }, env.messageId);
      try {
        // one stored "layer" holding just this head's pattern
        const src = patternSource(new Map([[0, fx.pattern(m.head)]]), T);
        const t = patternTile({ runId: m.runId, T, L: 1, H: 1, attention: src }, 0, 0, m.q0, m.q1, m.k0, m.k1, m.size);
        const tile = { q0: t.q0, q1: t.q1, k0: t.k0, k1: t.k1, pooled: t.pooled, rowEdges: Array.from(t.rowEdges), colEdges: Array.from(t.colEdges), values: { dims: [t.rowEdges.length - 1, t.colEdges.length - 1], data: t.values.buffer as ArrayBuffer } };
        // a delay like the engine's, so the preview shows the stretched image while a zoom loads
        send({ type: 'patternTile', runId: m.runId, head: m.head, tile }, env.messageId, 120);
      } catch (e) {
        send({ type: 'error', message: e instanceof Error ? e.message : String(e) }, env.messageId);
      }
      return;
    }
    case 'rasterized':
    case 'theme':
      return; // export replies: the preview has no files to write
    case 'requestLens':
    case 'watchToken':
    case 'watchText':
    case 'unwatchToken':
    case 'setWatchPair':
      send({ type: 'error', message: 'the preview host has no model for the logit lens or watched tokens' }, env.messageId);
      return;
    default: {
      const never: never = m;
      console.warn('fake host: unknown message', never);
    }
  }
}

let saved: unknown = (() => {
  try {
    return JSON.parse(sessionStorage.getItem('attnscope-preview-state') ?? 'null');
  } catch {
    return null;
  }
})();
(globalThis as unknown as { acquireVsCodeApi: () => VsCodeApi }).acquireVsCodeApi = () => ({
  postMessage: (msg: unknown) => setTimeout(() => handle(structuredClone(msg) as Envelope<FromWebview>), 0),
  getState: () => saved,
  setState: (s: unknown) => {
    saved = s;
    sessionStorage.setItem('attnscope-preview-state', JSON.stringify(s));
  },
});

export const fakeHost = {
  state,
  fixture: fx,
  log,
  get cursor() {
    return cursor;
  },
  sendError(message: string) {
    send({ type: 'error', message });
  },
  setBusy(busy: string | null) {
    state.busy = busy;
    send({ type: 'state', state: { busy } });
  },
  overlayEnvelope(token: number): Envelope<ToWebview> {
    cursor = token;
    const values = overlayValues(token);
    return envelope({ type: 'overlay', runId: state.run!.runId, token, direction: state.settings.direction, values: { dims: [T], data: values.buffer } });
  },
  patternEnvelope(h: HeadRef): Envelope<ToWebview> {
    return envelope({ type: 'pattern', runId: state.run!.runId, head: h, values: { dims: [T, T], data: fx.pattern(h).slice().buffer } });
  },
};
