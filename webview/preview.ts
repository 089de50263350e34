// Preview harness entry (development and screenshots only; not part of the extension build):
// installs the fake host, then loads the real panel, and adds a small theme/scenario switcher.
// Build: npx esbuild webview/preview.ts --bundle --format=esm --outfile=/tmp/wvpreview/preview.js
import { fakeHost, T_TOKENS } from './preview/fakeHost';
import { applyTheme, THEMES } from './preview/themes';

const params = new URLSearchParams(location.search);
applyTheme(params.get('theme') ?? 'dark');
await import('./main');

const nextFrame = (): Promise<number> => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
const afterPaint = (): Promise<number> => new Promise((r) => requestAnimationFrame(() => setTimeout(() => r(performance.now()), 0)));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(make: (i: number) => unknown, n: number): Promise<Record<string, number | null>> {
  performance.clearMeasures();
  const h: number[] = [];
  const f: number[] = [];
  const p: number[] = [];
  for (let i = 0; i < n; i++) {
    const env = make(i);
    await afterPaint();
    const t0 = performance.now();
    window.dispatchEvent(new MessageEvent('message', { data: env }));
    h.push(performance.now() - t0);
    f.push((await nextFrame()) - t0);
    p.push((await afterPaint()) - t0);
  }
  const own = (name: string): number[] => performance.getEntriesByName(name).slice(-n).map((e) => e.duration);
  const o = own('attnscope:overlay-apply');
  const b = own('attnscope:heatmap-build');
  performance.clearMeasures();
  return { handlerMs: median(h), frameMs: median(f), paintedMs: median(p), n, overlayApplyMs: o.length ? median(o) : null, heatmapBuildMs: b.length ? median(b) : null };
}

const api = {
  fakeHost,
  tokens: T_TOKENS,
  setTheme: applyTheme,
  /** overlay message → next frame, at the fixture's token count (cursor walks the prompt) */
  measureOverlay: (n = 20) => measure((i) => fakeHost.overlayEnvelope(Math.floor(((i + 1) * (T_TOKENS - 1)) / (n + 1))), n),
  /** pattern message of the selected head → drawn (pool + colorize + blit happen in that frame) */
  measureHeatmap: (n = 8) => measure(() => fakeHost.patternEnvelope(fakeHost.state.selected ?? { layer: 2, head: 5 }), n),
};
(window as unknown as { __preview: typeof api }).__preview = api;

if (params.get('chrome') !== '0') {
  const bar = document.createElement('div');
  bar.className = 'preview-bar';
  const add = (label: string, fn: () => void): void => {
    const b = document.createElement('button');
    b.textContent = label;
    b.addEventListener('click', fn);
    bar.appendChild(b);
  };
  for (const name of Object.keys(THEMES)) add(name, () => applyTheme(name));
  add(T_TOKENS > 100 ? '60 tokens' : '2,000 tokens', () => {
    const u = new URL(location.href);
    u.searchParams.set('tokens', T_TOKENS > 100 ? '60' : '2000');
    location.href = u.toString();
  });
  add('error', () => fakeHost.sendError('The engine worker stopped: CUDA out of memory (simulated).'));
  add('busy', () => fakeHost.setBusy(fakeHost.state.busy ? null : 'Loading model…'));
  document.body.appendChild(bar);
}
