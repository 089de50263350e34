// Parsers for the CLI's compact argument forms. Every failure is a one-line BAD_ARGUMENT error.
import { EngineError } from '../engine/errors';
import type { DeviceRequest } from '../engine/runtime/ortSession';
import type { HeadRef } from '../shared/heads';

/** --emphasize START:END[:alpha] */
export interface EmphasisArg {
  start: number;
  end: number;
  alpha: number;
}

function badArg(flag: string, what: string): EngineError {
  return new EngineError('BAD_ARGUMENT', `${flag}: ${what}`);
}

export function parseHead(s: string, flag: string): HeadRef {
  const m = /^\s*(\d+)\.(\d+)\s*$/.exec(s);
  if (!m) throw badArg(flag, `"${s}" is not a head; write LAYER.HEAD, e.g. 0.3 (zero-based)`);
  return { layer: Number(m[1]), head: Number(m[2]) };
}

export function parseHeadList(s: string, flag: string): HeadRef[] {
  const parts = s.split(',').filter((p) => p.trim() !== '');
  if (!parts.length) throw badArg(flag, 'expected a comma-separated list of LAYER.HEAD, e.g. 0.3,1.2');
  return parts.map((p) => parseHead(p, flag));
}

export function parseScaleList(s: string): { head: HeadRef; value: number }[] {
  const parts = s.split(',').filter((p) => p.trim() !== '');
  if (!parts.length) throw badArg('--scale', 'expected LAYER.HEAD=x pairs, e.g. 0.3=0.5,1.2=2');
  return parts.map((p) => {
    const [h, v, extra] = p.split('=');
    if (v === undefined || extra !== undefined) throw badArg('--scale', `"${p}" is not LAYER.HEAD=x, e.g. 0.3=0.5`);
    const value = Number(v);
    if (v.trim() === '' || !Number.isFinite(value)) throw badArg('--scale', `"${v}" in "${p}" is not a number`);
    return { head: parseHead(h!, '--scale'), value };
  });
}

export function parseEmphasis(s: string): EmphasisArg {
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3) throw badArg('--emphasize', `"${s}" is not START:END[:alpha] (UTF-16 offsets into the prompt)`);
  const [a, b, c] = parts;
  const start = Number(a);
  const end = Number(b);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || a!.trim() === '' || b!.trim() === '') {
    throw badArg('--emphasize', `"${s}": START and END must be integers with 0 ≤ START < END`);
  }
  const alpha = c === undefined ? 0.01 : Number(c);
  if (c !== undefined && (c.trim() === '' || !(alpha > 0) || !Number.isFinite(alpha))) throw badArg('--emphasize', `alpha "${c}" must be a positive number, e.g. 0.01`);
  return { start, end, alpha };
}

export function parseDevice(s: string | undefined): DeviceRequest {
  if (s === undefined) return 'auto';
  if (s === 'auto' || s === 'cpu' || s === 'cuda') return s;
  throw badArg('--device', `"${s}" is not one of auto, cpu, cuda`);
}

export function parsePositiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!/^\s*\d+\s*$/.test(s) || !Number.isSafeInteger(n) || n < 1) throw badArg(flag, `"${s}" must be a positive integer`);
  return n;
}
