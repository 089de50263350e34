// Layer × head grid (rows = layers L0.., columns = heads H0..) on a canvas, colored by a metric.
//
// Props (setProps): layers, heads, data (HeadView per head), metric (a head metric or
// 'importance'), importance (the ablation ranking of this run, or null: the 'importance' choice is
// offered only with one), importanceNote (why a ranking was cleared), patching / patchingNote (the
// same for activation patching: 'patching' colors by the share of the clean−corrupt gap a head
// restores, 0..1, diverging when negative), tokens (the prompt length, for
// the automatic head roles in the tooltip), selected (the host's selected head), extra (further
// heads selected for steering, keys "l.h"), notes (per head key: intervention notes for the
// tooltip). Null metric values draw hatched; masked heads (scale 0)
// are crossed out; heads with another scale get a corner mark (▲ amplified, ▼ attenuated) and,
// when cells are large enough, the scale as text. Click selects, ctrl/cmd-click adds/removes a
// head from the steering selection, shift-click toggles the mask. Keyboard: arrows / Home / End /
// PageUp / PageDown move the selection, space toggles the mask.
import { METRICS, headKey, headLabel, type GridMetric, type HeadRef, type HeadView, type ImportanceView, type MetricName } from '../../src/shared/protocol';
import { parseHeadKey, sameHead } from '../../src/shared/heads';
import { headRoles, ROLE_INFO } from '../../src/shared/headLabels';
import { formatImportance, formatSigned, importanceIndex, IMPORTANCE_INFO, rankImportance, type HeadImportance } from '../../src/shared/importance';
import { formatEffect, patchingDomain, patchingFraction, patchingIndex, rankPatching, PATCHING_CITE, PATCHING_DESCRIPTION, PATCHING_LABEL, type HeadPatchView, type PatchingView } from '../../src/shared/patching';
import { quoteToken } from '../../src/shared/watch';
import { cssRgba, mix, parseCssColor, rampAt, type RGBA } from '../logic/color';
import {
  cellAt,
  cellOrigin,
  formatMetric,
  formatScale,
  gridLayout,
  headHarm,
  importanceDomain,
  importanceFraction,
  importanceInfoLine,
  importanceOptionDescription,
  indexHeads,
  metricDomain,
  metricFraction,
  metricInfoLine,
  metricOptionDescription,
  metricValue,
  METRIC_INFO,
  moveSelection,
  sameGridProp,
  topHeads,
  type GridLayout,
} from '../logic/gridLogic';
import { sizeCanvas, theme, type Theme } from '../theme';
import { hideTooltip, showTooltip } from './tooltip';

export interface HeadGridProps {
  layers: number;
  heads: number;
  data: HeadView[];
  metric: GridMetric;
  importance: ImportanceView | null;
  importanceNote: string | null;
  patching: PatchingView | null;
  patchingNote: string | null;
  /** tokens in the run (the head roles depend on the prompt length) */
  tokens: number;
  selected: HeadRef | null;
  extra: ReadonlySet<string>;
  notes: ReadonlyMap<string, string[]>;
}

export interface HeadGridCallbacks {
  onSelect(h: HeadRef, mode: 'replace' | 'toggleExtra'): void;
  onToggleMask(h: HeadRef): void;
  onMetric(m: GridMetric): void;
}

const IMPORTANCE_LABEL = 'Importance (ablation)';

/** A plain value with a real minus sign. */
const fmtValue = (v: number, digits: number): string => v.toFixed(digits).replace(/^-/, '−');

export class HeadGrid {
  readonly el: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly select: HTMLElement & { value: string };
  private readonly legend: { lo: HTMLElement; bar: HTMLElement; hi: HTMLElement; range: HTMLElement };
  private readonly importanceOption: HTMLElement;
  private readonly patchingOption: HTMLElement;
  private readonly info: HTMLDivElement;
  private readonly top: HTMLDivElement;
  private readonly live: HTMLDivElement;
  private props: HeadGridProps = { layers: 0, heads: 0, data: [], metric: 'entropy', importance: null, importanceNote: null, patching: null, patchingNote: null, tokens: 0, selected: null, extra: new Set(), notes: new Map() };
  private byIndex: (HeadView | undefined)[] = [];
  private impIndex: (HeadImportance | undefined)[] = [];
  private patchIndex: (HeadPatchView | undefined)[] = [];
  private layout: GridLayout = gridLayout(0, 0, 0);
  private hover: HeadRef | null = null;
  private queued = false;
  /** setProps ran once (everything drawn) */
  private rendered = false;

