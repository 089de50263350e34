// One floating tooltip shared by all components: a title and label/value rows, text only (token
// text from the host is never parsed as HTML). Positioned next to the pointer, kept in the viewport.

export interface TooltipContent {
  title: string;
  rows?: [string, string][];
  /** the row label to emphasise */
  strong?: string;
  /** paragraphs under the rows: a bold lead, text, and a muted source line */
  notes?: { lead: string; text: string; cite?: string }[];
  hint?: string;
}

let el: HTMLDivElement | null = null;

function ensure(): HTMLDivElement {
  if (el) return el;
  el = document.createElement('div');
  el.className = 'tooltip';
  el.setAttribute('role', 'tooltip');
  el.hidden = true;
  document.body.appendChild(el);
  return el;
}

export function showTooltip(clientX: number, clientY: number, c: TooltipContent): void {
  const t = ensure();
  t.replaceChildren();
  const title = document.createElement('div');
  title.className = 'tt-title';
  title.textContent = c.title;
  t.appendChild(title);
  if (c.rows && c.rows.length > 0) {
    const table = document.createElement('div');
    table.className = 'tt-rows';
    for (const [k, v] of c.rows) {
      const kk = document.createElement('span');
      kk.className = 'tt-k';
      kk.textContent = k;
      const vv = document.createElement('span');
      vv.className = 'tt-v';
      vv.textContent = v;
      if (k === c.strong) {
        kk.classList.add('strong');
        vv.classList.add('strong');
      }
      table.append(kk, vv);
    }
    t.appendChild(table);
  }
  for (const n of c.notes ?? []) {
    const p = document.createElement('div');
    p.className = 'tt-note';
    const b = document.createElement('strong');
    b.textContent = n.lead;
    p.append(b, ` — ${n.text}`);
    if (n.cite) {
      const s = document.createElement('div');
      s.className = 'tt-k';
      s.textContent = n.cite;
      p.appendChild(s);
    }
    t.appendChild(p);
  }
  if (c.hint) {
    const h = document.createElement('div');
    h.className = 'tt-hint';
    h.textContent = c.hint;
    t.appendChild(h);
  }
  t.hidden = false;
  const pad = 12;
  const r = t.getBoundingClientRect();
  let x = clientX + pad;
  let y = clientY + pad + 4;
  if (x + r.width > window.innerWidth - 4) x = Math.max(4, clientX - pad - r.width);
  if (y + r.height > window.innerHeight - 4) y = Math.max(4, clientY - pad - r.height);
  t.style.left = `${x}px`;
  t.style.top = `${y}px`;
}

export function hideTooltip(): void {
  if (el) el.hidden = true;
}
