// Theme colors for canvases and inline tints, read from the --vscode-* variables (through the
// --attn-* aliases in styles.css) at draw time, plus change notification: VS Code swaps the body
// class (vscode-dark / vscode-light / vscode-high-contrast[-light]) and rewrites the variables on
// <html style> when the theme changes.
import { parseCssColor, type RGBA } from './logic/color';

export interface Theme {
  kind: 'dark' | 'light' | 'hc' | 'hc-light';
  bg: RGBA;
  fg: RGBA;
  muted: RGBA;
  /** color scale ends */
  low: RGBA;
  high: RGBA;
  focus: RGBA;
  /** contrastBorder in high-contrast themes, else null */
  border: RGBA | null;
  error: RGBA;
  fontFamily: string;
  /** the peak alpha of a token tint */
  tintAlpha: number;
}

let cached: Theme | null = null;

function resolve(probe: HTMLElement, value: string, fallback: RGBA): RGBA {
  probe.style.color = '';
  probe.style.color = value;
  return parseCssColor(getComputedStyle(probe).color) ?? fallback;
}

export function themeKind(): Theme['kind'] {
  const c = document.body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'hc-light';
  if (c.contains('vscode-high-contrast')) return 'hc';
  if (c.contains('vscode-light')) return 'light';
  return 'dark';
}

/** The current theme (cached until the theme changes). */
export function theme(): Theme {
  if (cached) return cached;
  const probe = document.createElement('span');
  probe.style.display = 'none';
  document.body.appendChild(probe);
  const kind = themeKind();
  const dark = kind === 'dark' || kind === 'hc';
  const bg = resolve(probe, 'var(--attn-bg)', dark ? [30, 30, 30, 1] : [255, 255, 255, 1]);
  const fg = resolve(probe, 'var(--attn-fg)', dark ? [204, 204, 204, 1] : [59, 59, 59, 1]);
  const hasBorder = getComputedStyle(document.documentElement).getPropertyValue('--vscode-contrastBorder').trim() !== '';
  cached = {
    kind,
    bg,
    fg,
    muted: resolve(probe, 'var(--attn-muted)', fg),
    low: resolve(probe, 'var(--attn-low)', bg),
    high: resolve(probe, 'var(--attn-high)', [209, 134, 22, 1]),
    focus: resolve(probe, 'var(--attn-focus)', [0, 120, 212, 1]),
    border: kind === 'hc' || kind === 'hc-light' || hasBorder ? resolve(probe, 'var(--vscode-contrastBorder, var(--attn-fg))', fg) : null,
    error: resolve(probe, 'var(--attn-error)', [248, 81, 73, 1]),
    fontFamily: getComputedStyle(document.body).fontFamily || 'sans-serif',
    tintAlpha: kind === 'light' ? 0.5 : kind === 'dark' ? 0.62 : 0.8,
  };
  probe.remove();
  return cached;
}

/** Calls `cb` (once per animation frame at most) whenever the theme changes. */
export function onThemeChange(cb: () => void): () => void {
  let queued = false;
  const fire = (): void => {
    cached = null;
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      cb();
    });
  };
  const mo = new MutationObserver(fire);
  mo.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  mo.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
  return () => mo.disconnect();
}

/** Canvas backing-store setup: CSS size w × h at the device pixel ratio; returns the context. */
export function sizeCanvas(canvas: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  const bw = Math.max(1, Math.round(w * dpr));
  const bh = Math.max(1, Math.round(h * dpr));
  if (canvas.width !== bw) canvas.width = bw;
  if (canvas.height !== bh) canvas.height = bh;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}
