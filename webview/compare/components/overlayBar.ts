// "Tint tokens by [KL | Attention]": a segmented radio group (arrow keys switch) and a hint on
// what the attention tint shows (from which token, which head or the mean, loading, error) or why
// it is unavailable.
//
// Props: on (the mode shown), unavailable (why the attention overlay cannot be shown, or null),
// from (the selected aligned position, or null), head (the selected head, null = the mean), heads
// (how many heads the mean is over), canPickHead (the grid can select a head), rows (the attention
// rows of `from`: loaded, loading or an error). Callback onMode(mode): the user picked a mode; the
// page re-renders and focuses `#overlay-mode .seg[data-mode=mode]`.
import type { HeadRef } from '../../../src/shared/protocol';
import type { OverlayMode, PositionView } from '../../../src/shared/runsProtocol';
import { el } from '../../components/el';
import { truncateLabel, visibleToken } from '../../logic/tokenText';

export interface OverlayBarProps {
  on: OverlayMode;
  unavailable: string | null;
  from: Pick<PositionView, 'a' | 'b' | 'text'> | null;
  head: HeadRef | null;
  heads: number;
  canPickHead: boolean;
  rows: 'loaded' | 'loading' | { error: string };
}

const MODES = [
  ['kl', 'KL', 'the KL divergence of the next-token prediction at each aligned token'],
  ['attention', 'Attention', 'the attention FROM the selected token: of the head selected in the grid below, or the mean of all heads'],
] as const;

export function overlayBar(p: OverlayBarProps, onMode: (mode: OverlayMode) => void): HTMLElement {
  const bar = el('div', 'toolbar overlaybar');
  bar.id = 'overlay-mode';
  bar.append(el('span', 'muted', 'Tint tokens by'));
  const group = el('div', 'segmented');
  group.setAttribute('role', 'radiogroup');
  group.setAttribute('aria-label', 'What tints the tokens of A and B');
  for (const [mode, label, help] of MODES) {
    const btn = el('button', 'seg', label);
    btn.dataset.mode = mode;
    btn.setAttribute('role', 'radio');
    btn.setAttribute('aria-checked', String(p.on === mode));
    btn.tabIndex = p.on === mode ? 0 : -1;
    const disabled = mode === 'attention' && p.unavailable !== null;
    btn.disabled = disabled;
    btn.title = disabled ? `Attention overlay unavailable: ${p.unavailable}` : `Tint by ${help}`;
    btn.addEventListener('click', () => onMode(mode));
    btn.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      e.preventDefault();
      const next = mode === 'kl' ? 'attention' : 'kl';
      if (next === 'attention' && p.unavailable !== null) return;
      onMode(next);
    });
    group.append(btn);
  }
  bar.append(group);
  const hint = el('span', 'overlay-hint small');
  hint.id = 'overlay-source';
  if (p.unavailable !== null) {
    hint.classList.add('muted');
    hint.append(el('span', 'codicon codicon-info'), el('span', '', ` Attention overlay unavailable: ${p.unavailable}.`));
  } else if (p.on === 'attention') {
    if (!p.from) hint.append(el('span', 'muted', 'Click a token (in A or B) to see where it attends in both runs.'));
    else {
      hint.append(el('span', 'muted', 'attention from '), el('code', 'tok', truncateLabel(visibleToken(p.from.text), 24)), el('span', 'muted', ` (A ${p.from.a} · B ${p.from.b}), `));
      hint.append(el('strong', '', p.head ? `head L${p.head.layer}H${p.head.head}` : `mean of all ${p.heads} heads`));
      if (!p.head && p.canPickHead) hint.append(el('span', 'muted', ' · pick a head in the grid below for one head'));
      if (typeof p.rows === 'object') hint.append(el('span', 'rows-error', ` · ${p.rows.error}`));
      else if (p.rows === 'loading') hint.append(el('span', 'muted', ' · loading…'));
    }
  }
  bar.append(hint);
  return bar;
}
