// Watched tokens under the next-token list: for each pinned token its probability, logit and rank
// in this run and in the clean baseline (the same prompt without interventions), the logit
// difference of a pair, an input to pin a token by its text (or #id), and unpin buttons.
//
// Props (setProps): watch (WatchView from the host; values null while computing), runId (the run
// shown). Callbacks: onWatchText(text) → the host's lookup answer (the added token, or a message
// with the tokens to choose from), onWatchId(id), onUnwatch(id), onPair(pair).
import './research.css';
import type { WatchedToken, WatchView } from '../../src/shared/protocol';
import { logitDiff, MAX_WATCHED, watchPair, type WatchStat } from '../../src/shared/watch';
import { formatSigned } from '../../src/shared/importance';
import { formatProb } from '../logic/colorScale';
import { visibleToken } from '../logic/tokenText';
import { el } from './el';
import { groupedHead } from './groupedHead';

export interface WatchedTokensCallbacks {
  onWatchText(text: string): Promise<{ added: WatchedToken | null; message: string | null; candidates: WatchedToken[] }>;
  onWatchId(id: number): void;
  onUnwatch(id: number): void;
  onPair(pair: [number, number] | null): void;
}

const fmtLogit = (v: number): string => v.toFixed(2).replace(/^-/, '−');

/** A probability in percent that stays readable for the rare tokens people watch: "93.9%", "0.25%", "0.0032%", "4.1e−7%". */
export function formatSmallProb(p: number): string {
  if (!Number.isFinite(p)) return 'n/a';
  if (p === 0 || p * 100 >= 0.01) return formatProb(p);
  return `${(p * 100).toPrecision(2).replace('e-', 'e−')}%`;
}

/** A token in a chip with its whitespace visible and its id on hover. */
export function tokenChip(t: WatchedToken): HTMLElement {
  const c = el('span', 'tok-chip', visibleToken(t.text));
  c.title = `token ${t.id} ${JSON.stringify(t.text)}`;
  return c;
}

export class WatchedTokens {
  readonly el: HTMLDivElement;
  private readonly table: HTMLTableElement;
  private readonly diff: HTMLDivElement;
  private readonly msg: HTMLDivElement;
  private readonly note: HTMLDivElement;
  private readonly input: HTMLInputElement;
  private watch: WatchView | null = null;

  constructor(private readonly cb: WatchedTokensCallbacks) {
    this.el = el('div', 'watched');
    const head = el('div', 'watched-head');
    head.append(el('span', 'watched-title', 'Watched tokens'));
    const add = el('form', 'watched-add');
    this.input = el('input');
    this.input.type = 'text';
    this.input.placeholder = '·table or #id';
    this.input.setAttribute('aria-label', 'Watch a token: type its text (a leading space matters) or #id');
    this.input.title = 'Type a token’s text exactly as the tokenizer splits it (a leading space matters: “ table” is the word after a space), or #id';
    const btn = el('button', 'icon-button');
    btn.type = 'submit';
    btn.title = 'Watch this token';
    btn.setAttribute('aria-label', 'Watch this token');
    btn.append(el('span', 'codicon codicon-add'));
    add.append(this.input, btn);
    add.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    head.append(add);
    this.msg = el('div', 'watched-msg');
    this.msg.setAttribute('role', 'status');
    this.msg.hidden = true;
    this.note = el('div', 'muted watched-note');
    this.table = el('table', 'wt-table');
    this.diff = el('div', 'wt-diff');
    this.el.append(head, this.msg, this.table, this.diff, this.note);
  }

  private async submit(): Promise<void> {
    // The input shows spaces as typed; "·" stands for a space too (as the lists show it).
    const text = this.input.value.replace(/·/g, ' ');
    if (text.length === 0) return;
    this.showMessage(null, []);
    try {
      const r = await this.cb.onWatchText(text);
      if (r.added) this.input.value = '';
      this.showMessage(r.message, r.candidates);
    } catch (e) {
      this.showMessage(e instanceof Error ? e.message : String(e), [], true);
    }
  }

  private showMessage(message: string | null, candidates: WatchedToken[], error = false): void {
    this.msg.replaceChildren();
    this.msg.classList.toggle('error', error);
    this.msg.hidden = !message;
    if (!message) return;
    this.msg.append(el('span', '', message));
    for (const c of candidates) {
      const b = el('button', 'chip-button');
      b.textContent = `${visibleToken(c.text)} #${c.id}`;
      b.title = `Watch token ${c.id} ${JSON.stringify(c.text)}`;
      b.addEventListener('click', () => {
        this.cb.onWatchId(c.id);
        this.showMessage(null, []);
        this.input.value = '';
      });
      this.msg.append(b);
    }
  }

  setProps(watch: WatchView, runId: number | null): void {
    this.watch = watch;
    const fresh = watch.runId !== null && watch.runId === runId;
    this.input.disabled = watch.tokens.length >= MAX_WATCHED;
    this.renderTable(fresh);
    this.renderDiff(fresh);
    this.note.textContent = watch.error
      ? watch.error
      : watch.tokens.length === 0
        ? 'Pin a token with the pin button of a prediction above, or type it here, to follow its probability, logit and rank even outside the top 10.'
        : !fresh
          ? 'Computing…'
          : watch.steered
            ? 'Clean = the same prompt without the interventions; values at the last position.'
            : 'No interventions are active: this run is the clean baseline. Values at the last position.';
    this.note.classList.toggle('error', !!watch.error);
  }