  constructor(private readonly cb: HeadGridCallbacks) {
    this.el = document.createElement('div');
    this.el.className = 'head-grid';

    const head = document.createElement('div');
    head.className = 'row grid-controls';
    const label = document.createElement('label');
    label.textContent = 'Color by';
    label.className = 'ctl-label';
    this.select = document.createElement('vscode-single-select') as HTMLElement & { value: string };
    this.select.id = 'metric-select';
    label.htmlFor = 'metric-select';
    this.select.setAttribute('aria-label', 'Metric');
    // vscode-single-select shows the highlighted option's description in a footer of the open
    // list: what the metric measures and where it comes from.
    for (const m of METRICS) {
      const o = document.createElement('vscode-option');
      o.setAttribute('value', m);
      o.setAttribute('description', metricOptionDescription(m));
      o.textContent = METRIC_INFO[m].label;
      this.select.appendChild(o);
    }
    this.importanceOption = document.createElement('vscode-option');
    this.importanceOption.setAttribute('value', 'importance');
    this.importanceOption.textContent = IMPORTANCE_LABEL;
    this.patchingOption = document.createElement('vscode-option');
    this.patchingOption.setAttribute('value', 'patching');
    this.patchingOption.textContent = PATCHING_LABEL;
    this.select.addEventListener('change', () => {
      const v = this.select.value;
      if (v === this.props.metric) return;
      if ((METRICS as readonly string[]).includes(v)) this.cb.onMetric(v as MetricName);
      else if (v === 'importance' && this.props.importance) this.cb.onMetric('importance');
      else if (v === 'patching' && this.props.patching) this.cb.onMetric('patching');
    });
    const legend = document.createElement('div');
    legend.className = 'legend';
    const mk = (cls: string): HTMLSpanElement => {
      const s = document.createElement('span');
      s.className = cls;
      legend.appendChild(s);
      return s;
    };
    this.legend = { lo: mk('lg-lo'), bar: mk('lg-bar'), hi: mk('lg-hi'), range: mk('lg-range') };
    head.append(label, this.select, legend);
    this.info = document.createElement('div');
    this.info.className = 'grid-metric-info muted';

    const scroll = document.createElement('div');
    scroll.className = 'grid-scroll';
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'application');
    this.canvas.setAttribute('aria-roledescription', 'head grid');
    this.canvas.setAttribute('aria-label', 'Heads by layer. Arrow keys move the selection, space masks or unmasks the selected head.');
    scroll.appendChild(this.canvas);
    // VS Code's webview context menu (package.json webview/context): export entries; `head` is the
    // cell under the pointer when the menu opens (Copy Head Metrics copies that head).
    this.setContext(null);

