// The selected aligned position (`#position-detail`): its token, the token indexes in A and B, KL
// and attention shift, the top next tokens in A and in B (those that left / entered the top-K
// marked), and the changes as chips.
//
// Props: position (the PositionView, or null when none is selected), kl and shift at it.
import type { PositionView } from '../../../src/shared/runsProtocol';
import { el } from '../../components/el';
import { visibleToken } from '../../logic/tokenText';
import { formatNats, formatPct } from '../compareLogic';
import { probList } from './probList';
import { section } from './section';

export interface PositionDetailProps {
  position: PositionView | null;
  kl: number;
  shift: number;
}

export function positionDetail(p: PositionDetailProps): HTMLElement {
  const det = section('Selected position', 'position-detail');
  const pos = p.position;
  if (!pos) {
    det.append(el('p', 'muted', 'Hover or click a token or a bar to see how the top predictions changed there.'));
    return det;
  }
  const hdr = el('div', 'posheader');
  hdr.append(el('code', 'tok big', visibleToken(pos.text)), el('span', 'muted', `A token ${pos.a} · B token ${pos.b}`), el('span', 'chip', `KL ${formatNats(p.kl)} nats`));
  if (Number.isFinite(p.shift)) hdr.append(el('span', 'chip', `attention shift ${formatNats(p.shift)}`));
  det.append(hdr);
  const two = el('div', 'columns tight');
  const leftIds = new Set(pos.left.map((x) => x.id));
  const enteredIds = new Set(pos.entered.map((x) => x.id));
  const ca = el('div', 'col');
  ca.append(el('h4', '', 'Top next tokens in A'), probList(pos.topA.map((t) => ({ text: t.text, prob: t.prob, cls: leftIds.has(t.id) ? 'left' : '' }))));
  const cb = el('div', 'col');
  cb.append(el('h4', '', 'Top next tokens in B'), probList(pos.topB.map((t) => ({ text: t.text, prob: t.prob, cls: enteredIds.has(t.id) ? 'entered' : '' }))));
  two.append(ca, cb);
  det.append(two);
  const changes = el('div', 'changes');
  if (pos.left.length === 0 && pos.entered.length === 0) changes.append(el('span', 'muted', 'The same tokens are in both top lists.'));
  for (const x of pos.left) changes.append(el('span', 'chip left', `− ${visibleToken(x.text)} ${formatPct(x.probA)} → ${formatPct(x.probB)}`));
  for (const x of pos.entered) changes.append(el('span', 'chip entered', `+ ${visibleToken(x.text)} ${formatPct(x.probA)} → ${formatPct(x.probB)}`));
  det.append(changes);
  return det;
}
