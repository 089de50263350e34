// The webview's own UI state, kept with vscode.setState so it survives the panel being hidden or
// restored by the serializer. Whatever comes back from getState is sanitized field by field.
import type { HeadRef, WatchedToken } from '../../src/shared/protocol';
import { MAX_WATCHED } from '../../src/shared/watch';
import { isScaleKind, type ScaleKind } from './colorScale';

export interface UiState {
  v: 1;
  /** heads selected in the grid besides the host's `selected` (ctrl/cmd-click), keys "l.h" */
  extraSelection: string[];
  /** last selected head, to restore when the host has none */
  selected: HeadRef | null;
  overlayScale: ScaleKind;
  heatmapScale: ScaleKind;
  heatmapDiscountSink: boolean;
  collapsed: Record<string, boolean>;
  /** scroll of the left column (wide layout) and of the page (narrow layout) */
  scrollTop: number;
  pageScrollTop: number;
  promptScrollTop: number;
  alpha: number;
  emphasisHeads: 'all' | 'selected';
  sinkHeads: 'all' | 'selected';
  /** the watched tokens and the model they belong to (restored into a new session of the same model) */
  watched: WatchedToken[];
  watchedModel: string;
  /** columns of the logit lens table */
  lensTopK: number;
}

export const DEFAULT_UI_STATE: UiState = {
  v: 1,
  extraSelection: [],
  selected: null,
  overlayScale: 'sqrt',
  heatmapScale: 'sqrt',
  heatmapDiscountSink: true,
  collapsed: {},
  scrollTop: 0,
  pageScrollTop: 0,
  promptScrollTop: 0,
  alpha: 0.01,
  emphasisHeads: 'selected',
  sinkHeads: 'selected',
  watched: [],
  watchedModel: '',
  lensTopK: 5,
};

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHeadKey = (v: unknown): v is string => typeof v === 'string' && /^\d{1,4}\.\d{1,4}$/.test(v);

export function sanitizeUiState(raw: unknown): UiState {
  const d = DEFAULT_UI_STATE;
  if (!isObj(raw) || raw.v !== 1) return { ...d, collapsed: {}, extraSelection: [], watched: [] };
  const nonNeg = (v: unknown, dflt: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : dflt);
  const sel = raw.selected;
  const collapsed: Record<string, boolean> = {};
  if (isObj(raw.collapsed)) for (const [k, v] of Object.entries(raw.collapsed)) if (typeof v === 'boolean') collapsed[k] = v;
  return {
    v: 1,
    extraSelection: Array.isArray(raw.extraSelection) ? raw.extraSelection.filter(isHeadKey).slice(0, 4096) : [],
    selected:
      isObj(sel) && Number.isInteger(sel.layer) && Number.isInteger(sel.head) && (sel.layer as number) >= 0 && (sel.head as number) >= 0
        ? { layer: sel.layer as number, head: sel.head as number }
        : null,
    overlayScale: isScaleKind(raw.overlayScale) ? raw.overlayScale : d.overlayScale,
    heatmapScale: isScaleKind(raw.heatmapScale) ? raw.heatmapScale : d.heatmapScale,
    heatmapDiscountSink: typeof raw.heatmapDiscountSink === 'boolean' ? raw.heatmapDiscountSink : d.heatmapDiscountSink,
    collapsed,
    scrollTop: nonNeg(raw.scrollTop, 0),
    pageScrollTop: nonNeg(raw.pageScrollTop, 0),
    promptScrollTop: nonNeg(raw.promptScrollTop, 0),
    alpha: typeof raw.alpha === 'number' && raw.alpha > 0 && raw.alpha <= 1 ? raw.alpha : d.alpha,
    emphasisHeads: raw.emphasisHeads === 'all' ? 'all' : 'selected',
    sinkHeads: raw.sinkHeads === 'all' ? 'all' : 'selected',
    watched: Array.isArray(raw.watched)
      ? raw.watched
          .filter((t): t is WatchedToken => isObj(t) && Number.isSafeInteger(t.id) && (t.id as number) >= 0 && typeof t.text === 'string' && t.text.length <= 200)
          .slice(0, MAX_WATCHED)
          .map((t) => ({ id: t.id, text: t.text }))
      : [],
    watchedModel: typeof raw.watchedModel === 'string' ? raw.watchedModel.slice(0, 500) : '',
    lensTopK: raw.lensTopK === 3 || raw.lensTopK === 5 || raw.lensTopK === 10 ? raw.lensTopK : d.lensTopK,
  };
}
