// Shared pieces of the figure layouts: the title block, wrapped captions and a vertical colorbar.
import type { Palette } from './palette';
import { rampColor } from './palette';
import { textWidth, type Shape } from './scene';

export const PAD = 16;
export const TITLE_SIZE = 15;
export const TEXT_SIZE = 11;
export const SMALL_SIZE = 10;

/** Words of `text` in lines no wider than `width` px at `size` (a word longer than a line is cut with …). */
export function wrapText(text: string, width: number, size: number): string[] {
  const maxChars = Math.max(8, Math.floor(width / (size * 0.58)));
  const lines: string[] = [];
  let cur = '';
  for (const raw of text.split(/\s+/).filter(Boolean)) {
    const word = [...raw].length > maxChars ? `${[...raw].slice(0, maxChars - 1).join('')}…` : raw;
    if (!cur) cur = word;
    else if ([...cur].length + 1 + [...word].length <= maxChars) cur += ` ${word}`;
    else {
      lines.push(cur);
      cur = word;
    }
  }
  if (cur) lines.push(cur);
  return lines;
}

/** Cuts one line to `width` px at `size` with an ellipsis. */
export function fitLine(text: string, width: number, size: number): string {
  const maxChars = Math.max(4, Math.floor(width / (size * 0.58)));
  const chars = [...text];
  return chars.length > maxChars ? `${chars.slice(0, maxChars - 1).join('')}…` : text;
}

/**
 * The header: a bold title line and muted subtitle lines, each cut to the width. Returns the shapes
 * and the y below the block.
 */
export function header(title: string, lines: readonly string[], width: number, p: Palette): { shapes: Shape[]; bottom: number } {
  const shapes: Shape[] = [];
  let y = PAD + TITLE_SIZE;
  shapes.push({ kind: 'text', x: PAD, y, text: fitLine(title, width - 2 * PAD, TITLE_SIZE), size: TITLE_SIZE, fill: p.foreground, bold: true });
  for (const l of lines) {
    y += TEXT_SIZE + 5;
    shapes.push({ kind: 'text', x: PAD, y, text: fitLine(l, width - 2 * PAD, TEXT_SIZE), size: TEXT_SIZE, fill: p.muted });
  }
  return { shapes, bottom: y + 10 };
}

/** Caption lines (wrapped) starting at y; returns the shapes and the y below them. */
export function caption(texts: readonly string[], y: number, width: number, p: Palette): { shapes: Shape[]; bottom: number } {
  const shapes: Shape[] = [];
  for (const t of texts) {
    for (const l of wrapText(t, width - 2 * PAD, SMALL_SIZE)) {
      y += SMALL_SIZE + 4;
      shapes.push({ kind: 'text', x: PAD, y, text: l, size: SMALL_SIZE, fill: p.muted });
    }
  }
  return { shapes, bottom: y };
}

export interface ColorbarSpec {
  x: number;
  y: number;
  height: number;
  /** the ramp's stops (bottom = t 0, top = t 1) */
  stops: readonly string[];
  /** tick positions t in 0..1 with their labels */
  ticks: { t: number; label: string }[];
  title: string;
}

export const COLORBAR_WIDTH = 12;
const BAR_STEPS = 64;

/** A vertical colorbar of stacked rects (vector in SVG, identical on a canvas), ticks on its right. */
export function colorbar(c: ColorbarSpec, p: Palette): { shapes: Shape[]; right: number } {
  const shapes: Shape[] = [];
  const step = c.height / BAR_STEPS;
  for (let i = 0; i < BAR_STEPS; i++) {
    const t = (i + 0.5) / BAR_STEPS;
    // +0.5 px overlap so no hairline seams show between the steps when rasterized
    const y = c.y + c.height - (i + 1) * step;
    shapes.push({ kind: 'rect', x: c.x, y, w: COLORBAR_WIDTH, h: Math.min(step + 0.5, c.y + c.height - y), fill: rampColor(c.stops, t) });
  }
  shapes.push({ kind: 'rect', x: c.x, y: c.y, w: COLORBAR_WIDTH, h: c.height, fill: 'none', stroke: p.muted, strokeWidth: 0.5 });
  let right = c.x + COLORBAR_WIDTH;
  for (const tk of c.ticks) {
    const y = c.y + c.height - tk.t * c.height;
    shapes.push({ kind: 'line', x1: c.x + COLORBAR_WIDTH, y1: y, x2: c.x + COLORBAR_WIDTH + 3, y2: y, stroke: p.muted, width: 0.75 });
    shapes.push({ kind: 'text', x: c.x + COLORBAR_WIDTH + 5, y, text: tk.label, size: SMALL_SIZE, fill: p.foreground, baseline: 'middle' });
    right = Math.max(right, c.x + COLORBAR_WIDTH + 5 + textWidth(tk.label, SMALL_SIZE));
  }
  shapes.push({ kind: 'text', x: c.x, y: c.y - 6, text: c.title, size: SMALL_SIZE, fill: p.foreground });
  right = Math.max(right, c.x + textWidth(c.title, SMALL_SIZE));
  return { shapes, right };
}
