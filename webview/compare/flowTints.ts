// What each token of one run's token view (A or B) shows on the compare page, DOM-free: the
// classes, CSS variables, data attributes and title the prompt overlay puts on its spans
// (PromptOverlay.setTints). Tinted by KL per aligned token, or by the attention row FROM one token.
import type { TokenView } from '../../src/shared/protocol';
import type { TokenTint } from '../components/promptOverlay';
import { formatProb } from '../logic/colorScale';
import { visibleToken } from '../logic/tokenText';
import { formatNats } from './compareLogic';

/** What tints a token view: KL per aligned token, or the attention row from one token (fractions + values). */
export type FlowTint =
  | { kind: 'kl'; of: (token: number) => number | undefined; max: number }
  | { kind: 'attention'; from: number; fraction: Float32Array; row: Float32Array }
  | { kind: 'attention'; from: number | null; fraction: null; row: null }
  | null;

export interface FlowTintProps {
  tokens: readonly TokenView[];
  /** indexes of the tokens without a partner in the other run */
  unaligned: readonly number[];
  which: 'a' | 'b';
  tint: FlowTint;
  /** token index → aligned position (null: no positions, e.g. one run) */
  posOf: ReadonlyMap<number, number> | null;
  /** the selected position */
  selected: number | null;
}

/**
 * One decoration per token. Classes: `tinted` (KL, `--kl` 0..1 sqrt scale), `attn` (attention,
 * `--a` 0..1), `future` (after the attending token, not attended to), `unaligned`, `selected`.
 * Data: `index` (token), `pos` (aligned position, when there is one).
 */
export function flowTints(p: FlowTintProps): TokenTint[] {
  const { tint, which } = p;
  const side = which.toUpperCase();
  const unaligned = new Set(p.unaligned);
  return p.tokens.map((t, i) => {
    const classes: string[] = [];
    const vars: Record<string, string> = {};
    const data: Record<string, string> = { index: String(i) };
    let title: string | undefined;
    if (tint?.kind === 'attention') {
      const name = `${side} token ${i} “${visibleToken(t.text)}”${unaligned.has(i) ? ' (no partner in the other run)' : ''}`;
      if (unaligned.has(i)) classes.push('unaligned');
      if (tint.row && tint.from !== null) {
        const f = tint.fraction[i]!;
        if (f > 0) {
          vars['--a'] = String(f);
          classes.push('attn');
        }
        const future = i > tint.from && tint.row[i] === 0; // a causal model attends to no later token
        if (future) classes.push('future');
        title = i === tint.from ? `${name}: the token whose attention is shown (to itself ${formatProb(tint.row[i]!)})` : future ? `${name}: after the selected token (not attended to)` : `${name} · attention ${formatProb(tint.row[i]!)}`;
      } else title = name;
    } else if (unaligned.has(i)) {
      classes.push('unaligned');
      title = `${side} token ${i} “${visibleToken(t.text)}” has no partner in the other run`;
    } else if (tint?.kind === 'kl') {
      const kl = tint.of(i);
      if (kl !== undefined && Number.isFinite(kl)) {
        vars['--kl'] = String(Math.sqrt(Math.min(1, kl / tint.max)));
        classes.push('tinted');
      }
      title = `token ${i} “${visibleToken(t.text)}”${kl !== undefined ? ` · KL ${formatNats(kl)} nats` : ''}`;
    }
    const pos = p.posOf?.get(i);
    if (pos !== undefined) {
      data.pos = String(pos);
      if (pos === p.selected) classes.push('selected');
    }
    return { classes, vars, data, title };
  });
}
