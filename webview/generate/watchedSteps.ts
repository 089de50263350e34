// The watched tokens of a Generation lane (`.gen-watched`): for each watched token a sparkline of
// its probability at every generated step (one scale per token, shared by both lanes so the lanes
// compare by eye; hover a point for its value) and the final step's probability as a number.
//
// Props: tokens (watched when the generation started), steps (per generated token: the watched
// probabilities, in `tokens` order), scale (per watched token: the largest probability in either
// lane, the top of its sparkline).
import type { WatchedToken } from '../../src/shared/watch';
import { el } from '../components/el';
import { visibleToken } from '../logic/tokenText';
import { formatWatchProb } from '../compare/compareLogic';

const SVG = 'http://www.w3.org/2000/svg';
const W = 140;
const H = 22;

/** The sparkline's points: x evenly over the steps, y = prob / top (0 at the bottom). */
export function sparkPoints(values: readonly number[], top: number, width = W, height = H): string {
  const n = values.length;
  const t = top > 0 ? top : 1;
  return values
    .map((v, i) => {
      const x = n === 1 ? width / 2 : (i / (n - 1)) * (width - 2) + 1;
      const y = height - 1 - (Math.min(1, Math.max(0, v / t)) * (height - 2));
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

export function watchedSteps(p: { tokens: readonly WatchedToken[]; steps: readonly number[][]; scale: readonly number[]; texts: readonly string[] }): HTMLElement {
  const box = el('div', 'gen-watched');
  if (p.tokens.length === 0) return box;
  const table = el('table', 'gw-table');
  p.tokens.forEach((t, w) => {
    const vals = p.steps.map((s) => s[w]!).filter((v) => Number.isFinite(v));
    const tr = el('tr');
    tr.dataset.id = String(t.id);
    const tok = el('td', 'gw-tok');
    const c = el('code', 'tok', visibleToken(t.text));
    c.title = `token ${t.id} ${JSON.stringify(t.text)}`;
    tok.append(c);
    const sp = el('td', 'gw-spark');
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('width', String(W));
    svg.setAttribute('height', String(H));
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `probability of ${visibleToken(t.text)} at each of ${vals.length} steps, from ${formatWatchProb(vals[0] ?? NaN)} to ${formatWatchProb(vals[vals.length - 1] ?? NaN)}`);
    const base = document.createElementNS(SVG, 'line');
    base.setAttribute('x1', '0');
    base.setAttribute('x2', String(W));
    base.setAttribute('y1', String(H - 0.5));
    base.setAttribute('y2', String(H - 0.5));
    base.setAttribute('class', 'gw-base');
    svg.append(base);
    if (vals.length) {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', sparkPoints(vals, p.scale[w] ?? 1));
      line.setAttribute('class', 'gw-line');
      svg.append(line);
      // one hover target per step: the step's token and the watched token's probability there
      const n = vals.length;
      vals.forEach((v, i) => {
        const r = document.createElementNS(SVG, 'rect');
        const x0 = n === 1 ? 0 : (i / (n - 1)) * (W - 2) + 1 - (W - 2) / (2 * (n - 1));
        r.setAttribute('x', String(Math.max(0, x0)));
        r.setAttribute('y', '0');
        r.setAttribute('width', String(n === 1 ? W : (W - 2) / (n - 1)));
        r.setAttribute('height', String(H));
        r.setAttribute('class', 'gw-hit');
        const title = document.createElementNS(SVG, 'title');
        title.textContent = `step ${i + 1} (${JSON.stringify(p.texts[i] ?? '')}): p(${visibleToken(t.text)}) = ${formatWatchProb(v)}`;
        r.append(title);
        svg.append(r);
      });
    }
    sp.append(svg);
    sp.title = `top of the line: ${formatWatchProb(p.scale[w] ?? NaN)} (the largest in either side)`;
    const last = vals[vals.length - 1];
    const fin = el('td', 'gw-final num', last === undefined ? '—' : formatWatchProb(last));
    fin.title = last === undefined ? 'no step yet' : `at the last step (${vals.length}): p = ${last.toPrecision(6)}`;
    tr.append(tok, sp, fin);
    table.append(tr);
  });
  box.append(el('div', 'gw-title muted', 'Watched tokens: probability at each step · last step'), table);
  return box;
}
