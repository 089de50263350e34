// Top-K next-token predictions with probability bars. Props: setRun(next, previous) where
// `previous` is the list of the run before (same prompt) so each row can show how much an
// intervention moved it (Δ in percentage points; "new" when it entered the top-K). With an `onPin`
// callback each row has a pin button (watch the token); setWatched(ids) marks the pinned rows.
import './research.css';
import { formatProb } from '../logic/colorScale';
import { visibleToken } from '../logic/tokenText';

export interface NextToken {
  id: number;
  text: string;
  prob: number;
}

export class NextTokens {
  readonly el: HTMLDivElement;
  private watched: ReadonlySet<number> = new Set();
  private readonly pins = new Map<number, HTMLButtonElement>();

  constructor(private readonly onPin?: (id: number, pinned: boolean) => void) {
    this.el = document.createElement('div');
    this.el.className = onPin ? 'next-tokens nt-pinnable' : 'next-tokens';
    this.el.setAttribute('role', 'list');
  }

  /** Marks the rows of watched tokens (their pin button unpins). */
  setWatched(ids: ReadonlySet<number>): void {
    this.watched = ids;
    for (const [id, b] of this.pins) this.paintPin(b, id);
  }

  private paintPin(b: HTMLButtonElement, id: number): void {
    const on = this.watched.has(id);
    b.classList.toggle('on', on);
    b.setAttribute('aria-pressed', String(on));
    b.firstElementChild!.className = `codicon ${on ? 'codicon-pinned' : 'codicon-pin'}`;
    b.title = on ? 'Watched: click to stop watching' : 'Watch this token (its probability, logit and rank stay visible in every run and in the logit lens)';
  }

  setRun(next: NextToken[], previous: NextToken[] | null): void {
    this.el.replaceChildren();
    this.pins.clear();
    if (next.length === 0) {
      const empty = document.createElement('div');
      empty.className = 'muted';
      empty.textContent = 'No predictions.';
      this.el.appendChild(empty);
      return;
    }
    const prev = previous ? new Map(previous.map((p) => [p.id, p.prob])) : null;
    const top = Math.max(...next.map((n) => n.prob), 1e-9);
    for (const n of next) {
      const row = document.createElement('div');
      row.className = 'nt-row';
      row.setAttribute('role', 'listitem');
      const tok = document.createElement('span');
      tok.className = 'nt-token';
      tok.textContent = visibleToken(n.text);
      tok.title = `id ${n.id}`;
      const bar = document.createElement('span');
      bar.className = 'nt-bar';
      const fill = document.createElement('span');
      fill.className = 'nt-fill';
      fill.style.width = `${Math.max(0.5, (n.prob / top) * 100)}%`;
      bar.appendChild(fill);
      const pct = document.createElement('span');
      pct.className = 'nt-prob';
      pct.textContent = formatProb(n.prob);
      const delta = document.createElement('span');
      delta.className = 'nt-delta';
      if (prev) {
        const before = prev.get(n.id);
        if (before === undefined) {
          delta.textContent = 'new';
          delta.classList.add('up');
        } else {
          const d = (n.prob - before) * 100;
          if (Math.abs(d) >= 0.05) {
            delta.textContent = `${d > 0 ? '▲' : '▼'}${Math.abs(d).toFixed(1)}`;
            delta.classList.add(d > 0 ? 'up' : 'down');
            delta.title = `${d > 0 ? '+' : '−'}${Math.abs(d).toFixed(2)} percentage points since the previous run`;
          }
        }
      }
      row.append(tok, bar, pct, delta);
      if (this.onPin) {
        const pin = document.createElement('button');
        pin.className = 'icon-button nt-pin';
        pin.setAttribute('aria-label', `Watch ${n.text}`);
        pin.appendChild(document.createElement('span'));
        this.paintPin(pin, n.id);
        pin.addEventListener('click', () => this.onPin!(n.id, !this.watched.has(n.id)));
        this.pins.set(n.id, pin);
        row.appendChild(pin);
      }
      this.el.appendChild(row);
    }
  }
}
