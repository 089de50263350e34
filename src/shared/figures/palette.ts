// Figure palettes: the colors an exported figure (SVG, PNG, HTML report) is drawn with. Pure data
// and tiny functions; every color is an opaque "#rrggbb" string so the same scene draws the same in
// SVG markup and on a canvas.
//
// 'paper': theme-independent, for print: white background, viridis (perceptually uniform,
// colorblind-safe; van der Walt & Smith 2015, matplotlib's default) for [0, 1] metrics and attention,
// ColorBrewer RdBu (Brewer 2003) for signed values (importance deltas).
// 'theme': the colors of the panel as the current VS Code theme draws them.

export type PaletteName = 'paper' | 'theme';
export const PALETTE_NAMES: readonly PaletteName[] = ['paper', 'theme'];

export interface Palette {
  name: PaletteName;
  background: string;
  foreground: string;
  /** secondary text (captions, tick labels) */
  muted: string;
  /** cells without a value (n/a) */
  missing: string;
  /** the outline of the selected head */
  selected: string;
  /** sequential ramp (t = 0 low .. 1 high), evenly spaced stops */
  sequential: readonly string[];
  /** diverging ramp (t = 0 most negative .. 1 most positive, middle neutral), evenly spaced stops */
  diverging: readonly string[];
  fontFamily: string;
}

/** matplotlib's viridis sampled at 0, 1/8, …, 1 (the 9-step sample d3-scale-chromatic and matplotlib share). */
export const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'] as const;

/** ColorBrewer RdBu, 11 classes, reversed: blue (negative) → white → red (positive). */
export const RDBU = ['#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b', '#67001f'] as const;

export const PAPER: Palette = {
  name: 'paper',
  background: '#ffffff',
  foreground: '#1a1a1a',
  muted: '#5c5c5c',
  missing: '#e8e8e8',
  selected: '#000000',
  sequential: VIRIDIS,
  diverging: RDBU,
  fontFamily: 'Helvetica, Arial, sans-serif',
};

/** The colors a theme palette is made from (hex strings, as the panel resolves its --vscode-* variables). */
export interface ThemeColors {
  kind: 'dark' | 'light' | 'hc' | 'hc-light';
  bg: string;
  fg: string;
  muted: string;
  /** the panel's color scale ends */
  low: string;
  high: string;
  focus: string;
}

/** VS Code's default colors per theme kind, for a theme export while no panel reports its own. */
export function defaultThemeColors(kind: ThemeColors['kind']): ThemeColors {
  switch (kind) {
    case 'light':
      return { kind, bg: '#ffffff', fg: '#3b3b3b', muted: '#717171', low: '#ffffff', high: '#d18616', focus: '#005fb8' };
    case 'hc':
      return { kind, bg: '#000000', fg: '#ffffff', muted: '#ffffff', low: '#000000', high: '#ffb000', focus: '#f38518' };
    case 'hc-light':
      return { kind, bg: '#ffffff', fg: '#292929', muted: '#292929', low: '#ffffff', high: '#b5200d', focus: '#006bbd' };
    default:
      return { kind: 'dark', bg: '#1f1f1f', fg: '#cccccc', muted: '#9d9d9d', low: '#1f1f1f', high: '#d18616', focus: '#0078d4' };
  }
}

export function themePalette(c: ThemeColors): Palette {
  const dark = c.kind === 'dark' || c.kind === 'hc';
  return {
    name: 'theme',
    background: c.bg,
    foreground: c.fg,
    muted: c.muted,
    missing: mixHex(c.bg, c.fg, 0.12),
    selected: c.focus,
    sequential: [c.low, mixHex(c.low, c.high, 0.5), c.high],
    diverging: [c.focus, mixHex(c.focus, c.bg, 0.5), dark ? mixHex(c.bg, c.fg, 0.08) : c.bg, mixHex(c.high, c.bg, 0.5), c.high],
    fontFamily: 'Segoe UI, Helvetica, Arial, sans-serif',
  };
}

const HEX = /^#[0-9a-f]{6}$/;
export function isHexColor(s: unknown): s is string {
  return typeof s === 'string' && HEX.test(s);
}

function rgb(hex: string): [number, number, number] {
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}
function hex(c: readonly number[]): string {
  return `#${c.map((v) => Math.max(0, Math.min(255, Math.round(v))).toString(16).padStart(2, '0')).join('')}`;
}

/** a → b at t (0..1), in sRGB. */
export function mixHex(a: string, b: string, t: number): string {
  const x = rgb(a);
  const y = rgb(b);
  const u = Math.max(0, Math.min(1, t));
  return hex(x.map((v, i) => v + (y[i]! - v) * u));
}

/** The ramp color at t in 0..1 (linear between evenly spaced stops); NaN → the first stop. */
export function rampColor(stops: readonly string[], t: number): string {
  if (stops.length === 1) return stops[0]!;
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  return mixHex(stops[i]!, stops[i + 1]!, u - i);
}

/** WCAG relative luminance of a hex color. */
export function luminanceHex(c: string): number {
  const f = (v: number): number => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = rgb(c);
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}

/** Black or white, whichever reads better on `bg`. */
export function textOn(bg: string): string {
  return luminanceHex(bg) > 0.36 ? '#000000' : '#ffffff';
}
