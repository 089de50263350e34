// Colors as plain RGBA tuples: parsing of the strings getComputedStyle returns, mixing, and ramps
// for canvases. DOM-free (the DOM side reads the CSS variables and hands the strings over).

/** r, g, b in 0..255, a in 0..1 */
export type RGBA = [number, number, number, number];

const clamp255 = (v: number): number => Math.max(0, Math.min(255, Math.round(v)));

/**
 * Parses `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, `rgb(r, g, b)`, `rgba(r, g, b, a)` and the space
 * syntax `rgb(r g b / a)` (channels may be percentages). Anything else: null.
 */
export function parseCssColor(input: string): RGBA | null {
  const s = input.trim().toLowerCase();
  if (s.startsWith('#')) {
    const h = s.slice(1);
    if (!/^[0-9a-f]+$/.test(h)) return null;
    if (h.length === 3 || h.length === 4) {
      const c = [...h].map((x) => parseInt(x + x, 16));
      return [c[0]!, c[1]!, c[2]!, h.length === 4 ? c[3]! / 255 : 1];
    }
    if (h.length === 6 || h.length === 8) {
      const c = [0, 2, 4, 6].map((i) => parseInt(h.slice(i, i + 2), 16));
      return [c[0]!, c[1]!, c[2]!, h.length === 8 ? c[3]! / 255 : 1];
    }
    return null;
  }
  const m = /^rgba?\(([^)]*)\)$/.exec(s);
  if (!m) return null;
  const parts = m[1]!.split(/[\s,/]+/).filter((p) => p.length > 0);
  if (parts.length !== 3 && parts.length !== 4) return null;
  const chan = (p: string, max: number): number => {
    const pct = p.endsWith('%');
    const v = parseFloat(pct ? p.slice(0, -1) : p);
    if (!Number.isFinite(v)) return NaN;
    return pct ? (v / 100) * max : v;
  };
  const r = chan(parts[0]!, 255);
  const g = chan(parts[1]!, 255);
  const b = chan(parts[2]!, 255);
  const a = parts.length === 4 ? chan(parts[3]!, 1) : 1;
  if (![r, g, b, a].every(Number.isFinite)) return null;
  return [clamp255(r), clamp255(g), clamp255(b), Math.max(0, Math.min(1, a))];
}

/** Linear interpolation a → b at t in 0..1 (alpha included). */
export function mix(a: RGBA, b: RGBA, t: number): RGBA {
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
  return [
    clamp255(a[0] + (b[0] - a[0]) * u),
    clamp255(a[1] + (b[1] - a[1]) * u),
    clamp255(a[2] + (b[2] - a[2]) * u),
    a[3] + (b[3] - a[3]) * u,
  ];
}

/** Composites a (possibly translucent) color over an opaque background. */
export function over(c: RGBA, bg: RGBA): RGBA {
  return [clamp255(c[0] * c[3] + bg[0] * (1 - c[3])), clamp255(c[1] * c[3] + bg[1] * (1 - c[3])), clamp255(c[2] * c[3] + bg[2] * (1 - c[3])), 1];
}

export function cssRgba(c: RGBA, alpha: number = c[3]): string {
  const a = Math.round(Math.max(0, Math.min(1, alpha)) * 1000) / 1000;
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${a})`;
}

/** WCAG relative luminance, 0 (black) .. 1 (white). */
export function luminance(c: RGBA): number {
  const f = (v: number): number => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}

/** WCAG contrast ratio of two opaque colors (1..21). */
export function contrast(a: RGBA, b: RGBA): number {
  const la = luminance(a);
  const lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/**
 * A ramp of `n` opaque colors from `stops[0]` to the last stop (evenly spaced stops), packed as
 * little-endian ABGR uint32 so a canvas ImageData can be filled through a Uint32Array view.
 */
export function rampUint32(stops: readonly RGBA[], n = 256): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rampAt(stops, n === 1 ? 1 : i / (n - 1));
    out[i] = packABGR(c);
  }
  return out;
}

/** The ramp color at t in 0..1 (opaque: stops are composited as given). */
export function rampAt(stops: readonly RGBA[], t: number): RGBA {
  if (stops.length === 0) return [0, 0, 0, 1];
  if (stops.length === 1) return stops[0]!;
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  return mix(stops[i]!, stops[i + 1]!, u - i);
}

export function packABGR(c: RGBA): number {
  return ((clamp255(c[3] * 255) << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
}
