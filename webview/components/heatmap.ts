// One head's attention pattern [T, T] (row = query, column = key) on a canvas.
//
// Props: setTokens(tokens), setPattern(head, values | null, status), setCursor(q), setOptions({kind,
// discountSink}). The pattern is max-pooled to the plot's device-pixel size when T exceeds it (so
// one-token stripes survive) and colored into an ImageData once per pattern/size/scale/theme;
// redraws for hover only blit that image (drawImage, smoothing off, so cells stay crisp). Hover
// shows query/key/value in the status line; click reveals the query token in the editor. Wheel
// zooms about the pointer (token labels appear once cells are large enough), drag pans,
// double-click or the Reset button shows the whole pattern again; the zoom is kept across heads.
//
// Long runs (T > PATTERN_EXACT_MAX_T, see main.ts) come as tiles instead: setTiled(head, runId, T)
// and the heatmap asks (callback onTile) for the window it shows at its pixel resolution; setTile
// draws the answer (exact, or max-pooled blocks, said in the legend). Zooming or panning asks for
// the new window; until it comes, the whole-pattern tile (and the last one) are drawn stretched
// underneath. Hover reports the block's query and key ranges and its value ("max" when pooled).
import type { HeadRef, TokenView } from '../../src/shared/protocol';
import { headLabel } from '../../src/shared/protocol';
import { cssRgba, mix, packABGR, rampAt, rampUint32, type RGBA } from '../logic/color';
import { formatProb, sinkMask, type ScaleKind } from '../logic/colorScale';
import { axisTicks, cellRect, clampView, colorize, fullView, heatmapLayout, hoverCell, panView, poolPattern, zoomView, type HeatmapLayout, type Pooled, type View } from '../logic/heatmapMath';
import { truncateLabel, visibleToken } from '../logic/tokenText';
import { sizeCanvas, theme, type Theme } from '../theme';
import { poolCaption, sameRequest, tileAnswers, tileCellAt, tileCells, tileRequest, type Tile, type TileRequest } from '../logic/patternTile';

export interface HeatmapOptions {
  kind: ScaleKind;
  discountSink: boolean;
}

export type PatternStatus = { kind: 'ready' } | { kind: 'loading' } | { kind: 'empty'; message: string } | { kind: 'error'; message: string };

export interface HeatmapCallbacks {
  onReveal(q: number): void;
  onOptions(o: HeatmapOptions): void;
  /** tile mode: the heatmap needs this window (answer with setTile; a newer call replaces it) */
  onTile?(req: TileRequest): void;
}

/**
 * Sets an element's text only when it differs: the heatmap redraws on every pointer move, and even
 * the same text written again is a DOM change the panel's layout has to absorb.
 */
