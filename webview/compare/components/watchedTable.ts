// The watched tokens at the selected aligned position (`#watched-compare`): for each token of the
// session's watched list its probability, log-probability and rank in A and in B (logit on hover
// when the run saved logits), and the logit difference of the watched pair in A and in B. Values
// come from what each run saved (see CompareWatchSide); a token below a run's saved top K says so
// instead of a number.
//
// Props: watch (CompareWatch, null = nothing watched), position (index into the aligned
// positions, null = none selected), labels of A and B.
import { WATCH_SOURCES, type CompareWatch } from '../../../src/shared/runsProtocol';
import { el } from '../../components/el';
import { groupedHead } from '../../components/groupedHead';
import { visibleToken } from '../../logic/tokenText';
import { floats, formatSignedNum, formatWatchProb, watchCell, watchPairDiff, watchSourceText, type WatchCell } from '../compareLogic';
import { section } from './section';

export interface WatchedTableProps {
  watch: CompareWatch | null;
  position: number | null;
  labels: [string, string];
}

const minus = (v: number, d: number) => v.toFixed(d).replace(/^-/, '−');

function tokenCell(t: { id: number; text: string }): HTMLElement {
  const td = el('td', 'cw-tok');
  const c = el('code', 'tok', visibleToken(t.text));
  c.title = `token ${t.id} ${JSON.stringify(t.text)}`;
  td.append(c);
  return td;
}

function valueCells(c: WatchCell, side: 'A' | 'B', sep: boolean): HTMLElement[] {
  const cls = (x: string) => [sep ? 'sep' : '', x].filter(Boolean).join(' ');
  if (c.kind === 'missing') {
    const td = el('td', cls('cw-missing'), c.why);
    td.colSpan = 3;
    td.title = `${side} did not save this token’s probability here: ${c.why}`;
    return [td];
  }
  const p = el('td', cls('num'), formatWatchProb(c.prob));
  p.title = `p = ${c.prob.toPrecision(6)}${c.logit !== null ? `; logit ${c.logit.toFixed(4)}` : '; logit not saved (top-K log-probabilities only)'}`;
  const lp = el('td', 'num', minus(c.logprob, 2));
  lp.title = `log p = ${c.logprob.toFixed(5)}`;
  const rk = el('td', 'num', c.rank === null ? '—' : `#${c.rank}`);
  return [p, lp, rk];
}

export function watchedTable(p: WatchedTableProps): HTMLElement {
  const sec = section('Watched tokens', 'watched-compare');
  const w = p.watch;
  if (!w || w.tokens.length === 0) {
    sec.append(el('p', 'muted', 'Watch tokens in the AttnScope panel (pin a prediction, or type a token) to follow their probability here in A and in B.'));
    return sec;
  }
  if (p.position === null) {
    sec.append(el('p', 'muted', 'Select a position to see the watched tokens there.'));
    return sec;
  }
  const pos = p.position;
  const table = el('table', 'cw-table');
  const thead = groupedHead(
    [{ text: '', span: 1 }, { text: `A · ${p.labels[0]}`, span: 3, cls: 'grp' }, { text: `B · ${p.labels[1]}`, span: 3, cls: 'grp sep' }],
    [
      ['token', 'cw-tok', ''],
      ['p', '', 'probability of the token as the next token after this position'],
      ['log p', '', 'natural log of the probability'],
      ['rank', '', '1 = the most likely next token'],
      ['p', 'sep', 'probability in B'],
      ['log p', '', 'log-probability in B'],
      ['rank', '', 'rank in B'],
    ],
  );
  const tbody = el('tbody');
  w.tokens.forEach((t, i) => {
    const tr = el('tr');
    tr.dataset.id = String(t.id);
    tr.append(tokenCell(t), ...valueCells(watchCell(w.a, i, pos), 'A', false), ...valueCells(watchCell(w.b, i, pos), 'B', true));
    tbody.append(tr);
  });
  table.append(thead, tbody);
  sec.append(table);
  if (w.pair) {
    const [ia, ib] = w.pair;
    const ta = w.tokens.find((t) => t.id === ia);
    const tb = w.tokens.find((t) => t.id === ib);
    if (ta && tb) {
      const line = el('div', 'cw-diff');
      line.title = 'logit(first) − logit(second) = log p(first) − log p(second)';
      line.append(el('span', 'muted', 'logit diff'), el('code', 'tok', visibleToken(ta.text)), el('span', '', '−'), el('code', 'tok', visibleToken(tb.text)));
      const da = watchPairDiff(w.a, pos);
      const db = watchPairDiff(w.b, pos);
      const val = (d: number | { why: string }, side: string) => el('span', typeof d === 'number' ? 'cw-diffval' : 'cw-missing', `${side} ${typeof d === 'number' ? formatSignedNum(d) : d.why}`);
      line.append(val(da, 'A'), val(db, 'B'));
      if (typeof da === 'number' && typeof db === 'number') line.append(el('span', 'muted', `(B − A ${formatSignedNum(db - da)})`));
      sec.append(line);
    }
  }
  const srcA = watchCellSource(w.a, pos);
  const srcB = watchCellSource(w.b, pos);
  sec.append(el('p', 'muted cw-note', srcA === srcB ? `From ${srcA} in both runs.` : `A: from ${srcA}. B: from ${srcB}.`));
  return sec;
}

function watchCellSource(side: CompareWatch['a'], pos: number): string {
  return watchSourceText(WATCH_SOURCES[floats(side.source)[pos]!] ?? 'none', side.topK);
}
