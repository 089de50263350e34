// The per-position KL strip: one bar per aligned position (`.strip .bar[data-pos]`, listbox),
// height sqrt(KL / max), the five most different marked, the selected one outlined.
//
// Props: StripBarsProps (positions, kl, shift, klMax, mostDifferent) and selected (a position or
// null). Callbacks: onHover(position | null), onPick(position).
import { el } from '../../components/el';
import { stripBars, type StripBarsProps } from '../stripBars';
import { section } from './section';

export interface KlStripProps extends StripBarsProps {
  selected: number | null;
}

export function klStrip(p: KlStripProps, cb: { onHover(pos: number | null): void; onPick(pos: number): void }): HTMLElement {
  const sec = section('Per-position KL(A‖B) of the next-token predictions', 'kl-strip');
  const strip = el('div', 'strip');
  strip.setAttribute('role', 'listbox');
  strip.setAttribute('aria-label', 'positions by KL divergence');
  stripBars(p).forEach((b, i) => {
    const bar = el('div', 'bar');
    bar.dataset.pos = String(i);
    bar.style.setProperty('--h', b.height);
    if (b.nan) bar.classList.add('nan');
    if (b.most) bar.classList.add('most');
    if (i === p.selected) bar.classList.add('selected');
    bar.title = b.title;
    bar.addEventListener('mouseenter', () => cb.onHover(i));
    bar.addEventListener('mouseleave', () => cb.onHover(null));
    bar.addEventListener('click', () => cb.onPick(i));
    strip.append(bar);
  });
  sec.append(strip);
  return sec;
}
