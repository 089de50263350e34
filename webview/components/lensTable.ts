// The logit lens at the cursor token (nostalgebraist 2020): one row per layer boundary — the
// embeddings, after each block, and the output (equal to the next-token list at the last token) —
// with that layer's top-K tokens and probabilities, and the rank of each watched token.
//
// Props (setProps): layers (LensLayerView[] or null), status ('idle' | 'loading' | 'error' |
// 'ready' with a message), token (the cursor token's text and index), watched (the watch list, for
// the rank columns' headings), topK (columns shown, 1..10). Callback: onTopK(k).
import './research.css';
import type { LensLayerView, WatchedToken } from '../../src/shared/protocol';
import { formatProb } from '../logic/colorScale';
import { visibleToken } from '../logic/tokenText';
import { el } from './el';
import { formatSmallProb, tokenChip } from './watchedTokens';

export type LensStatus = { kind: 'idle' | 'loading' | 'ready' } | { kind: 'error'; message: string };

export interface LensProps {
  layers: LensLayerView[] | null;
  status: LensStatus;
  token: { index: number; text: string } | null;
  watched: WatchedToken[];
  topK: number;
}

export const LENS_TOPK_CHOICES = [3, 5, 10] as const;

/** "emb", "L0" … "L{n−1}": the row of layer boundary l (0 = the embeddings, l = after block l−1). */
export function lensRowLabel(l: number, L: number): { text: string; title: string } {
  if (l === 0) return { text: 'emb', title: 'layer 0: the embeddings, read through the final norm and unembedding' };
  return { text: `L${l - 1}`, title: l === L ? `after the last block (L${l - 1}): the model’s own prediction` : `the residual stream after block L${l - 1}, read through the final norm and unembedding` };
}

export class LensTable {
  readonly el: HTMLDivElement;
  private readonly head: HTMLDivElement;
  private readonly status: HTMLDivElement;
  private readonly scroll: HTMLDivElement;
  private readonly k: HTMLSelectElement;
  private props: LensProps = { layers: null, status: { kind: 'idle' }, token: null, watched: [], topK: 5 };
  private rendered = false;

  constructor(onTopK: (k: number) => void) {
    this.el = el('div', 'lens');
    this.head = el('div', 'lens-controls');
    const label = el('label', 'ctl-label', 'Show');
    this.k = el('select');
    this.k.id = 'lens-topk';
    label.htmlFor = this.k.id;
    for (const k of LENS_TOPK_CHOICES) {
      const o = el('option', '', `top ${k}`);
      o.value = String(k);
      this.k.append(o);
    }
    this.k.addEventListener('change', () => onTopK(Number(this.k.value)));
    const where = el('span', 'lens-where');
    this.head.append(where, el('span', 'spacer'), label, this.k);
    this.status = el('div', 'lens-status muted');
    this.status.setAttribute('role', 'status');
    this.scroll = el('div', 'lens-scroll');
    this.el.append(this.head, this.status, this.scroll);
  }

  setProps(p: Partial<LensProps>): void {
    const next = { ...this.props, ...p };
    // The panel passes the same props again on many updates: rebuild the table only for new ones.
    const same = (Object.keys(next) as (keyof LensProps)[]).every((k) => next[k] === this.props[k] || JSON.stringify(next[k]) === JSON.stringify(this.props[k]));
    this.props = next;
    if (same && this.rendered) return;
    this.rendered = true;
    this.render();
  }

  private render(): void {
    const { layers, status, token, watched, topK } = this.props;
    this.k.value = String(topK);
    const where = this.head.querySelector('.lens-where')!;
    where.replaceChildren();
    if (token) where.append(el('span', 'muted', 'At '), tokenChip({ id: -1, text: token.text }), el('span', 'muted', ` (token ${token.index}), the cursor token`));
    else where.append(el('span', 'muted', 'Move the cursor in the prompt to read the lens at that token.'));
    (where.querySelector('.tok-chip') as HTMLElement | null)?.removeAttribute('title');
    this.status.className = `lens-status ${status.kind === 'error' ? 'error' : 'muted'}`;
    this.status.textContent = status.kind === 'error' ? status.message : status.kind === 'loading' ? 'Running the logit lens…' : '';
    this.status.hidden = this.status.textContent === '';
    this.scroll.replaceChildren();
    if (!layers || layers.length === 0) return;
    const L = layers.length - 1;
    const finalTop = layers[L]!.top[0]?.id;
    const watchedIds = new Set(watched.map((w) => w.id));
    const table = el('table', 'lens-table');
    const thead = el('thead');
    const hr = el('tr');
    const lh = el('th', 'lens-layer', 'layer');
    lh.title = 'emb = the embeddings; Ln = the residual stream after block n; the last row is the model’s output';
    hr.append(lh);
    for (let i = 0; i < topK; i++) hr.append(el('th', '', `#${i + 1}`));
    for (const w of watched) {
      const th = el('th');
      th.append(tokenChip(w));
      th.title = `rank of ${JSON.stringify(w.text)} (token ${w.id}) at each layer; hover a cell for its probability`;
      hr.append(th);
    }
    thead.append(hr);
    const tbody = el('tbody');
    for (const row of layers) {
      const tr = el('tr', row.layer === L ? 'out' : '');
      const lab = lensRowLabel(row.layer, L);
      const td = el('td', 'lens-layer', row.layer === L ? `${lab.text} out` : lab.text);
      td.title = lab.title;
      tr.append(td);
      for (let i = 0; i < topK; i++) {
        const t = row.top[i];
        const c = el('td');
        if (t) {
          const cell = el('div', 'lens-cell');
          cell.style.setProperty('--p', String(Math.max(0, Math.min(1, t.prob))));
          if (t.id === finalTop) cell.classList.add('final');
          if (watchedIds.has(t.id)) cell.classList.add('watched-tok');
          cell.append(el('span', 'lt', visibleToken(t.text)), el('span', 'lp', formatProb(t.prob)));
          cell.title = `${JSON.stringify(t.text)} (token ${t.id}): p = ${t.prob.toPrecision(4)}${t.id === finalTop ? ' · the model’s final top-1 at this token' : ''}${watchedIds.has(t.id) ? ' · watched' : ''}`;
          c.append(cell);
        }
        tr.append(c);
      }
      for (const w of watched) {
        const s = row.watched.find((x) => x.id === w.id);
        const c = el('td', 'lens-rank', s ? `#${s.rank}` : '');
        if (s) {
          c.classList.add(s.rank <= topK ? 'top' : s.rank > 1000 ? 'far' : 'mid');
          c.title = `${JSON.stringify(w.text)} at this layer: rank ${s.rank}, p = ${formatSmallProb(s.prob)}, logit ${s.logit.toFixed(3)}`;
        }
        tr.append(c);
      }
      tbody.append(tr);
    }
    table.append(thead, tbody);
    this.scroll.append(table);
  }
}
