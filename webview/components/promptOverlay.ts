// The prompt as token spans, tinted by one value per token (attention from/to the cursor token).
//
// Props: setRun(prompt, tokens, truncated) builds the spans once per run (text between tokens is
// kept as plain text so whitespace and newlines read exactly as in the editor; special tokens such
// as <s> are chips); setValues(values [T], cursor, direction) only restyles the spans whose tint
// level changed (span refs + a level per span), so a cursor move at 2,000 tokens costs a few
// milliseconds; setOptions({discountSink, kind}) changes the color scale; refreshTheme() rebuilds
// the palette. Hover shows the value; click calls onTokenClick(index).
//
// Optional, for pages that tint tokens by their own values (the compare page): setTints(tints [T])
// decorates each span with classes, CSS custom properties, data-* attributes and a native title
// (replacing the previous decoration; the value tint above is unchanged), setOptions({tooltip:
// false}) turns the value tooltip off, and onTokenHover(index | null) reports the token under the
// pointer (null when it leaves the tokens).
import type { Direction, TokenView } from '../../src/shared/protocol';
import { contrast, cssRgba, over } from '../logic/color';
import { formatProb, scaleLevels, scaleMax, sinkMask, type ScaleKind } from '../logic/colorScale';
import { visibleToken } from '../logic/tokenText';
import { theme } from '../theme';
import { hideTooltip, showTooltip } from './tooltip';

export const TINT_LEVELS = 32;
const NO_LEVEL = 255;

export interface PromptOverlayOptions {
  discountSink: boolean;
  kind: ScaleKind;
  /** the value tooltip on hover (default true) */
  tooltip: boolean;
}

/** One token's decoration (setTints): added to the span, removed again by the next setTints. */
export interface TokenTint {
  classes?: readonly string[];
  /** CSS custom properties, e.g. {'--kl': '0.4'} */
  vars?: Readonly<Record<string, string>>;
  /** data-* attributes by their dataset name, e.g. {pos: '3'} */
  data?: Readonly<Record<string, string>>;
  /** the span's native tooltip */
  title?: string;
}

export class PromptOverlay {
  readonly el: HTMLDivElement;
  private spans: HTMLSpanElement[] = [];
  private tokens: TokenView[] = [];
  private special: boolean[] = [];
  private levels = new Uint8Array(0);
  private values: Float32Array | null = null;
  private cursor: number | null = null;
  private direction: Direction = 'from';
  private max = 0;
  private bg: string[] = [];
  private fg: string[] = [];
  private opts: PromptOverlayOptions = { discountSink: true, kind: 'sqrt', tooltip: true };
  private tints: readonly (TokenTint | undefined)[] = [];
  private hovered: number | null = null;

  constructor(
    private readonly onTokenClick: (index: number) => void,
    private readonly onTokenHover?: (index: number | null) => void,
  ) {
    this.el = document.createElement('div');
    this.el.className = 'prompt';
    this.el.addEventListener('click', (e) => {
      const i = this.indexOf(e.target);
      if (i !== null) this.onTokenClick(i);
    });
    this.el.addEventListener('mousemove', (e) => {
      const i = this.indexOf(e.target);
      this.hover(i);
      if (!this.opts.tooltip) return;
      if (i === null) hideTooltip();
      else this.tooltip(i, e.clientX, e.clientY);
    });
    this.el.addEventListener('mouseleave', () => {
      this.hover(null);
      hideTooltip();
    });
    this.buildPalette();
  }

