// The bars of the per-position KL strip, DOM-free: height, marks and tooltip per aligned position.
import type { PositionView } from '../../src/shared/runsProtocol';
import { visibleToken } from '../logic/tokenText';
import { formatNats } from './compareLogic';

export interface StripBar {
  /** CSS height: sqrt(KL / max) as a percentage, at least 2% ("2%" when KL is not finite) */
  height: string;
  nan: boolean;
  /** one of the five most different positions */
  most: boolean;
  title: string;
}

export interface StripBarsProps {
  positions: readonly Pick<PositionView, 'a' | 'b' | 'text'>[];
  /** [positions] KL(A‖B), nats */
  kl: ArrayLike<number>;
  /** [positions] attention shift */
  shift: ArrayLike<number>;
  /** the top of the scale (largest finite KL) */
  klMax: number;
  /** position indexes, most different first */
  mostDifferent: readonly number[];
}

export function stripBars(p: StripBarsProps): StripBar[] {
  const most = new Set(p.mostDifferent.slice(0, 5));
  return p.positions.map((pos, i) => {
    const v = p.kl[i]!;
    const s = p.shift[i]!;
    return {
      height: Number.isFinite(v) ? `${Math.max(2, Math.sqrt(v / p.klMax) * 100)}%` : '2%',
      nan: !Number.isFinite(v),
      most: most.has(i),
      title: `“${visibleToken(pos.text)}” (A ${pos.a} · B ${pos.b}): KL ${formatNats(v)} nats${Number.isFinite(s) ? ` · attention shift ${formatNats(s)}` : ''}`,
    };
  });
}