function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export class Heatmap {
  readonly el: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly status: HTMLDivElement;
  private readonly note: HTMLDivElement;
  private readonly scaleSelect: HTMLElement & { value: string };
  private readonly discount: HTMLElement & { checked: boolean };
  private readonly legendBar: HTMLSpanElement;
  private readonly legendMax: HTMLSpanElement;
  private tokens: TokenView[] = [];
  private head: HeadRef | null = null;
  private values: Float32Array | null = null;
  private T = 0;
  private cursor: number | null = null;
  private hover: { q: number; k: number } | null = null;
  private view: View = fullView(0);
  private drag: { x: number; y: number; view: View; moved: boolean } | null = null;
  private readonly resetZoom: HTMLElement & { disabled: boolean };
  private opts: HeatmapOptions = { kind: 'sqrt', discountSink: true };
  private layout: HeatmapLayout | null = null;
  private pooled: Pooled | null = null;
  private pooledKey = '';
  private image: HTMLCanvasElement | null = null;
  private imageKey = '';
  private themeGen = 0;
  private queued = false;
  /** the legend bar's gradient as last set (a draw sets it only when it changes) */
  private legendBarBackground = '';
  /** tile mode (a long run): the run and head the tiles must belong to, the window wanted now */
  private tiled: { runId: number; headKey: string } | null = null;
  private wanted: TileRequest | null = null;
  /** the tile that answers `wanted`, else the last one accepted (drawn stretched until the answer comes) */
  private tile: Tile | null = null;
  /** the whole-pattern tile of this run and head (backdrop while a zoomed window loads) */
  private fullTile: Tile | null = null;
  private readonly tileImages = new WeakMap<Tile, { key: string; canvas: HTMLCanvasElement; max: number }>();
  private hoverBlock: { qa: number; qb: number; ka: number; kb: number; value: number } | null = null;
  /** ms spent in the last draw that rebuilt the image (pool + colorize + blit) */
  lastBuildMs = 0;

  constructor(private readonly cb: HeatmapCallbacks) {
    this.el = document.createElement('div');
    this.el.className = 'heatmap';
    const controls = document.createElement('div');
    controls.className = 'row heatmap-controls';
    const lab = document.createElement('label');
    lab.className = 'ctl-label';
    lab.textContent = 'Scale';
    lab.htmlFor = 'heatmap-scale';
    this.scaleSelect = document.createElement('vscode-single-select') as HTMLElement & { value: string };
    this.scaleSelect.id = 'heatmap-scale';
    for (const k of ['linear', 'sqrt', 'log']) {
      const o = document.createElement('vscode-option');
      o.setAttribute('value', k);
      o.textContent = k;
      this.scaleSelect.appendChild(o);
    }
    this.scaleSelect.addEventListener('change', () => {
      const v = this.scaleSelect.value;
      if (v === 'linear' || v === 'sqrt' || v === 'log') this.setOptions({ kind: v }, true);
    });
    this.discount = document.createElement('vscode-checkbox') as HTMLElement & { checked: boolean };
    this.discount.setAttribute('label', 'Discount sink');
    this.discount.title = 'Leave the first token and special tokens out of the color scale';
    this.discount.addEventListener('change', () => this.setOptions({ discountSink: this.discount.checked }, true));
    const legend = document.createElement('span');
    legend.className = 'legend';
    const zero = document.createElement('span');
    zero.textContent = '0';
    this.legendBar = document.createElement('span');
    this.legendBar.className = 'lg-bar';
    this.legendMax = document.createElement('span');
    legend.append(zero, this.legendBar, this.legendMax);
    this.resetZoom = document.createElement('vscode-button') as HTMLElement & { disabled: boolean };
    this.resetZoom.setAttribute('secondary', '');
    this.resetZoom.textContent = 'Reset zoom';
    this.resetZoom.title = 'Show the whole pattern (or double-click it)';
    this.resetZoom.hidden = true;
    this.resetZoom.addEventListener('click', () => this.setView(fullView(this.T)));
    controls.append(lab, this.scaleSelect, this.discount, legend, this.resetZoom);

    const wrap = document.createElement('div');
    wrap.className = 'heatmap-canvas';
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    // VS Code's webview context menu (package.json webview/context): export entries
    this.canvas.dataset.vscodeContext = JSON.stringify({ webviewSection: 'pattern', preventDefaultContextMenuItems: true });
    wrap.appendChild(this.canvas);
    this.note = document.createElement('div');
    this.note.className = 'heatmap-note';
    wrap.appendChild(this.note);
    this.status = document.createElement('div');
    this.status.className = 'status-line';
    this.status.setAttribute('aria-live', 'polite');
    this.el.append(controls, wrap, this.status);

    this.canvas.addEventListener('pointermove', (e) => this.onPointerMove(e));
    this.canvas.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || !this.hasData()) return;
      this.drag = { x: e.offsetX, y: e.offsetY, view: this.view, moved: false };
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener('pointerup', (e) => {
      const d = this.drag;
      this.drag = null;
      if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
      if (d && !d.moved && this.hover) this.cb.onReveal(this.hover.q);
    });
    this.canvas.addEventListener('pointerleave', () => {
      if (this.drag) return;
      this.hover = null;
      this.renderStatus();
      this.queue();
    });
    this.canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.canvas.addEventListener('dblclick', () => this.setView(fullView(this.T)));
    new ResizeObserver(() => this.queue()).observe(wrap);
    this.setOptions({});
  }

  private setView(v: View): void {
    const next = clampView(v, this.T);
    if (next.q0 === this.view.q0 && next.k0 === this.view.k0 && next.n === this.view.n) return;
    this.view = next;
    this.pooledKey = '';
    // the token under the pointer is another one now (the wheel handler finds it again)
    this.hover = null;
    this.hoverBlock = null;
    this.renderStatus();
    this.queue();
  }

  /** In the stacked layout the page scrolls: plain wheel keeps scrolling it, ctrl/⌘+wheel zooms. */
  private pageScrolls(): boolean {
    const col = this.el.closest('.split-right');
    if (!(col instanceof HTMLElement)) return true;
    const cs = getComputedStyle(col);
    return cs.display === 'contents' || cs.overflowY !== 'auto';
  }

  private onWheel(e: WheelEvent): void {
    const l = this.layout;
    if (!l || !this.hasData()) return;
    if (this.pageScrolls() && !e.ctrlKey && !e.metaKey) return;
    e.preventDefault();
    const fx = Math.max(0, Math.min(1, (e.offsetX - l.x) / l.size));
    const fy = Math.max(0, Math.min(1, (e.offsetY - l.y) / l.size));
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    this.setView(zoomView(this.view, this.T, Math.exp(Math.max(-1, Math.min(1, delta * 0.002))), fx, fy));
    const h = hoverCell(e.offsetX, e.offsetY, l, this.T, this.view);
    this.hover = h;
    this.hoverBlock = h ? this.blockAt(h.q, h.k) : null;
    this.renderStatus();
  }

  private onPointerMove(e: PointerEvent): void {
    const l = this.layout;
    const d = this.drag;
    if (d && l) {
      const dx = e.offsetX - d.x;
      const dy = e.offsetY - d.y;
      if (!d.moved && Math.hypot(dx, dy) < 4) return;
      d.moved = true;
      this.canvas.style.cursor = 'grabbing';
      this.setView(panView(d.view, this.T, dx, dy, l.size));
      return;
    }
    const h = l && this.hasData() ? hoverCell(e.offsetX, e.offsetY, l, this.T, this.view) : null;
    if (h?.q !== this.hover?.q || h?.k !== this.hover?.k) {
      this.hover = h;
      this.hoverBlock = h ? this.blockAt(h.q, h.k) : null;
      this.renderStatus();
      this.queue();
    }
    this.canvas.style.cursor = h ? 'pointer' : this.view.n < this.T ? 'grab' : 'default';
  }

  setTokens(tokens: TokenView[]): void {
    this.tokens = tokens;
    this.pooledKey = '';
    this.queue();
  }

  private hasData(): boolean {
    return this.values !== null || this.tiled !== null;
  }

  /** The tile block under token (q, k) in tile mode (null in exact mode or before the tile comes). */
  private blockAt(q: number, k: number): { qa: number; qb: number; ka: number; kb: number; value: number } | null {
    if (!this.tiled) return null;
    for (const t of [this.tile, this.fullTile]) {
      if (!t) continue;
      const b = tileCellAt(t, q, k);
      if (b) return b;
    }
    return null;
  }

  /**
   * Tile mode for a long run: T tokens, drawn from tiles of run `runId` that the heatmap asks for
   * through onTile. The zoom is kept when the token count stays the same (e.g. a re-run).
   */
  setTiled(head: HeadRef, runId: number, T: number, status: PatternStatus): void {
    this.head = head;
    this.values = null;
    this.tiled = { runId, headKey: `${head.layer}.${head.head}` };
    this.view = T === this.T && T > 0 ? clampView(this.view, T) : fullView(T);
    this.T = T;
    this.wanted = null;
    this.tile = null;
    this.fullTile = null;
    this.pooled = null;
    this.hover = null;
    this.hoverBlock = null;
    this.setNote(status);
    this.canvas.setAttribute('aria-label', `Attention pattern of ${headLabel(head)}`);
    this.renderStatus();
    this.queue();
  }

  /** A tile for tile mode: kept when it belongs to the run and head shown and answers the window wanted (or is the whole pattern). */
  setTile(t: Tile): boolean {
    const m = this.tiled;
    if (!m || t.runId !== m.runId || t.headKey !== m.headKey) return false;
    const whole = t.q0 === 0 && t.k0 === 0 && t.q1 === this.T && t.k1 === this.T;
    const answers = !!this.wanted && tileAnswers(t, this.wanted);
    if (!answers && !whole) return false; // a window the user has zoomed away from
    if (whole && (!this.fullTile || t.rows >= this.fullTile.rows)) this.fullTile = t;
    if (answers || !this.tile) this.tile = t;
    this.setNote({ kind: 'ready' });
    if (this.hover) this.hoverBlock = this.blockAt(this.hover.q, this.hover.k);
    this.renderStatus();
    this.queue();
    return true;
  }

  /** Tile mode: the window wanted could not be loaded (the tiles drawn so far stay). */
  setTileError(message: string): void {
    if (!this.tiled) return;
    this.setNote({ kind: 'error', message });
  }

  private setNote(status: PatternStatus): void {
    this.note.textContent = status.kind === 'loading' ? 'Loading pattern…' : status.kind === 'ready' ? '' : status.message;
    this.note.classList.toggle('error', status.kind === 'error');
    this.note.hidden = status.kind === 'ready' || (status.kind === 'loading' && this.values !== null);
  }

  setPattern(head: HeadRef | null, values: Float32Array | null, status: PatternStatus): void {
    this.head = head;
    this.tiled = null;
    this.tile = null;
    this.fullTile = null;
    this.wanted = null;
    this.hoverBlock = null;
    const T = values ? Math.round(Math.sqrt(values.length)) : 0;
    this.values = values && T * T === values.length ? values : null;
    const newT = this.values ? T : 0;
    this.view = newT === this.T && newT > 0 ? clampView(this.view, newT) : fullView(newT);
    this.T = newT;
    this.pooled = null;
    this.pooledKey = '';
    this.imageKey = '';
    this.hover = null;
    this.setNote(status);
    this.canvas.setAttribute('aria-label', head ? `Attention pattern of ${headLabel(head)}` : 'No pattern');
    this.renderStatus();
    this.queue();
  }

  setCursor(q: number | null): void {
    if (q === this.cursor) return;
    this.cursor = q;
    this.queue();
  }

  setOptions(o: Partial<HeatmapOptions>, fromUser = false): void {
    this.opts = { ...this.opts, ...o };
    if (this.scaleSelect.value !== this.opts.kind) this.scaleSelect.value = this.opts.kind;
    if (this.discount.checked !== this.opts.discountSink) this.discount.checked = this.opts.discountSink;
    if (fromUser) this.cb.onOptions(this.opts);
    this.queue();
  }

  refreshTheme(): void {
    this.themeGen++;
    this.queue();
  }

  /** Draws now (synchronously); returns ms spent. For measurements and tests in a browser. */
  drawNow(): number {
    const t0 = performance.now();
    this.draw();
    return performance.now() - t0;
  }

  private queue(): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  /**
   * Height that keeps the plot and the status line in view: in the wide layout the column has a
   * fixed height (it scrolls on its own), so the plot gets what is left below the controls.
   */
  private availableHeight(wrap: HTMLElement): number {
    const col = this.el.closest('.split-right');
    if (!(col instanceof HTMLElement) || this.pageScrolls()) return window.innerHeight * 0.8;
    const above = wrap.getBoundingClientRect().top - col.getBoundingClientRect().top + col.scrollTop;
    return col.clientHeight - above - 44;
  }

  /** Recomputes the size (call when the space around changes, e.g. the column was resized). */
  relayout(): void {
    this.queue();
  }

  private labelsFit(T: number, width: number): boolean {
    return T > 0 && T <= 160 && width / T >= 9;
  }

  private draw(): void {
    const wrap = this.canvas.parentElement!;
    const width = wrap.clientWidth;
    if (width === 0) return;
    const th = theme();
    const T = this.T;
    const v = this.view;
    const n = Math.max(1, v.n);
    const dpr = window.devicePixelRatio || 1;
    const maxH = Math.max(240, Math.min(width, this.availableHeight(wrap)));
    // Token labels when cells are large enough, index ticks otherwise.
    let gutter: { left: number; bottom: number; top?: number } = { left: 38, bottom: 20, top: 8 };
    let labels = false;
    const ctx0 = this.canvas.getContext('2d')!;
    if (this.labelsFit(n, Math.min(width, maxH))) {
      ctx0.font = `10px ${th.fontFamily}`;
      let w = 0;
      for (let i = 0; i < n; i++) {
        for (const t of [this.tokens[v.q0 + i], this.tokens[v.k0 + i]]) if (t) w = Math.max(w, ctx0.measureText(truncateLabel(visibleToken(t.text), 10)).width);
      }
      gutter = { left: Math.ceil(w) + 8, bottom: Math.ceil(w) + 8 };
      labels = heatmapLayout(width, maxH, dpr, n, gutter).size / n >= 9;
      if (!labels) gutter = { left: 38, bottom: 20, top: 8 };
    }
    const l = (this.layout = heatmapLayout(width, maxH, dpr, n, gutter));
    this.resetZoom.hidden = !(T > 0 && n < T);
    const ctx = sizeCanvas(this.canvas, width, l.cssHeight);
    ctx.clearRect(0, 0, width, l.cssHeight);
    ctx.font = `10px ${th.fontFamily}`;
    ctx.textBaseline = 'middle';
    const ramp = [mix(th.bg, th.fg, th.kind === 'light' ? 0.1 : 0.11), th.high];
    const bar = `linear-gradient(to right, ${cssRgba(ramp[0]!)}, ${cssRgba(rampAt(ramp, 0.5))}, ${cssRgba(ramp[1]!)})`;
    if (bar !== this.legendBarBackground) this.legendBar.style.background = this.legendBarBackground = bar;
    // Plot frame (upper triangle included, so the causal shape reads against the background).
    ctx.strokeStyle = cssRgba(th.border ?? mix(th.bg, th.fg, 0.25));
    ctx.lineWidth = 1;
    ctx.strokeRect(l.x - 0.5, l.y - 0.5, l.size + 1, l.size + 1);
    if (this.tiled) {
      this.drawTiles(ctx, l, th, ramp);
      this.drawAxes(ctx, l, th, labels);
      this.drawMarks(ctx, l, th);
      return;
    }
    if (!this.values) {
      setText(this.legendMax, '');
      return;
    }
    const t0 = performance.now();
    const rebuilt = this.ensureImage(l, th, ramp);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.image!, l.x, l.y, l.size, l.size);
    if (rebuilt) {
      this.lastBuildMs = performance.now() - t0;
      performance.measure('attnscope:heatmap-build', { start: t0, detail: { T: this.T, res: l.res } });
    }
    const notes = [this.view.n < T ? 'max in view' : '', this.opts.discountSink ? 'sink excluded' : ''].filter(Boolean);
    setText(this.legendMax, `${formatProb(this.pooled!.max)}${notes.length ? ` (${notes.join(', ')})` : ''}`);
    this.drawAxes(ctx, l, th, labels);
    this.drawMarks(ctx, l, th);
  }

  /** The cursor row and the hovered cell, clipped to the map (and its cursor gutter). */
  private drawMarks(ctx: CanvasRenderingContext2D, l: HeatmapLayout, th: Theme): void {
    ctx.save();
    ctx.beginPath();
    ctx.rect(l.x - 8, l.y - 1, l.size + 9, l.size + 2);
    ctx.clip();
    this.drawCursor(ctx, l, th);
    this.drawHover(ctx, l, th);
    ctx.restore();
  }

  /**
   * Tile mode: asks for the window shown at this size when it is not the one wanted yet, then
   * draws the whole-pattern tile and the last tile (each stretched over its window) under the
   * plot's clip, the tile answering the view last.
   */
  private drawTiles(ctx: CanvasRenderingContext2D, l: HeatmapLayout, th: Theme, ramp: RGBA[]): void {
    const req = tileRequest(this.view, l.res);
    if (!sameRequest(req, this.wanted)) {
      this.wanted = req;
      if (this.tile && !tileAnswers(this.tile, req) && this.note.hidden) this.setNote({ kind: 'ready' });
      this.cb.onTile?.(req);
    }
    const v = this.view;
    const s = l.size / v.n;
    const t0 = performance.now();
    let rebuilt = false;
    ctx.save();
    ctx.beginPath();
    ctx.rect(l.x, l.y, l.size, l.size);
    ctx.clip();
    ctx.imageSmoothingEnabled = false;
    let shown: { tile: Tile; max: number } | null = null;
    for (const t of this.tile === this.fullTile ? [this.tile] : [this.fullTile, this.tile]) {
      if (!t) continue;
      const img = this.tileImage(t, th, ramp);
      rebuilt ||= img.fresh;
      ctx.drawImage(img.canvas, l.x + (t.k0 - v.k0) * s, l.y + (t.q0 - v.q0) * s, (t.k1 - t.k0) * s, (t.q1 - t.q0) * s);
      shown = { tile: t, max: img.max };
    }
    ctx.restore();
    if (rebuilt) {
      this.lastBuildMs = performance.now() - t0;
      performance.measure('attnscope:heatmap-build', { start: t0, detail: { T: this.T, res: l.res, tile: true } });
    }
    if (!shown) {
      setText(this.legendMax, '');
      return;
    }
    const exactView = !!this.wanted && tileAnswers(shown.tile, this.wanted);
    // while a window loads, the scale is the stretched tile's (its own max), not the view's
    const notes = [exactView ? poolCaption(shown.tile) : 'loading this window…', exactView && v.n < this.T ? 'max in view' : '', this.opts.discountSink ? 'sink excluded' : ''].filter(Boolean);
    setText(this.legendMax, `${formatProb(shown.max)}${notes.length ? ` (${notes.join(', ')})` : ''}`);
  }

  /** A tile colored into a canvas of rows × cols pixels (cached per tile, scale, sink option and theme). */
  private tileImage(t: Tile, th: Theme, ramp: RGBA[]): { canvas: HTMLCanvasElement; max: number; fresh: boolean } {
    const key = `${this.opts.kind}|${this.opts.discountSink}|${this.themeGen}`;
    const hit = this.tileImages.get(t);
    if (hit && hit.key === key) return { ...hit, fresh: false };
    const mask = sinkMask(this.T, this.tokens.length === this.T ? this.tokens.map((x) => x.special) : null, this.opts.discountSink);
    const cells = tileCells(t, mask);
    const canvas = hit?.canvas ?? document.createElement('canvas');
    canvas.width = cells.cols;
    canvas.height = cells.rows;
    const ictx = canvas.getContext('2d')!;
    const data = ictx.createImageData(cells.cols, cells.rows);
    colorize(cells, this.opts.kind, rampUint32(ramp, 256), packABGR([th.bg[0], th.bg[1], th.bg[2], 0]), new Uint32Array(data.data.buffer));
    ictx.putImageData(data, 0, 0);
    this.tileImages.set(t, { key, canvas, max: cells.max });
    return { canvas, max: cells.max, fresh: true };
  }

  private ensureImage(l: HeatmapLayout, th: Theme, ramp: RGBA[]): boolean {
    const T = this.T;
    const v = this.view;
    const pk = `${l.res}|${this.opts.discountSink}|${v.q0},${v.k0},${v.n}`;
    if (!this.pooled || this.pooledKey !== pk) {
      const mask = sinkMask(T, this.tokens.length === T ? this.tokens.map((t) => t.special) : null, this.opts.discountSink);
      this.pooled = poolPattern(this.values!, T, l.res, mask, v);
      this.pooledKey = pk;
      this.imageKey = '';
    }
    const ik = `${pk}|${this.opts.kind}|${this.themeGen}`;
    if (this.image && this.imageKey === ik) return false;
    const R = this.pooled.res;
    const img = this.image ?? document.createElement('canvas');
    img.width = R;
    img.height = R;
    const ictx = img.getContext('2d')!;
    const data = ictx.createImageData(R, R);
    colorize(this.pooled, this.opts.kind, rampUint32(ramp, 256), packABGR([th.bg[0], th.bg[1], th.bg[2], 0]), new Uint32Array(data.data.buffer));
    ictx.putImageData(data, 0, 0);
    this.image = img;
    this.imageKey = ik;
    return true;
  }

  private drawAxes(ctx: CanvasRenderingContext2D, l: HeatmapLayout, th: Theme, labels: boolean): void {
    const { q0, k0, n } = this.view;
    const s = l.size / n;
    ctx.fillStyle = cssRgba(th.muted);
    if (labels) {
      const fs = Math.min(11, Math.floor(s) - 1);
      ctx.font = `${fs}px ${th.fontFamily}`;
      ctx.textAlign = 'right';
      for (let i = 0; i < n; i++) {
        const q = q0 + i;
        const k = k0 + i;
        const tq = this.tokens[q];
        const tk = this.tokens[k];
        if (tq) {
          ctx.fillStyle = cssRgba(q === this.hover?.q || q === this.cursor ? th.fg : th.muted);
          ctx.fillText(truncateLabel(visibleToken(tq.text), 10), l.x - 4, l.y + (i + 0.5) * s);
        }
        if (tk) {
          ctx.save();
          ctx.translate(l.x + (i + 0.5) * s, l.y + l.size + 4);
          ctx.rotate(-Math.PI / 2);
          ctx.fillStyle = cssRgba(k === this.hover?.k ? th.fg : th.muted);
          ctx.fillText(truncateLabel(visibleToken(tk.text), 10), 0, 0);
          ctx.restore();
        }
      }
      return;
    }
    ctx.textAlign = 'right';
    for (const t of axisTicks(n, 6, q0)) ctx.fillText(String(t), l.x - 4, l.y + (t - q0 + 0.5) * s);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of axisTicks(n, 6, k0)) ctx.fillText(String(t), l.x + (t - k0 + 0.5) * s, l.y + l.size + 4);
    ctx.textBaseline = 'middle';
  }

  /** The cursor token's row: a dashed band over its causal part and a marker on the axis. */
  private drawCursor(ctx: CanvasRenderingContext2D, l: HeatmapLayout, th: Theme): void {
    const q = this.cursor;
    const v = this.view;
    if (q === null || q >= this.T || q < v.q0 || q >= v.q0 + v.n) return;
    const r = cellRect(q, v.k0, l, this.T, v);
    const lastK = Math.min(q, v.k0 + v.n - 1);
    if (lastK >= v.k0) {
      ctx.strokeStyle = cssRgba(th.focus, 0.9);
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(l.x + 0.5, r.y - 0.5, r.w * (lastK - v.k0 + 1) - 1, Math.max(1, r.h) + 1);
      ctx.setLineDash([]);
    }
    ctx.fillStyle = cssRgba(th.focus);
    ctx.beginPath();
    const cy = r.y + r.h / 2;
    ctx.moveTo(l.x - 1, cy);
    ctx.lineTo(l.x - 6, cy - 4);
    ctx.lineTo(l.x - 6, cy + 4);
    ctx.fill();
  }

  private drawHover(ctx: CanvasRenderingContext2D, l: HeatmapLayout, th: Theme): void {
    const h = this.hover;
    if (!h) return;
    const b = this.hoverBlock;
    const r = cellRect(h.q, h.k, l, this.T, this.view);
    if (b && (b.qb > b.qa || b.kb > b.ka)) {
      // a pooled block: outline the tokens it covers
      const a = cellRect(b.qa, b.ka, l, this.T, this.view);
      r.x = a.x;
      r.y = a.y;
      r.w = a.w * (b.kb - b.ka + 1);
      r.h = a.h * (b.qb - b.qa + 1);
    }
    ctx.strokeStyle = cssRgba(th.fg, 0.35);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(l.x, r.y + r.h / 2);
    ctx.lineTo(r.x, r.y + r.h / 2);
    ctx.moveTo(r.x + r.w / 2, r.y + r.h);
    ctx.lineTo(r.x + r.w / 2, l.y + l.size);
    ctx.stroke();
    ctx.strokeStyle = cssRgba(th.focus);
    ctx.lineWidth = 2;
    const pad = r.w < 6 ? 3 : 1;
    ctx.strokeRect(r.x - pad, r.y - pad, r.w + 2 * pad, r.h + 2 * pad);
  }

  private renderStatus(): void {
    // clamped to two lines (components.css .status-line): the whole text is also the tooltip
    const set = (text: string) => {
      setText(this.status, text);
      if (this.status.title !== text) this.status.title = text;
    };
    const h = this.hover;
    if (!this.head || !this.hasData()) {
      set(this.head ? '' : 'Select a head to see its pattern.');
      return;
    }
    if (!h) {
      const { q0, k0, n } = this.view;
      const zoom = n < this.T ? ` · showing queries ${q0}–${q0 + n - 1}, keys ${k0}–${k0 + n - 1}` : '';
      set(`${headLabel(this.head)} · ${this.T} tokens${zoom} · rows = query, columns = key · ${this.pageScrolls() ? 'ctrl+wheel' : 'wheel'} to zoom, drag to pan · click a row to move the editor cursor`);
      return;
    }
    const tok = (i: number): string => `#${i} “${truncateLabel(visibleToken(this.tokens[i]?.text ?? '?'), 24)}”`;
    if (this.tiled) {
      const b = this.hoverBlock;
      if (!b) {
        set(`${headLabel(this.head)} · query ${tok(h.q)} → key ${tok(h.k)} · loading…`);
        return;
      }
      const range = (a: number, z: number, what: string): string => (a === z ? `${what} ${tok(a)}` : `${what === 'query' ? 'queries' : 'keys'} ${a}–${z}`);
      const pooled = b.qb > b.qa || b.kb > b.ka;
      set(`${headLabel(this.head)} · ${range(b.qa, b.qb, 'query')} → ${range(b.ka, b.kb, 'key')} · ${pooled ? `max ${formatProb(b.value)}` : formatProb(b.value)}`);
      return;
    }
    const v = this.values![h.q * this.T + h.k]!;
    set(`${headLabel(this.head)} · query ${tok(h.q)} → key ${tok(h.k)} · ${formatProb(v)}`);
  }
}