  private renderTable(fresh: boolean): void {
    const w = this.watch!;
    this.table.replaceChildren();
    this.table.hidden = w.tokens.length === 0;
    if (!w.tokens.length) return;
    const thead = groupedHead(
      [{ text: '', span: 1 }, { text: w.steered ? 'this run (steered)' : 'this run', span: 3, cls: 'grp' }, { text: 'clean baseline', span: 3, cls: 'grp sep' }, { text: '', span: 1 }],
      [
        ['token', 'wt-tok', ''],
        ['p', '', 'probability of the token at the last position'],
        ['logit', '', 'the token’s logit'],
        ['rank', '', '1 = the most likely token'],
        ['p', 'sep', 'probability without the interventions'],
        ['logit', '', 'logit without the interventions'],
        ['rank', '', 'rank without the interventions'],
        ['', '', ''],
      ],
    );
    const tbody = el('tbody');
    for (const t of w.tokens) {
      const tr = el('tr');
      const tok = el('td', 'wt-tok');
      tok.append(tokenChip(t));
      tr.append(tok);
      const cur = fresh ? t.current : null;
      const base = fresh ? t.baseline : null;
      const same = !w.steered;
      const cells = (s: WatchStat | null, sep: boolean, other: WatchStat | null): void => {
        const cls = (extra: string) => [sep ? 'sep' : '', same && sep ? 'same' : '', extra].filter(Boolean).join(' ');
        if (!s) {
          tr.append(el('td', cls(''), '…'), el('td', cls(''), ''), el('td', cls(''), ''));
          return;
        }
        const p = el('td', cls(''), formatSmallProb(s.prob));
        p.title = `p = ${s.prob.toPrecision(6)}; log p = ${s.logprob.toFixed(4)}`;
        const lg = el('td', cls(''), fmtLogit(s.logit));
        const rk = el('td', cls(''), `#${s.rank}`);
        // In the run's columns, say which way the interventions moved the token.
        if (!sep && other && w.steered) {
          if (s.prob > other.prob) p.classList.add('num-up');
          else if (s.prob < other.prob) p.classList.add('num-down');
          p.title += `; clean ${formatSmallProb(other.prob)} (${formatSigned((s.prob - other.prob) * 100, 2)} points)`;
        }
        tr.append(p, lg, rk);
      };
      cells(cur, false, base);
      cells(base, true, cur);
      const x = el('td');
      const b = el('button', 'icon-button');
      b.title = `Stop watching ${visibleToken(t.text)}`;
      b.setAttribute('aria-label', `Stop watching ${t.text}`);
      b.append(el('span', 'codicon codicon-close'));
      b.addEventListener('click', () => this.cb.onUnwatch(t.id));
      x.append(b);
      tr.append(x);
      tbody.append(tr);
    }
    this.table.append(thead, tbody);
  }

  private renderDiff(fresh: boolean): void {
    const w = this.watch!;
    this.diff.replaceChildren();
    const pair = watchPair(w);
    this.diff.hidden = !pair;
    if (!pair) return;
    const [a, b] = pair;
    const pick = (selected: number, which: 0 | 1): HTMLSelectElement => {
      const s = el('select');
      s.setAttribute('aria-label', which === 0 ? 'first token of the logit difference' : 'second token of the logit difference');
      for (const t of w.tokens) {
        const o = el('option', '', visibleToken(t.text));
        o.value = String(t.id);
        o.selected = t.id === selected;
        s.append(o);
      }
      s.addEventListener('change', () => {
        const v = Number(s.value);
        const ids: [number, number] = [a.id, b.id];
        const other = which === 0 ? 1 : 0;
        if (v === ids[other]) ids[other] = ids[which]; // picking the other token swaps the pair
        ids[which] = v;
        this.cb.onPair(ids);
      });
      return s;
    };
    const label = el('span', 'muted', 'logit diff');
    label.title = 'logit(first) − logit(second) = log p(first) − log p(second): the usual metric of patching and ablation studies (less sensitive to the rest of the vocabulary than a probability)';
    const cur = fresh ? logitDiff(a.current, b.current) : null;
    const base = fresh ? logitDiff(a.baseline, b.baseline) : null;
    const value = el('b', '', cur === null ? '…' : formatSigned(cur, 2));
    this.diff.append(label, w.tokens.length > 2 ? pick(a.id, 0) : tokenChip(a), el('span', '', '−'), w.tokens.length > 2 ? pick(b.id, 1) : tokenChip(b), el('span', '', '='), value);
    if (w.steered) {
      const c = el('span', 'muted', `clean ${base === null ? '…' : formatSigned(base, 2)}`);
      this.diff.append(c);
      if (cur !== null && base !== null) {
        const d = el('span', cur - base >= 0 ? 'num-up' : 'num-down', `(Δ ${formatSigned(cur - base, 2)})`);
        d.title = 'change of the logit difference made by the interventions';
        this.diff.append(d);
      }
    }
  }
}
