// The compare page's summary line: aligned tokens, tokens only in A / only in B (a warning chip
// when any), mean and max KL; a "Generate…" button when a prompt is inspected. And the banner
// listing what could not be compared.
//
// Props: aligned, onlyA, onlyB (counts), kl [positions] (nats, NaN = not comparable),
// canGenerate; callback onGenerate.
import { banner } from '../../components/banner';
import { el } from '../../components/el';
import { formatNats } from '../compareLogic';

export interface CompareSummaryProps {
  aligned: number;
  onlyA: number;
  onlyB: number;
  /** [positions] KL(A‖B), nats */
  kl: ArrayLike<number>;
  canGenerate: boolean;
}

export function compareSummary(p: CompareSummaryProps, onGenerate: () => void): HTMLElement {
  const head = el('div', 'summary');
  const finite = Array.from(p.kl).filter(Number.isFinite);
  const meanKl = finite.length ? finite.reduce((s, v) => s + v, 0) / finite.length : NaN;
  head.append(
    el('span', 'chip', `${p.aligned} aligned tokens`),
    el('span', p.onlyA + p.onlyB ? 'chip warn' : 'chip', `${p.onlyA} only in A · ${p.onlyB} only in B`),
    el('span', 'chip', `mean KL ${formatNats(meanKl)} · max ${formatNats(finite.length ? Math.max(...finite) : NaN)} nats`),
  );
  if (p.canGenerate) {
    const g = el('vscode-button') as HTMLElement;
    g.textContent = 'Generate…';
    g.setAttribute('secondary', '');
    g.setAttribute('icon', 'sparkle');
    g.addEventListener('click', onGenerate);
    head.append(g);
  }
  return head;
}

/** "Not compared:" and one line per reason. */
export function notComparableBanner(reasons: readonly string[]): HTMLElement {
  const txt = el('div');
  txt.append(el('strong', '', 'Not compared: '));
  const ul = el('ul');
  for (const r of reasons) ul.append(el('li', '', r));
  txt.append(ul);
  return banner({ kind: 'warn', cls: 'notcomparable', content: txt });
}
