// One run's header on the compare page: its label, a meta line (model · tokens · device · time ·
// date) and its interventions as chips ("no interventions" when there are none).
//
// Props: the run's RunSideView (label, model, tokens, device, runMs, createdAt, interventions).
import type { RunSideView } from '../../../src/shared/runsProtocol';
import { el } from '../../components/el';

export type RunInfoProps = Pick<RunSideView, 'label' | 'model' | 'tokens' | 'device' | 'runMs' | 'createdAt' | 'interventions'>;

export function runInfo(side: RunInfoProps): HTMLElement {
  const box = el('div', 'runinfo');
  const title = el('div', 'runtitle');
  title.append(el('span', 'sidelabel', side.label));
  box.append(title);
  const meta = el('div', 'muted small meta');
  // pieces that wrap between, never inside ("1 ms" stays on one line)
  [side.model, `${side.tokens.length} tokens`, side.device, `${side.runMs.toFixed(0)} ms`, new Date(side.createdAt).toLocaleString()].forEach((t, i) => {
    if (i) meta.append(' · ');
    meta.append(el('span', 'nowrap', t));
  });
  box.append(meta);
  const iv = el('div', 'interventions');
  if (side.interventions.length === 0) iv.append(el('span', 'chip none', 'no interventions'));
  for (const line of side.interventions) iv.append(el('span', 'chip iv', line));
  box.append(iv);
  return box;
}
