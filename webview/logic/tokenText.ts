// How token text is shown where whitespace would be invisible (chips, lists, tooltips).

/** Makes whitespace visible: space → ·, newline → ↵, tab → →; empty → ∅. */
export function visibleToken(text: string): string {
  if (text.length === 0) return '∅';
  return text.replace(/ /g, '·').replace(/\r?\n/g, '↵').replace(/\t/g, '→');
}

/** Shortened to at most `max` characters with an ellipsis. */
export function truncateLabel(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}