    const keys = document.createElement('div');
    keys.className = 'grid-keys';
    keys.innerHTML =
      '<span><i class="key-x"></i>masked</span><span><i class="key-up"></i>amplified</span><span><i class="key-down"></i>attenuated</span><span><i class="key-null"></i>n/a</span><span class="key-hint">click select · ctrl/⌘-click multi · shift-click mask</span>';
    this.top = document.createElement('div');
    this.top.className = 'grid-top';
    this.live = document.createElement('div');
    this.live.className = 'sr-only';
    this.live.setAttribute('aria-live', 'polite');
    this.el.append(head, this.info, scroll, keys, this.top, this.live);

    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => {
      this.hover = null;
      hideTooltip();
      this.queue();
    });
    this.canvas.addEventListener('click', (e) => this.onClick(e));
    this.canvas.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.queue()).observe(this.el);
  }

  /**
   * Updates what changed only: a re-run or a state message that leaves the grid's inputs as they
   * were redraws nothing and rebuilds no DOM (each rebuild costs the whole window a layout and a
   * repaint while the model runs).
   */
  setProps(p: Partial<HeadGridProps>): void {
    const prev = this.props;
    const next = { ...prev, ...p };
    // 'importance' without a ranking (none yet, or cleared) shows nothing to color by: fall back.
    if (next.metric === 'importance' && !next.importance) next.metric = 'induction';
    if (next.metric === 'patching' && !next.patching) next.metric = 'induction';
    this.props = next;
    const ch = (...keys: (keyof HeadGridProps)[]): boolean => keys.some((k) => !sameGridProp(k, prev[k], next[k]));
    const shape = ch('layers', 'heads');
    if (shape || ch('patching')) {
      this.patchIndex = patchingIndex(next.patching, next.layers, next.heads);
      const pv = next.patching;
      if (pv) {
        this.patchingOption.setAttribute('description', `Each head’s output copied from the clean prompt (${pv.cleanLabel}) into this one: share of log p(${quoteToken(pv.targetText)}) restored (Meng et al. 2022)`);
        if (!this.patchingOption.isConnected) this.select.appendChild(this.patchingOption);
      } else if (this.patchingOption.isConnected) this.patchingOption.remove();
    }
    if (shape || ch('data')) this.byIndex = indexHeads(next.data, next.layers, next.heads);
    if (shape || ch('importance')) {
      this.impIndex = importanceIndex(next.importance, next.layers, next.heads);
      const imp = next.importance;
      if (imp) {
        this.importanceOption.setAttribute('description', importanceOptionDescription(imp));
        if (!this.importanceOption.isConnected) this.select.appendChild(this.importanceOption);
      } else if (this.importanceOption.isConnected) this.importanceOption.remove();
    }
    if (this.select.value !== next.metric) this.select.value = next.metric;
    if (!this.rendered || ch('metric', 'importance', 'importanceNote', 'patching', 'patchingNote')) this.renderInfo();
    if (!this.rendered || ch('data', 'metric', 'importance', 'patching')) {
      this.renderLegend();
      this.renderTop();
    }
    if (!this.rendered || shape || ch('data', 'metric', 'importance', 'patching', 'selected', 'extra')) this.queue();
    this.rendered = true;
  }

  /** The metric's description and source under the controls (or why a ranking was cleared). */
  private renderInfo(): void {
    const { metric, importance, importanceNote } = this.props;
    this.info.replaceChildren();
    const line = (text: string, cls = ''): void => {
      const d = document.createElement('div');
      if (cls) d.className = cls;
      d.textContent = text;
      this.info.appendChild(d);
    };
    const { patching, patchingNote } = this.props;
    if (metric === 'patching' && patching) {
      line(
        `Each head’s output copied from ${patching.cleanLabel} into this prompt: (patched − corrupt) / (clean − corrupt) of log p(${quoteToken(patching.targetText)}); clean ${fmtValue(patching.clean, 3)}, corrupt ${fmtValue(patching.corrupt, 3)} nats. ${PATCHING_CITE}.`,
      );
      if (patching.interventionsIgnored) line('The patching runs use the plain model: the interventions of the inspected run are not applied.', 'grid-note');
    } else if (metric === 'importance' && importance) line(importanceInfoLine(importance));
    else if (metric !== 'importance' && metric !== 'patching') line(metricInfoLine(metric));
    if (!importance && importanceNote) line(importanceNote, 'grid-note');
    if (!patching && patchingNote) line(patchingNote, 'grid-note');
  }

  refreshTheme(): void {
    this.renderLegend();
    this.queue();
  }

  private queue(): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  private ramp(th: Theme): RGBA[] {
    return [mix(th.bg, th.fg, th.kind === 'light' ? 0.06 : 0.09), th.high];
  }

  /** The hue of a negative harm (masking helped) on the diverging importance scale: the chart color opposite --attn-high. */
  private negative(th: Theme): RGBA {
    const v = th.kind === 'light' || th.kind === 'hc-light' ? '--vscode-charts-orange' : '--vscode-charts-blue';
    return parseCssColor(getComputedStyle(document.documentElement).getPropertyValue(v)) ?? th.focus;
  }

  private renderLegend(): void {
    const { data, metric, importance, patching } = this.props;
    const th = theme();
    const r = this.ramp(th);
    if (metric === 'patching' && patching) {
      const d = patchingDomain(patching);
      const neg = this.negative(th);
      this.legend.bar.style.background = d.diverging
        ? `linear-gradient(to right, ${cssRgba(neg)}, ${cssRgba(r[0]!)}, ${cssRgba(r[1]!)})`
        : `linear-gradient(to right, ${cssRgba(r[0]!)}, ${cssRgba(rampAt(r, 0.5))}, ${cssRgba(r[1]!)})`;
      this.legend.lo.textContent = d.diverging ? formatEffect(-d.hi) : '0';
      this.legend.hi.textContent = formatEffect(d.hi);
      this.legend.range.textContent =
        d.min === null ? 'no values: clean and corrupt agree on the target' : `share restored · observed ${formatEffect(d.min)} … ${formatEffect(d.max)}${d.diverging ? ' · middle = none' : ' · 1 = full'}`;
      this.legend.bar.title = PATCHING_DESCRIPTION;
      return;
    }
    if (metric === 'importance' && importance) {
      const d = importanceDomain(importance);
      const delta = IMPORTANCE_INFO[importance.metric].delta;
      const sign = importance.metric === 'logprob' ? -1 : 1; // delta = sign · harm
      const fmtSigned = (v: number): string => (importance.metric === 'kl' ? fmtValue(v, 2) : formatSigned(v, 2));
      const neg = this.negative(th);
      this.legend.bar.style.background = d.diverging
        ? `linear-gradient(to right, ${cssRgba(neg)}, ${cssRgba(r[0]!)}, ${cssRgba(r[1]!)})`
        : `linear-gradient(to right, ${cssRgba(r[0]!)}, ${cssRgba(rampAt(r, 0.5))}, ${cssRgba(r[1]!)})`;
      // The ends in the measured Δ (the bar runs from "masking helped" to "masking hurt most").
      this.legend.lo.textContent = d.diverging ? fmtSigned(-sign * d.hi) : '0';
      this.legend.hi.textContent = fmtSigned(sign * d.hi);
      const lo = d.min === null ? null : sign * d.max!;
      const hi = d.min === null ? null : sign * d.min;
      this.legend.range.textContent =
        lo === null ? 'no values' : `${delta} when masked · observed ${fmtSigned(Math.min(lo, hi!))} … ${fmtSigned(Math.max(lo, hi!))}${d.diverging ? ' · middle = no change' : ''}`;
      this.legend.bar.title = IMPORTANCE_INFO[importance.metric].description;
      return;
    }
    const m = metric as MetricName;
    const d = metricDomain(data, m);
    this.legend.bar.style.background = `linear-gradient(to right, ${cssRgba(r[0]!)}, ${cssRgba(rampAt(r, 0.5))}, ${cssRgba(r[1]!)})`;
    this.legend.lo.textContent = formatMetric(m, d.lo, true);
    this.legend.hi.textContent = formatMetric(m, d.hi, true);
    const why = m === 'induction' || m === 'duplicateToken' ? ': no token repeats earlier in the prompt' : '';
    this.legend.range.textContent =
      d.min === null ? `no values${why}` : `observed ${formatMetric(m, d.min)} – ${formatMetric(m, d.max)}${d.missing > 0 ? ` · ${d.missing} n/a` : ''}`;
    this.legend.bar.title = METRIC_INFO[m].description;
  }

  private renderTop(): void {
    const { data, metric, importance, patching } = this.props;
    this.top.replaceChildren();
    const chips: { h: HeadRef; text: string }[] =
      metric === 'patching' && patching
        ? rankPatching(patching)
            .filter((h) => h.effect !== null)
            .slice(0, 5)
            .map((h) => ({ h, text: `${headLabel(h)} ${formatEffect(h.effect)}` }))
        : metric === 'importance' && importance
        ? rankImportance(importance)
            .slice(0, 5)
            .map((h) => ({ h, text: `${headLabel(h)} ${formatImportance(importance.metric, h.delta)}` }))
          : topHeads(data, metric as MetricName, 4).map((h) => ({ h, text: `${headLabel(h)} ${formatMetric(metric as MetricName, metricValue(h, metric as MetricName))}` }));
    if (chips.length === 0) return;
    const label = document.createElement('span');
    label.className = 'muted';
    label.textContent = metric === 'patching' ? 'Most restoring:' : metric === 'importance' ? 'Most important:' : `Highest ${METRIC_INFO[metric].label.toLowerCase()}:`;
    this.top.appendChild(label);
    for (const { h, text } of chips) {
      const b = document.createElement('button');
      b.className = 'chip-button';
      b.textContent = text;
      b.title = `Select ${headLabel(h)}`;
      b.addEventListener('click', () => this.cb.onSelect({ layer: h.layer, head: h.head }, 'replace'));
      this.top.appendChild(b);
    }
  }

  /** A head's color fraction under the current metric: 0..1, or −1..1 for a diverging importance scale; null = n/a. */
  private fractionOf(h: HeadRef, hv: HeadView | undefined, dom: ReturnType<typeof metricDomain> | null, idom: ReturnType<typeof importanceDomain> | null): number | null {
    const { metric, importance, heads: H } = this.props;
    if (metric === 'importance') return importanceFraction(headHarm(importance, this.impIndex, H, h), idom!);
    if (metric === 'patching') return this.props.patching ? patchingFraction(this.patchIndex[h.layer * H + h.head]?.effect, patchingDomain(this.props.patching)) : null;
    return hv ? metricFraction(metricValue(hv, metric), dom!) : null;
  }

  private draw(): void {
    const { layers: L, heads: H, metric, selected, extra } = this.props;
    const width = this.el.clientWidth;
    if (width === 0) return;
    const g = (this.layout = gridLayout(width, L, H, { minCell: 12, maxCell: 40, left: 30, top: 16 }));
    const ctx = sizeCanvas(this.canvas, g.width, g.height);
    const th = theme();
    const ramp = this.ramp(th);
    const imp = metric === 'importance';
    const dom = imp || metric === 'patching' ? null : metricDomain(this.props.data, metric);
    const idom = imp ? importanceDomain(this.props.importance) : null;
    const negRamp: RGBA[] = [ramp[0]!, this.negative(th)];
    ctx.clearRect(0, 0, g.width, g.height);
    ctx.font = `10px ${th.fontFamily}`;
    ctx.fillStyle = cssRgba(th.muted);
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'center';
    const pitch = g.cell + g.gap;
    const every = Math.ceil(24 / pitch);
    for (let h = 0; h < H; h += every) ctx.fillText(`H${h}`, g.left + h * pitch + g.cell / 2, g.top / 2);
    ctx.textAlign = 'right';
    const everyL = Math.ceil(12 / pitch);
    for (let l = 0; l < L; l += everyL) ctx.fillText(`L${l}`, g.left - 5, g.top + l * pitch + g.cell / 2);

    const c = g.cell;
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const hv = this.byIndex[l * H + h];
        const { x, y } = cellOrigin({ layer: l, head: h }, g);
        const f = this.fractionOf({ layer: l, head: h }, hv, dom, idom);
        const scale = hv?.scale ?? 1;
        if (f === null) this.hatch(ctx, x, y, c, th);
        else {
          let fill = f < 0 ? rampAt(negRamp, -f) : rampAt(ramp, f);
          if (scale === 0) fill = mix(fill, th.bg, 0.55);
          ctx.fillStyle = cssRgba(fill);
          ctx.fillRect(x, y, c, c);
        }
        if (th.border) {
          ctx.strokeStyle = cssRgba(th.border, 0.6);
          ctx.lineWidth = 1;
          ctx.strokeRect(x + 0.5, y + 0.5, c - 1, c - 1);
        }
        if (scale === 0) this.cross(ctx, x, y, c, th);
        else if (scale !== 1) this.scaleMark(ctx, x, y, c, scale, th);
      }
    }
    for (const k of extra) {
      const ref = parseHeadKey(k);
      if (ref && ref.layer < L && ref.head < H && !sameHead(selected, ref)) this.outline(ctx, ref, th.focus, 1.5, [3, 2]);
    }
    if (this.hover) this.outline(ctx, this.hover, th.fg, 1, []);
    if (selected && selected.layer < L && selected.head < H) {
      // A focus-colored ring with a background-colored inner line, so it reads on any fill.
      this.outline(ctx, selected, th.focus, 2.5, []);
      const { x, y } = cellOrigin(selected, g);
      ctx.strokeStyle = cssRgba(th.bg);
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 1, y + 1, c - 2, c - 2);
    }
  }

  private hatch(ctx: CanvasRenderingContext2D, x: number, y: number, c: number, th: Theme): void {
    ctx.fillStyle = cssRgba(mix(th.bg, th.fg, 0.04));
    ctx.fillRect(x, y, c, c);
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, c, c);
    ctx.clip();
    ctx.strokeStyle = cssRgba(th.muted, 0.55);
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let d = -c; d < c; d += 4) {
      ctx.moveTo(x + d, y + c);
      ctx.lineTo(x + d + c, y);
    }
    ctx.stroke();
    ctx.restore();
  }

  private cross(ctx: CanvasRenderingContext2D, x: number, y: number, c: number, th: Theme): void {
    const i = Math.max(2, c * 0.2);
    ctx.strokeStyle = cssRgba(th.error);
    ctx.lineWidth = Math.max(1.5, c / 12);
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(x + i, y + i);
    ctx.lineTo(x + c - i, y + c - i);
    ctx.moveTo(x + c - i, y + i);
    ctx.lineTo(x + i, y + c - i);
    ctx.stroke();
  }

  /** ▲ (amplified) or ▼ (attenuated) in the top-right corner; on large cells a badge with the scale. */
  private scaleMark(ctx: CanvasRenderingContext2D, x: number, y: number, c: number, scale: number, th: Theme): void {
    const s = Math.max(6, Math.round(c * 0.3));
    const x1 = x + c - 2;
    const x0 = x1 - s;
    const y0 = y + 2;
    const h = s * 0.8;
    ctx.fillStyle = cssRgba(th.fg);
    ctx.strokeStyle = cssRgba(th.bg);
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    if (scale > 1) {
      ctx.moveTo(x0, y0 + h);
      ctx.lineTo(x1, y0 + h);
      ctx.lineTo((x0 + x1) / 2, y0);
    } else {
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y0);
      ctx.lineTo((x0 + x1) / 2, y0 + h);
    }
    ctx.closePath();
    ctx.stroke();
    ctx.fill();
    if (c >= 26) {
      const text = Number(scale.toFixed(2)).toString();
      ctx.font = `600 9px ${th.fontFamily}`;
      const w = Math.min(c - 4, ctx.measureText(text).width + 6);
      const bx = x + 2;
      const by = y + c - 12;
      ctx.fillStyle = cssRgba(th.fg);
      ctx.beginPath();
      ctx.roundRect(bx, by, w, 10, 3);
      ctx.fill();
      ctx.fillStyle = cssRgba(th.bg);
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(text, bx + w / 2, by + 5.5, c - 6);
    }
  }

  private outline(ctx: CanvasRenderingContext2D, h: HeadRef, color: RGBA, w: number, dash: number[]): void {
    const { x, y } = cellOrigin(h, this.layout);
    const c = this.layout.cell;
    ctx.save();
    ctx.setLineDash(dash);
    ctx.strokeStyle = cssRgba(color);
    ctx.lineWidth = w;
    ctx.strokeRect(x - w / 2 + 0.5, y - w / 2 + 0.5, c + w - 1, c + w - 1);
    ctx.restore();
  }

  /** The data-vscode-context of the canvas: the section, and the head under the pointer (or none). */
  private setContext(h: HeadRef | null): void {
    this.canvas.dataset.vscodeContext = JSON.stringify({ webviewSection: 'headGrid', preventDefaultContextMenuItems: true, ...(h ? { head: headKey(h) } : {}) });
  }

  private onMove(e: MouseEvent): void {
    const h = cellAt(e.offsetX, e.offsetY, this.layout, this.props.layers, this.props.heads);
    if ((h && headKey(h)) !== (this.hover && headKey(this.hover))) this.setContext(h);
    const changed = (h === null) !== (this.hover === null) || (h && this.hover && headKey(h) !== headKey(this.hover));
    this.hover = h;
    if (changed) this.queue();
    if (!h) return hideTooltip();
    const { heads: H, importance, metric, patching } = this.props;
    const hv = this.byIndex[h.layer * H + h.head];
    const rows: [string, string][] = [];
    const patched = this.patchIndex[h.layer * H + h.head];
    if (patching && patched) {
      rows.push(['Patching effect', formatEffect(patched.effect, 3)]);
      rows.push([`log p(${quoteToken(patching.targetText)}) patched`, `${fmtValue(patched.value, 3)} (corrupt ${fmtValue(patching.corrupt, 3)}, clean ${fmtValue(patching.clean, 3)})`]);
    }
    const ablated = this.impIndex[h.layer * H + h.head];
    if (importance && ablated) {
      const info = IMPORTANCE_INFO[importance.metric];
      // A head the interventions mask already cannot be masked further: its Δ is 0 by construction.
      if (hv?.scale === 0) rows.push([`${info.delta} when masked`, 'already masked']);
      else rows.push([`${info.delta} when masked`, importance.metric === 'kl' ? fmtValue(ablated.delta, 4) : formatSigned(ablated.delta)]);
      if (importance.metric !== 'kl') rows.push([`${importance.metric === 'logprob' ? 'log p' : 'loss'} masked / unmasked`, `${fmtValue(ablated.value, 3)} / ${fmtValue(importance.baseline, 3)}`]);
    }
    rows.push(...METRICS.map((m): [string, string] => [METRIC_INFO[m].label, formatMetric(m, hv ? metricValue(hv, m) : null)]));
    rows.push(['Scale', hv ? (hv.scale === 1 ? '1 (unchanged)' : formatScale(hv.scale)) : 'n/a']);
    for (const n of this.props.notes.get(headKey(h)) ?? []) rows.push(['Steering', n]);
    const roles = hv ? headRoles(hv, this.props.tokens) : [];
    const strong = metric === 'patching' ? 'Patching effect' : metric === 'importance' ? (importance ? `${IMPORTANCE_INFO[importance.metric].delta} when masked` : undefined) : METRIC_INFO[metric].label;
    showTooltip(e.clientX, e.clientY, {
      title: roles.length ? `${headLabel(h)} · ${roles.map((r) => ROLE_INFO[r].label.toLowerCase()).join(', ')}` : headLabel(h),
      rows,
      strong,
      notes: roles.map((r) => ({ lead: ROLE_INFO[r].label, text: ROLE_INFO[r].description, cite: ROLE_INFO[r].cite })),
      hint: 'click select · ctrl/⌘-click multi-select · shift-click mask',
    });
  }

  private onClick(e: MouseEvent): void {
    const h = cellAt(e.offsetX, e.offsetY, this.layout, this.props.layers, this.props.heads);
    if (!h) return;
    if (e.shiftKey) this.cb.onToggleMask(h);
    else this.cb.onSelect(h, e.ctrlKey || e.metaKey ? 'toggleExtra' : 'replace');
  }

  private onKey(e: KeyboardEvent): void {
    const { layers: L, heads: H, selected } = this.props;
    if (e.key === ' ') {
      e.preventDefault();
      this.cb.onToggleMask(selected ?? { layer: 0, head: 0 });
      return;
    }
    const next = moveSelection(selected, e.key, L, H);
    if (!next) return;
    e.preventDefault();
    this.cb.onSelect(next, 'replace');
    const hv = this.byIndex[next.layer * H + next.head];
    const { metric, importance } = this.props;
    const ablated = this.impIndex[next.layer * H + next.head];
    const patched = this.patchIndex[next.layer * H + next.head];
    const value =
      metric === 'patching'
        ? `patching effect ${patched ? formatEffect(patched.effect) : 'n/a'}`
        : metric === 'importance'
        ? importance && ablated
          ? formatImportance(importance.metric, ablated.delta)
          : 'importance n/a'
        : `${METRIC_INFO[metric].label} ${formatMetric(metric, hv ? metricValue(hv, metric) : null)}`;
    this.live.textContent = `${headLabel(next)}, ${value}${hv && hv.scale !== 1 ? `, ${formatScale(hv.scale)}` : ''}`;
  }
}
