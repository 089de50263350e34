// The argument an export command may get, from wherever it was invoked: nothing (the palette), a
// Heads-view node ({kind:'head', layer, head}), the panel's webview context menu
// ({webviewSection, head?: "l.h"}), or a caller's options ({target, format, palette, head, metric};
// the integration tests pass a target path to skip the save dialog). Pure, so it is unit-tested.
import { isMetricName, parseHeadKey, type HeadRef } from '../heads';
import { PALETTE_NAMES, type PaletteName } from './palette';
import type { FigureMetric } from './gridFigure';

export type FigureFormat = 'png' | 'svg';

export interface ExportOptions {
  /** an absolute file path: written without a dialog */
  target?: string;
  format?: FigureFormat;
  palette?: PaletteName;
  head?: HeadRef;
  metric?: FigureMetric;
  /** invoked from the panel's context menu (webviewSection) */
  section?: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads an export command's argument; anything unrecognised is ignored (a command invoked from a menu gets VS Code's own objects). Throws one line for a bad option a caller spelled out. */
export function parseExportArg(arg: unknown): ExportOptions {
  if (!isObj(arg)) return {};
  const out: ExportOptions = {};
  if (arg.kind === 'head' && Number.isInteger(arg.layer) && Number.isInteger(arg.head)) out.head = { layer: arg.layer as number, head: arg.head as number };
  if (typeof arg.webviewSection === 'string') out.section = arg.webviewSection;
  if (arg.head !== undefined && !out.head) {
    const h = typeof arg.head === 'string' ? parseHeadKey(arg.head) : isObj(arg.head) && Number.isInteger(arg.head.layer) && Number.isInteger(arg.head.head) ? { layer: arg.head.layer as number, head: arg.head.head as number } : undefined;
    if (!h) throw new Error(`head ${JSON.stringify(arg.head)} is not a head; use "layer.head" (e.g. "1.0") or {layer, head}`);
    out.head = h;
  }
  if (arg.target !== undefined) {
    if (typeof arg.target !== 'string' || arg.target.length === 0) throw new Error('target must be a file path');
    out.target = arg.target;
  }
  if (arg.format !== undefined) {
    if (arg.format !== 'png' && arg.format !== 'svg') throw new Error(`format ${JSON.stringify(arg.format)} is not png or svg`);
    out.format = arg.format;
  }
  if (arg.palette !== undefined) {
    if (!(PALETTE_NAMES as readonly unknown[]).includes(arg.palette)) throw new Error(`palette ${JSON.stringify(arg.palette)} is not ${PALETTE_NAMES.join(' or ')}`);
    out.palette = arg.palette as PaletteName;
  }
  if (arg.metric !== undefined) {
    if (!(isMetricName(arg.metric) || arg.metric === 'importance')) throw new Error(`metric ${JSON.stringify(arg.metric)} is not a head metric or importance`);
    out.metric = arg.metric as FigureMetric;
  }
  return out;
}

/** The figure format a file name asks for (by extension), or undefined. */
export function formatOfPath(p: string): FigureFormat | undefined {
  const m = /\.(png|svg)$/i.exec(p);
  return m ? (m[1]!.toLowerCase() as FigureFormat) : undefined;
}

/** "notes" from "/a/b/notes.prompt" (a default file name stem). */
export function fileStem(p: string | undefined): string {
  const base = (p ?? '').split(/[\\/]/).pop() ?? '';
  const stem = base.replace(/\.[^.]*$/, '');
  return stem.replace(/[^\w.-]+/g, '_') || 'attnscope';
}