  /** Rebuilds the spans for a new run. */
  setRun(prompt: string, tokens: TokenView[], truncated: number): void {
    this.tokens = tokens;
    this.special = tokens.map((t) => t.special);
    this.values = null;
    this.cursor = null;
    this.tints = [];
    const frag = document.createDocumentFragment();
    const spans: HTMLSpanElement[] = new Array<HTMLSpanElement>(tokens.length);
    let pos = 0;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t.start > pos) frag.appendChild(document.createTextNode(prompt.slice(pos, t.start)));
      const s = document.createElement('span');
      s.dataset.i = String(i);
      const from = Math.max(pos, t.start);
      const text = t.special ? '' : prompt.slice(from, t.end);
      if (t.special || text.length === 0) {
        // Special tokens (and byte pieces sharing a character with the previous token) as chips.
        s.className = t.special ? 'tok chip special' : 'tok chip';
        s.textContent = visibleToken(t.text);
      } else {
        s.className = /^[ \t]*\r?\n[\s]*$/.test(text) ? 'tok nl' : 'tok';
        s.textContent = text;
      }
      spans[i] = s;
      frag.appendChild(s);
      pos = Math.max(pos, t.end);
    }
    if (pos < prompt.length) {
      const rest = document.createElement('span');
      rest.className = 'untokenized';
      rest.title = truncated > 0 ? `cut: ${truncated} token(s) past the token limit were not run` : 'not tokenized';
      rest.textContent = prompt.slice(pos);
      frag.appendChild(rest);
    }
    this.spans = spans;
    this.levels = new Uint8Array(tokens.length).fill(NO_LEVEL);
    this.el.replaceChildren(frag);
    this.markExcluded();
    this.apply();
  }

  /** New overlay values (null clears the tint); `cursor` is outlined. */
  setValues(values: Float32Array | null, cursor: number | null, direction: Direction): void {
    if (values && values.length !== this.tokens.length) values = null;
    if (this.cursor !== cursor) {
      if (this.cursor !== null) this.spans[this.cursor]?.classList.remove('cursor');
      if (cursor !== null) this.spans[cursor]?.classList.add('cursor');
      this.cursor = cursor;
    }
    this.values = values;
    this.direction = direction;
    this.apply();
  }

  /** Per-token decorations (index = token); undefined entries and tokens past the end get none. */
  setTints(tints: readonly (TokenTint | undefined)[]): void {
    for (let i = 0; i < this.spans.length; i++) {
      const old = this.tints[i];
      const next = tints[i];
      if (old === next) continue;
      const s = this.spans[i]!;
      if (old) {
        if (old.classes) s.classList.remove(...old.classes);
        for (const k of Object.keys(old.vars ?? {})) s.style.removeProperty(k);
        for (const k of Object.keys(old.data ?? {})) delete s.dataset[k];
        if (old.title !== undefined) s.removeAttribute('title');
      }
      if (next) {
        if (next.classes) s.classList.add(...next.classes);
        for (const [k, v] of Object.entries(next.vars ?? {})) s.style.setProperty(k, v);
        for (const [k, v] of Object.entries(next.data ?? {})) s.dataset[k] = v;
        if (next.title !== undefined) s.title = next.title;
      }
    }
    this.tints = tints;
  }

  setOptions(o: Partial<PromptOverlayOptions>): void {
    const changedDiscount = o.discountSink !== undefined && o.discountSink !== this.opts.discountSink;
    this.opts = { ...this.opts, ...o };
    if (changedDiscount) this.markExcluded();
    this.apply();
  }

  refreshTheme(): void {
    this.buildPalette();
    this.levels.fill(NO_LEVEL);
    this.apply();
  }

  /** Scrolls the cursor token into view (when it is outside). */
  revealCursor(): void {
    if (this.cursor === null) return;
    const s = this.spans[this.cursor];
    if (!s) return;
    const r = s.getBoundingClientRect();
    const c = this.el.getBoundingClientRect();
    if (r.top < c.top || r.bottom > c.bottom) this.el.scrollTop += r.top - c.top - c.height / 3;
  }

  private buildPalette(): void {
    const th = theme();
    this.bg = [''];
    this.fg = [''];
    for (let l = 1; l <= TINT_LEVELS; l++) {
      const alpha = th.tintAlpha * (0.12 + (0.88 * l) / TINT_LEVELS);
      const tint = cssRgba(th.high, alpha);
      const solid = over([th.high[0], th.high[1], th.high[2], alpha], th.bg);
      // Keep the text readable on strong tints: switch to the background color when it contrasts more.
      const fg = contrast(th.fg, solid) >= 4.5 || contrast(th.fg, solid) >= contrast(th.bg, solid) ? '' : cssRgba(th.bg, 1);
      this.bg.push(tint);
      this.fg.push(fg);
    }
  }

  private markExcluded(): void {
    const mask = sinkMask(this.tokens.length, this.special, this.opts.discountSink);
    for (let i = 0; i < this.spans.length; i++) this.spans[i]!.classList.toggle('excluded', mask[i] === 1);
  }

  private apply(): void {
    const t0 = performance.now();
    const n = this.spans.length;
    let levels: Uint8Array;
    if (this.values) {
      const mask = sinkMask(n, this.special, this.opts.discountSink);
      this.max = scaleMax(this.values, mask);
      levels = scaleLevels(this.values, this.max, this.opts.kind, TINT_LEVELS);
    } else {
      this.max = 0;
      levels = new Uint8Array(n);
    }
    const cur = this.levels;
    for (let i = 0; i < n; i++) {
      const l = levels[i]!;
      if (cur[i] === l) continue;
      cur[i] = l;
      const st = this.spans[i]!.style;
      st.backgroundColor = this.bg[l]!;
      st.color = this.fg[l]!;
    }
    performance.measure('attnscope:overlay-apply', { start: t0, detail: { T: n } });
  }

  private hover(i: number | null): void {
    if (i === this.hovered) return;
    this.hovered = i;
    this.onTokenHover?.(i);
  }

  private indexOf(target: EventTarget | null): number | null {
    if (!(target instanceof HTMLElement)) return null;
    const i = target.dataset.i;
    if (i === undefined) return null;
    const n = Number(i);
    return Number.isInteger(n) && n >= 0 && n < this.tokens.length ? n : null;
  }

  private tooltip(i: number, x: number, y: number): void {
    const t = this.tokens[i]!;
    const rows: [string, string][] = [['token', `#${i} · id ${t.id}`]];
    if (this.values && this.cursor !== null) {
      const label = this.direction === 'from' ? `from #${this.cursor}` : `to #${this.cursor}`;
      const v = this.values[i]!;
      const causal = this.direction === 'from' ? i <= this.cursor : i >= this.cursor;
      rows.push([label, causal ? formatProb(v) : '— (causal)']);
      if (this.max > 0 && causal) rows.push(['of scale max', `${Math.round((Math.min(v, this.max) / this.max) * 100)}%`]);
    }
    if (this.spans[i]!.classList.contains('excluded')) rows.push(['scale', 'excluded (sink/special)']);
    showTooltip(x, y, { title: `“${visibleToken(t.text)}”${t.special ? ' (special)' : ''}`, rows, hint: 'click: move the editor cursor here' });
  }
}
