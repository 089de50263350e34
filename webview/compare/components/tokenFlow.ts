// One run's tokens on the compare page (A or B, or the one run of the .attnrun editor): the shared
// prompt overlay (webview/components/promptOverlay.ts; the prompt's own text between tokens,
// special tokens as chips) decorated per token by flowTints (KL or attention tints, unaligned
// tokens, the selected position). The element is `.flow[data-side][data-overlay]`, its tokens
// `.tok[data-index][data-pos]`.
//
// Props: FlowTintProps (tokens, unaligned, which, tint, posOf, selected) and the run's prompt.
// Callbacks: onHover(position | null) as the pointer moves over aligned tokens, onPick(position)
// on a click on an aligned token.
import type { RunSideView } from '../../../src/shared/runsProtocol';
import { el } from '../../components/el';
import { PromptOverlay } from '../../components/promptOverlay';
import { flowTints, type FlowTintProps } from '../flowTints';

export interface TokenFlowProps extends FlowTintProps {
  prompt: RunSideView['prompt'];
}

export interface TokenFlowCallbacks {
  onHover(pos: number | null): void;
  onPick(pos: number): void;
}

export function tokenFlow(p: TokenFlowProps, cb: TokenFlowCallbacks): HTMLElement {
  const pos = (i: number | null) => (i === null ? undefined : p.posOf?.get(i));
  const overlay = new PromptOverlay(
    (i) => {
      const at = pos(i);
      if (at !== undefined) cb.onPick(at);
    },
    (i) => cb.onHover(pos(i) ?? null),
  );
  overlay.setOptions({ tooltip: false });
  overlay.setRun(p.prompt, [...p.tokens], 0);
  overlay.setTints(flowTints(p));
  overlay.el.classList.add('flow');
  overlay.el.dataset.side = p.which;
  overlay.el.dataset.overlay = p.tint?.kind ?? 'none';
  return overlay.el;
}

/** What the tints mean: the KL or the attention swatch, and the unaligned one when there are such tokens. */
export function flowLegend(p: { attention: boolean; unaligned: boolean }): HTMLElement {
  const legend = el('div', 'legend muted small');
  const item = (swatch: string, text: string, title?: string) => {
    const it = el('span', 'legend-item');
    it.append(el('span', `swatch ${swatch}`), el('span', '', text));
    if (title) it.title = title;
    return it;
  };
  if (p.attention) legend.append(item('attn-swatch', 'attention from the selected token (one scale for A and B)', 'The first token (an attention sink) does not set the top of the scale, so it does not wash out the rest; it saturates instead.'));
  else legend.append(item('tinted-swatch', 'KL of the next-token prediction (darker = the runs disagree more)'));
  if (p.unaligned) legend.append(item('unaligned-swatch', 'token only in one run (not aligned)'));
  return legend;
}
