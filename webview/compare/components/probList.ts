// A top-K list of next tokens with probability bars (one grid: token | bar | percentage), the bars
// relative to the most likely item. Props: items {text, prob, cls?} (cls marks a row, e.g. 'left'
// for a token that left the top-K, 'entered' for one that entered it).
import { el } from '../../components/el';
import { truncateLabel, visibleToken } from '../../logic/tokenText';
import { formatPct } from '../compareLogic';

export interface ProbItem {
  text: string;
  prob: number;
  cls?: string;
}

export function probList(items: readonly ProbItem[]): HTMLOListElement {
  const ol = el('ol', 'problist');
  const max = Math.max(1e-9, ...items.map((i) => i.prob));
  for (const it of items) {
    const li = el('li', it.cls ?? '');
    const bar = el('span', 'probbar');
    bar.style.setProperty('--w', `${Math.round((it.prob / max) * 100)}%`);
    li.append(el('code', 'tok', truncateLabel(visibleToken(it.text), 24)), bar, el('span', 'num', formatPct(it.prob)));
    ol.append(li);
  }
  return ol;
}
