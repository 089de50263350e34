// A table head of two rows: column groups spanning several columns above the column names (the
// watched-token tables of the panel and the compare page). Props: `groups` left to right, each with
// its text (empty: a blank cell), span and class; `columns` as [text, class, tooltip].
import { el } from './el';

export interface HeadGroup {
  text: string;
  span: number;
  cls?: string;
}

export function groupedHead(groups: readonly HeadGroup[], columns: readonly (readonly [string, string, string])[]): HTMLTableSectionElement {
  const thead = el('thead');
  const g = el('tr');
  for (const x of groups) g.append(Object.assign(el('th', x.cls ?? '', x.text), { colSpan: x.span }));
  const h = el('tr');
  for (const [text, cls, title] of columns) {
    const th = el('th', cls, text);
    if (title) th.title = title;
    h.append(th);
  }
  thead.append(g, h);
  return thead;
}
