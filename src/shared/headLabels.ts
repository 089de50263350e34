// Automatic head labels: what a head does on this prompt, read off its metrics (src/shared/heads.ts).
// A pure function of one head's metrics and the prompt length; a head may have several roles or
// none. Labels describe behaviour on the prompt at hand, not a head's function in general: an
// induction head shows as one only where some token repeats.
import type { HeadMetrics } from './heads';

export type HeadRole = 'sink' | 'previous-token' | 'induction' | 'duplicate-token' | 'self' | 'broad';

/**
 * The thresholds, with why those values.
 *
 * The fraction metrics are means over query rows of the attention a row gives to one kind of key.
 * A row q of a causal head has q + 1 keys, so attention spread evenly puts 1/(q+1) on any one key;
 * on prompts of a dozen tokens or more that chance level is under 0.1 for most rows, and the
 * thresholds sit far above it.
 */
export const ROLE_THRESHOLDS = {
  /**
   * Attention sink: at least half of every row's attention, on average, goes to the first token.
   * Xiao et al. 2023 (Efficient Streaming Language Models with Attention Sinks) find most heads of
   * LLaMA-2 beyond the first layers put the majority of their attention on the initial token(s);
   * "the majority" is the line they draw, hence 0.5.
   */
  sink: 0.5,
  /**
   * Previous token: the majority of a row's attention on the token right before it (0.5). Olsson
   * et al. 2022 (In-context Learning and Induction Heads) describe these heads as attending
   * "mostly" to the previous token; a head that does so on half of its attention or more is the
   * first half of an induction circuit.
   */
  prevToken: 0.5,
  /**
   * Induction: on the rows whose token occurred before, at least 0.3 of the attention goes to the
   * token that followed an earlier occurrence. Olsson et al. 2022 score heads by this prefix-matching
   * attention on repeated sequences; in small models their induction heads score well above 0.3
   * while other heads stay near chance (1/(q+1) per match), so 0.3 separates them with margin. It is
   * also what AttnScope's default-model test requires of its induction heads.
   */
  induction: 0.3,
  /**
   * Duplicate token: on the rows whose token occurred before, at least 0.3 of the attention goes to
   * those earlier occurrences. Wang et al. 2022 (Interpretability in the Wild, IOI) identify
   * duplicate-token heads by exactly this attention from a repeated token to its first occurrence;
   * the metric is restricted to qualifying rows like induction, so the same chance level and the
   * same threshold apply.
   */
  duplicateToken: 0.3,
  /**
   * Self: the majority of a row's attention on the token itself (0.5), the "attend to the current
   * token" pattern Clark et al. 2019 (What Does BERT Look At?) report for some heads.
   */
  selfAttn: 0.5,
  /**
   * Broad: the mean row entropy is at least 0.8 of what evenly spread causal attention would have
   * (mean over q = 1..T−1 of ln(q+1)). Clark et al. 2019 find heads, mostly in lower layers, whose
   * attention is spread this widely ("broad attention", entropy near uniform); 0.8 keeps heads with
   * a clear focus (a sink or a previous-token head is well below it) out.
   */
  broadEntropy: 0.8,
  /** No role is read from fewer query rows than this (a label from one or two rows is noise). */
  minRows: 3,
} as const;

export const ROLE_INFO: Record<HeadRole, { label: string; description: string; cite: string }> = {
  sink: { label: 'Sink', description: 'most attention goes to the first token', cite: 'Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks' },
  'previous-token': { label: 'Previous token', description: 'most attention goes to the token before', cite: 'Olsson et al. 2022, In-context Learning and Induction Heads' },
  induction: { label: 'Induction', description: 'attends to the token after an earlier occurrence of the current token', cite: 'Olsson et al. 2022, In-context Learning and Induction Heads' },
  'duplicate-token': { label: 'Duplicate token', description: 'attends to earlier occurrences of the current token', cite: 'Wang et al. 2022, Interpretability in the Wild (IOI)' },
  self: { label: 'Self', description: 'most attention stays on the token itself', cite: 'Clark et al. 2019, What Does BERT Look At?' },
  broad: { label: 'Broad', description: 'attention spread nearly evenly over the context', cite: 'Clark et al. 2019, What Does BERT Look At?' },
};

/** The mean row entropy of evenly spread causal attention over T tokens: mean over q = 1..T−1 of ln(q+1) (nats). */
export function uniformEntropy(T: number): number {
  if (T < 2) return 0;
  let s = 0;
  for (let q = 1; q < T; q++) s += Math.log(q + 1);
  return s / (T - 1);
}

/**
 * The roles of a head whose metrics over a prompt of `T` tokens are `m`, in a fixed order
 * (sink, previous-token, induction, duplicate-token, self, broad). Null metrics give no role.
 */
export function headRoles(m: HeadMetrics, T: number): HeadRole[] {
  const th = ROLE_THRESHOLDS;
  if (!(T - 1 >= th.minRows)) return [];
  const at = (v: number | null, min: number) => v !== null && v >= min;
  const out: HeadRole[] = [];
  if (at(m.sink, th.sink)) out.push('sink');
  if (at(m.prevToken, th.prevToken)) out.push('previous-token');
  if (at(m.induction, th.induction)) out.push('induction');
  if (at(m.duplicateToken, th.duplicateToken)) out.push('duplicate-token');
  if (at(m.selfAttn, th.selfAttn)) out.push('self');
  if (at(m.entropy, th.broadEntropy * uniformEntropy(T))) out.push('broad');
  return out;
}
