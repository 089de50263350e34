// A figure as a flat list of shapes (rects, text, lines): drawn as SVG markup here (sceneToSvg, pure
// string building, every text escaped) and on a canvas by the panel for PNG
// (webview/logic/drawScene.ts). One description, two renderers, so SVG and PNG agree.

export interface RectShape {
  kind: 'rect';
  x: number;
  y: number;
  w: number;
  h: number;
  /** "#rrggbb" or 'none' */
  fill: string;
  stroke?: string;
  strokeWidth?: number;
  /** a tooltip in SVG viewers (<title>); not drawn */
  title?: string;
}

export interface TextShape {
  kind: 'text';
  x: number;
  y: number;
  text: string;
  /** px */
  size: number;
  fill: string;
  anchor?: 'start' | 'middle' | 'end';
  /** vertical placement of y: the text's middle or its alphabetic baseline (default) */
  baseline?: 'middle' | 'alphabetic';
  bold?: boolean;
  /** degrees, clockwise, about (x, y) */
  rotate?: number;
  mono?: boolean;
}

export interface LineShape {
  kind: 'line';
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  stroke: string;
  width: number;
}

export type Shape = RectShape | TextShape | LineShape;

export interface Scene {
  /** CSS px */
  width: number;
  height: number;
  background: string;
  fontFamily: string;
  /** document title and description (SVG <title>/<desc>, accessibility) */
  title: string;
  desc: string;
  shapes: Shape[];
}

export const MONO_FONT = 'Menlo, Consolas, "DejaVu Sans Mono", monospace';

/** Characters XML 1.0 cannot hold at all (C0 controls but tab/LF/CR, U+FFFE/FFFF, lone surrogates). */
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Text for XML/HTML content and attribute values: markup characters escaped, unrepresentable characters replaced by U+FFFD. */
export function escapeXml(s: string): string {
  return s.replace(XML_INVALID, '\ufffd').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A coordinate with at most 2 decimals ("12", "12.5", "12.33"). */
export function fmt(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 100) / 100) : '0';
}

function textAttrs(t: TextShape): string {
  const a = [`x="${fmt(t.x)}"`, `y="${fmt(t.y)}"`, `font-size="${fmt(t.size)}"`, `fill="${t.fill}"`];
  if (t.anchor && t.anchor !== 'start') a.push(`text-anchor="${t.anchor}"`);
  if (t.baseline === 'middle') a.push('dominant-baseline="central"');
  if (t.bold) a.push('font-weight="bold"');
  if (t.mono) a.push(`font-family="${escapeXml(MONO_FONT)}"`);
  if (t.rotate) a.push(`transform="rotate(${fmt(t.rotate)} ${fmt(t.x)} ${fmt(t.y)})"`);
  return a.join(' ');
}

/** The scene as a standalone SVG document (vector markup only; no embedded bitmaps, scripts or styles). */
export function sceneToSvg(s: Scene, opts: { xmlDeclaration?: boolean } = {}): string {
  const out: string[] = [];
  if (opts.xmlDeclaration !== false) out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${fmt(s.width)}" height="${fmt(s.height)}" viewBox="0 0 ${fmt(s.width)} ${fmt(s.height)}" font-family="${escapeXml(s.fontFamily)}" shape-rendering="crispEdges" text-rendering="geometricPrecision" role="img">`,
    `<title>${escapeXml(s.title)}</title>`,
    `<desc>${escapeXml(s.desc)}</desc>`,
    `<rect x="0" y="0" width="${fmt(s.width)}" height="${fmt(s.height)}" fill="${s.background}"/>`,
  );
  for (const sh of s.shapes) {
    if (sh.kind === 'rect') {
      const stroke = sh.stroke ? ` stroke="${sh.stroke}" stroke-width="${fmt(sh.strokeWidth ?? 1)}"` : '';
      const attrs = `x="${fmt(sh.x)}" y="${fmt(sh.y)}" width="${fmt(sh.w)}" height="${fmt(sh.h)}" fill="${sh.fill}"${stroke}`;
      out.push(sh.title ? `<rect ${attrs}><title>${escapeXml(sh.title)}</title></rect>` : `<rect ${attrs}/>`);
    } else if (sh.kind === 'text') {
      out.push(`<text ${textAttrs(sh)}>${escapeXml(sh.text)}</text>`);
    } else {
      out.push(`<line x1="${fmt(sh.x1)}" y1="${fmt(sh.y1)}" x2="${fmt(sh.x2)}" y2="${fmt(sh.y2)}" stroke="${sh.stroke}" stroke-width="${fmt(sh.width)}"/>`);
    }
  }
  out.push('</svg>');
  return out.join('\n');
}

/** A rough text width for layout (no font metrics outside a browser): average glyph ≈ 0.58 em, monospace 0.6 em. */
export function textWidth(text: string, size: number, mono = false): number {
  return [...text].length * size * (mono ? 0.6 : 0.58);
}

/**
 * A token as a figure shows it: newline ⏎, tab ⇥, a token of spaces as middle dots, other
 * control characters as U+FFFD, at most `max` characters (an ellipsis marks a cut).
 */
export function tokenLabel(text: string, max = 12): string {
  let t = text.replace(/\r\n|\n|\r/g, '⏎').replace(/\t/g, '⇥');
  if (t.trim() === '') t = t.replace(/ /g, '·');
  // eslint-disable-next-line no-control-regex
  t = t.replace(/[\u0000-\u001f\u007f]/g, '\ufffd');
  const chars = [...t];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : t;
}

/** One line of a prompt for a figure title: whitespace runs collapsed, cut at `max` characters. */
export function promptExcerpt(prompt: string, max = 70): string {
  const one = prompt.replace(/\s+/g, ' ').trim();
  const chars = [...one];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : one;
}

/** Shapes' bounding check: true when every shape lies inside the scene (a layout test helper and a guard). */
export function shapesInside(s: Scene): boolean {
  return s.shapes.every((sh) =>
    sh.kind === 'rect' ? sh.x >= -0.01 && sh.y >= -0.01 && sh.x + sh.w <= s.width + 0.01 && sh.y + sh.h <= s.height + 0.01 : sh.kind === 'line' ? Math.min(sh.x1, sh.x2) >= 0 && Math.max(sh.x1, sh.x2) <= s.width && Math.min(sh.y1, sh.y2) >= 0 && Math.max(sh.y1, sh.y2) <= s.height : sh.x >= 0 && sh.x <= s.width && sh.y >= 0 && sh.y <= s.height,
  );
}
