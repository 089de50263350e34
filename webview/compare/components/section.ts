// A titled section of the compare page (`section.section` with an h3), optionally with an id.
import { el } from '../../components/el';

export function section(title: string, id?: string): HTMLElement {
  const s = el('section', 'section');
  if (id) s.id = id;
  s.append(el('h3', '', title));
  return s;
}
