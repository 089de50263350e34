// Typed access to the attnscope.* settings.
import * as vscode from 'vscode';
import type { DeviceRequest } from '../engine/runtime/ortSession';
import { AGGREGATIONS, type Aggregation, type Direction } from '../shared/protocol';
import type { ColorScale } from '../shared/overlay';

export interface Settings {
  model: string;
  device: DeviceRequest;
  aggregation: Aggregation;
  direction: Direction;
  colorScale: ColorScale;
  discountSink: boolean;
  /** prompts are cut to this many tokens; 0 = automatic (the model's max positions, or what fits in memory) */
  maxTokens: number;
  rerunOnSave: boolean;
  /** where compiled models are cached (extension global storage); undefined = engine default */
  cacheRoot?: string;
}

let cacheRoot: string | undefined;
export function setCacheRoot(dir: string): void {
  cacheRoot = dir;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], fallback: T): T {
  return allowed.includes(v as T) ? (v as T) : fallback;
}

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration('attnscope');
  const maxTokens = Number(c.get('maxTokens', 0));
  return {
    model: String(c.get('model', '') ?? '').trim(),
    device: oneOf(c.get('device'), ['auto', 'cpu', 'cuda'] as const, 'auto'),
    aggregation: oneOf(c.get('overlay.aggregation'), AGGREGATIONS, 'mean'),
    direction: oneOf(c.get('overlay.direction'), ['from', 'to'] as const, 'from'),
    colorScale: oneOf(c.get('overlay.colorScale'), ['linear', 'sqrt', 'log'] as const, 'sqrt'),
    discountSink: c.get<boolean>('overlay.discountSink', true) !== false,
    maxTokens: Number.isInteger(maxTokens) && maxTokens >= 2 ? maxTokens : 0,
    rerunOnSave: c.get<boolean>('rerunOnSave', true) !== false,
    cacheRoot: String(c.get('cacheRoot', '') ?? '').trim() || cacheRoot,
  };
}
