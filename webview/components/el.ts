// The one DOM helper of the compare and generation pages and their components: an element with
// an optional class list and text (text only: host strings are never parsed as HTML).

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
