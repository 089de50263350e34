// A message banner (compare and generation pages): a codicon and content in a bordered box.
//
// Props: kind ('error': role alert, codicon-error; 'warn': role status, codicon-warning), content
// (a string, shown as text, or nodes), cls (further classes, e.g. 'damaged'), textCls (the class of
// the text span when content is a string). Styles: `.banner.error` / `.banner.warn` in each page's CSS.
import { el } from './el';

export interface BannerProps {
  kind: 'error' | 'warn';
  content: string | Node;
  cls?: string;
  textCls?: string;
}

export function banner(p: BannerProps): HTMLDivElement {
  const b = el('div', `banner ${p.kind}${p.cls ? ` ${p.cls}` : ''}`);
  b.setAttribute('role', p.kind === 'error' ? 'alert' : 'status');
  b.append(el('span', `codicon codicon-${p.kind === 'error' ? 'error' : 'warning'}`), typeof p.content === 'string' ? el('span', p.textCls ?? '', p.content) : p.content);
  return b;
}
