// The most different positions (`#most-different`): a numbered list of buttons, largest KL first.
//
// Props: positions, kl [positions] (nats), mostDifferent (position indexes), selected. Callback
// onPick(position).
import type { PositionView } from '../../../src/shared/runsProtocol';
import { el } from '../../components/el';
import { truncateLabel, visibleToken } from '../../logic/tokenText';
import { formatNats } from '../compareLogic';
import { section } from './section';

export interface MostDifferentProps {
  positions: readonly Pick<PositionView, 'text'>[];
  kl: ArrayLike<number>;
  mostDifferent: readonly number[];
  selected: number | null;
}

export function mostDifferent(p: MostDifferentProps, onPick: (pos: number) => void): HTMLElement {
  const md = section('Most different positions', 'most-different');
  if (p.mostDifferent.length === 0) md.append(el('p', 'muted', 'No position could be compared.'));
  const ol = el('ol', 'mostlist');
  for (const i of p.mostDifferent) {
    const pos = p.positions[i]!;
    const li = el('li', i === p.selected ? 'selected' : '');
    li.dataset.pos = String(i);
    const btn = el('button', 'linklike');
    btn.append(el('code', 'tok', truncateLabel(visibleToken(pos.text), 20)), el('span', 'num', `${formatNats(p.kl[i]!)} nats`));
    btn.addEventListener('click', () => onPick(i));
    li.append(btn);
    ol.append(li);
  }
  md.append(ol);
  return md;
}
