// Watched tokens: tokens a researcher pins to follow their probability, logit and rank through
// every run (the current run, with the interventions, and a clean baseline without them) and
// through the logit lens, with the logit difference of a pair (the usual metric of patching and
// ablation studies: less sensitive to the rest of the vocabulary than a probability). Plain data
// and small pure functions, shared by the extension host and the webviews.

export interface WatchedToken {
  id: number;
  /** the token's text as the tokenizer decodes it alone */
  text: string;
}

/** A watched token in one run, at the last position (the same numbers as the logit lens's last layer). */
export interface WatchStat {
  prob: number;
  logprob: number;
  logit: number;
  /** 1 = the most likely token; 1 + the number of tokens with a larger logit */
  rank: number;
}

export interface WatchedTokenView extends WatchedToken {
  /** with the interventions (null while computing or after an error) */
  current: WatchStat | null;
  /** the same prompt without interventions (equal to `current` when no intervention is active) */
  baseline: WatchStat | null;
}

export interface WatchView {
  tokens: WatchedTokenView[];
  /** the pair whose logit difference is shown (ids, first − second); null = the first two watched */
  pair: [number, number] | null;
  /** the run the values belong to; null while they are computed */
  runId: number | null;
  /** interventions were active: the baseline is a separate run of the prompt without them */
  steered: boolean;
  /** why the values are missing (one line), or null */
  error: string | null;
}

/** At most this many tokens are watched at once. */
export const MAX_WATCHED = 8;

export const emptyWatch = (): WatchView => ({ tokens: [], pair: null, runId: null, steered: false, error: null });

/** The pair whose logit difference is shown: the chosen pair when both are still watched, else the first two. */
export function watchPair(v: Pick<WatchView, 'tokens' | 'pair'>): [WatchedTokenView, WatchedTokenView] | null {
  if (v.pair) {
    const a = v.tokens.find((t) => t.id === v.pair![0]);
    const b = v.tokens.find((t) => t.id === v.pair![1]);
    if (a && b && a.id !== b.id) return [a, b];
  }
  return v.tokens.length >= 2 ? [v.tokens[0]!, v.tokens[1]!] : null;
}

/** logit(a) − logit(b) (= log p(a) − log p(b)), or null when either is missing. */
export function logitDiff(a: WatchStat | null, b: WatchStat | null): number | null {
  return a && b ? a.logit - b.logit : null;
}

/** The tokens a typed text encodes to (special tokens the tokenizer inserts left out), and with one leading space. */
export interface TokenLookupResult {
  pieces: WatchedToken[];
  /** null when the text already starts with whitespace */
  spaced: WatchedToken[] | null;
}

/** A token in quotes with its whitespace visible: " table" → “␣table”. */
export function quoteToken(text: string): string {
  return `“${text.replace(/ /g, '·').replace(/\n/g, '↵').replace(/\t/g, '→')}”`;
}

/**
 * What typing `text` to watch means: one token (watch it), or a message saying why not with the
 * tokens to choose from (several tokens; or ambiguous: the text and the text with a leading space
 * are two different single tokens).
 */
export function lookupOutcome(text: string, r: TokenLookupResult): { token: WatchedToken } | { message: string; candidates: WatchedToken[] } {
  const q = quoteToken(text);
  const spacedOne = r.spaced && r.spaced.length === 1 ? r.spaced[0]! : null;
  if (r.pieces.length === 1) {
    const t = r.pieces[0]!;
    if (spacedOne && spacedOne.id !== t.id) {
      return {
        message: `${q} is ambiguous: it is token ${t.id} ${quoteToken(t.text)}, and with a leading space token ${spacedOne.id} ${quoteToken(spacedOne.text)} (the form after a space in running text); pick one`,
        candidates: [spacedOne, t],
      };
    }
    return { token: t };
  }
  if (r.pieces.length === 0) {
    return spacedOne ? { message: `${q} encodes to no token by itself; with a leading space it is token ${spacedOne.id}`, candidates: [spacedOne] } : { message: `${q} encodes to no token`, candidates: [] };
  }
  const seen = new Set<number>();
  const candidates: WatchedToken[] = [];
  if (spacedOne) candidates.push(spacedOne), seen.add(spacedOne.id);
  for (const p of r.pieces) if (!seen.has(p.id)) candidates.push(p), seen.add(p.id);
  const split = r.pieces.map((p) => quoteToken(p.text)).join(' + ');
  return {
    message: `${q} is ${r.pieces.length} tokens (${split}); a watched token is a single token${spacedOne ? `, and ${quoteToken(spacedOne.text)} with a leading space is one` : ''}: pick one`,
    candidates,
  };
}

/** Adds a token to a watched list (no duplicates, at most MAX_WATCHED); returns the new list. */
export function addWatched(list: readonly WatchedToken[], t: WatchedToken): WatchedToken[] {
  if (list.some((x) => x.id === t.id)) return [...list];
  if (list.length >= MAX_WATCHED) throw new RangeError(`at most ${MAX_WATCHED} tokens can be watched; unpin one first`);
  return [...list, { id: t.id, text: t.text }];
}
