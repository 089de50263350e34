// Activation patching per head (clean → corrupt) as every view shows it: the share of the
// clean-vs-corrupt gap in log p(target) that patching one head's output restores (Meng et al. 2022;
// Wang et al. 2022). The engine computes the numbers (src/engine/analysis/patching.ts):
//
//   effect = (value − corrupt) / (clean − corrupt)
//   0 = the head restores nothing, 1 = patching it alone restores the clean value; negative =
//   patching it moves the corrupt run further from the clean one; null when clean ≈ corrupt.
import { indexByHead, type HeadRef } from './heads';
import type { ImportanceKey } from './importance';
import { staleReason } from './importance';

export interface HeadPatchView extends HeadRef {
  /** log p(target) of the corrupt run with this head's output from the clean run */
  value: number;
  /** share of the gap restored; null when clean and corrupt agree */
  effect: number | null;
}

export interface PatchingView {
  targetId: number;
  targetText: string;
  /** log p(target) of the clean run and of the unpatched corrupt run (nats) */
  clean: number;
  corrupt: number;
  /** one per head, layer-major */
  heads: HeadPatchView[];
  /** where the clean prompt came from ("other.prompt", "selection in notes.md", "run foo.attnrun") */
  cleanLabel: string;
  /** tokens of each prompt */
  tokens: number;
  /** the corrupt run it belongs to (the inspected prompt's run) */
  runId: number;
  /** interventions were active on the inspected prompt; the patching runs use the plain model */
  interventionsIgnored: boolean;
}

export const PATCHING_LABEL = 'Patching effect';
export const PATCHING_CITE = 'Meng et al. 2022, Locating and Editing Factual Associations in GPT; Wang et al. 2022, Interpretability in the Wild';
export const PATCHING_DESCRIPTION =
  'share of the clean − corrupt gap in log p(target) restored when this head’s output (before the output projection) is copied from the clean run into the corrupt run: 0 = none, 1 = all; negative = further from clean';

/** Heads by effect, largest first (null effects last; ties: lower layer, then head). */
export function rankPatching(v: Pick<PatchingView, 'heads'>): HeadPatchView[] {
  return [...v.heads].sort((a, b) => (b.effect ?? -Infinity) - (a.effect ?? -Infinity) || a.layer - b.layer || a.head - b.head);
}

/** An effect with a real minus sign: "0.83", "−0.12", "n/a". */
export function formatEffect(e: number | null, digits = 2): string {
  if (e === null || !Number.isFinite(e)) return 'n/a';
  const s = e.toFixed(digits);
  return /^-0\.0*$/.test(s) ? s.slice(1) : s.replace(/^-/, '−');
}

/** Indexes a view's heads by layer * H + head. */
export function patchingIndex(v: PatchingView | null | undefined, L: number, H: number): (HeadPatchView | undefined)[] {
  return indexByHead(v?.heads, L, H);
}

export interface PatchingDomain {
  /** the scale's end: 1 (full restoration), or the largest |effect| when that is larger */
  hi: number;
  /** some effect is negative: the scale is diverging around 0 */
  diverging: boolean;
  /** observed range (null when every effect is null) */
  min: number | null;
  max: number | null;
}

export function patchingDomain(v: Pick<PatchingView, 'heads'> | null): PatchingDomain {
  let min: number | null = null;
  let max: number | null = null;
  for (const h of v?.heads ?? []) {
    if (h.effect === null || !Number.isFinite(h.effect)) continue;
    min = min === null ? h.effect : Math.min(min, h.effect);
    max = max === null ? h.effect : Math.max(max, h.effect);
  }
  const hi = Math.max(1, Math.abs(min ?? 0), Math.abs(max ?? 0));
  return { hi, diverging: min !== null && min < 0, min, max };
}

/** An effect's color fraction: 0..1 (−1..0 when negative) of the domain; null = n/a. */
export function patchingFraction(e: number | null | undefined, d: PatchingDomain): number | null {
  if (e === null || e === undefined || !Number.isFinite(e)) return null;
  return Math.max(-1, Math.min(1, e / d.hi));
}

/** What a patching result depends on: the importance key of the corrupt (inspected) prompt plus the clean prompt. */
export interface PatchingKey extends ImportanceKey {
  clean: string;
}

/** Why a patching result computed under `then` no longer holds under `now`, or null. */
export function patchingStaleReason(then: PatchingKey, now: PatchingKey): string | null {
  if (then.clean !== now.clean) return 'the clean prompt changed';
  const why = staleReason(then, now);
  return why === 'the prompt changed' ? 'the inspected (corrupt) prompt changed' : why;
}

/** The one-line summary: "L1H0 0.83, L0H7 0.41, L2H3 0.12 (target “ table”)". */
export function patchingSummary(v: PatchingView, n = 3): string {
  return rankPatching(v)
    .slice(0, n)
    .map((h) => `L${h.layer}H${h.head} ${formatEffect(h.effect)}`)
    .join(', ');
}
