// The panel's static layout: toolbar, banners, collapsible sections and the split. Returns the
// elements main.ts fills; holds no state.
import type { Aggregation, Direction } from '../src/shared/protocol';

type Select = HTMLElement & { value: string };
type Check = HTMLElement & { checked: boolean };

export interface Layout {
  toolbar: { model: HTMLElement; arch: HTMLElement; facts: HTMLElement; busy: HTMLElement; busyText: HTMLElement };
  error: { el: HTMLElement; text: HTMLElement; dismiss: HTMLElement };
  warn: HTMLElement;
  empty: HTMLElement;
  main: HTMLElement;
  sections: Record<SectionId, HTMLElement & { open: boolean; heading: string; description: string }>;
  overlayControls: { direction: Select; aggregation: Select; scale: Select; discount: Check };
  slots: Record<SectionId, HTMLElement>;
}

export type SectionId = 'prompt' | 'heads' | 'next' | 'lens' | 'steering' | 'pattern';

function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function select(id: string, label: string, options: [string, string][]): { wrap: HTMLElement; sel: Select } {
  const wrap = h('span', 'ctl');
  const lab = h('label', 'ctl-label', label);
  lab.htmlFor = id;
  const sel = document.createElement('vscode-single-select') as Select;
  sel.id = id;
  sel.setAttribute('aria-label', label);
  for (const [v, text] of options) {
    const o = document.createElement('vscode-option');
    o.setAttribute('value', v);
    o.textContent = text;
    sel.appendChild(o);
  }
  wrap.append(lab, sel);
  return { wrap, sel };
}

export function buildLayout(app: HTMLElement): Layout {
  app.replaceChildren();
  const toolbar = h('header', 'toolbar');
  const model = h('span', 'tb-model', 'No model');
  const arch = document.createElement('vscode-badge');
  arch.setAttribute('variant', 'default');
  arch.hidden = true;
  const facts = h('span', 'tb-facts');
  const busy = h('span', 'tb-busy');
  busy.setAttribute('role', 'status');
  // A still icon, not an animated progress ring: the ring's animation kept a Chromium renderer busy
  // at about a whole core while a run was in flight (measured in code-server: 2.4–5.4 CPU-seconds per
  // re-run at 2,048 tokens), and the run it was waiting for went 2–3× slower on a 2-core machine.
  const icon = h('span', 'codicon codicon-sync tb-busy-icon');
  icon.setAttribute('aria-hidden', 'true');
  const busyText = h('span', 'tb-busy-text');
  busy.append(icon, busyText);
  busy.classList.add('idle');
  toolbar.append(model, arch, facts, h('span', 'spacer'), busy);

  const error = h('div', 'banner error');
  error.setAttribute('role', 'alert');
  const errText = h('span', 'banner-text');
  const dismiss = h('button', 'banner-x', '×');
  dismiss.title = 'Dismiss';
  dismiss.setAttribute('aria-label', 'Dismiss error');
  error.append(h('span', 'banner-icon', '!'), errText, dismiss);
  error.hidden = true;
  const warn = h('div', 'banner warn');
  warn.hidden = true;

  const empty = h('div', 'empty');
  empty.innerHTML =
    '<div class="empty-title">No inspection yet</div><div>Open a prompt file and run <b>AttnScope: Inspect Attention</b> (Ctrl+Alt+I). The panel then shows the prompt tinted by attention, the head grid, the selected head’s pattern, the next-token predictions and the steering controls.</div>';

  const main = h('main', 'panel');
  const mk = (id: SectionId, heading: string): [HTMLElement & { open: boolean; heading: string; description: string }, HTMLElement] => {
    const c = document.createElement('vscode-collapsible') as HTMLElement & { open: boolean; heading: string; description: string };
    c.setAttribute('heading', heading);
    c.dataset.section = id;
    c.className = `section section-${id}`;
    const body = h('div', 'section-body');
    c.appendChild(body);
    return [c, body];
  };
  const [prompt, promptBody] = mk('prompt', 'Prompt');
  const [heads, headsBody] = mk('heads', 'Heads');
  const [next, nextBody] = mk('next', 'Next token');
  const [lens, lensBody] = mk('lens', 'Logit lens');
  const [steering, steeringBody] = mk('steering', 'Steering');
  const [pattern, patternBody] = mk('pattern', 'Pattern');

  const ctlRow = h('div', 'row overlay-controls');
  const direction = select('ov-direction', 'Attention', [
    ['from', 'from the cursor token'],
    ['to', 'to the cursor token'],
  ] satisfies [Direction, string][]);
  const aggregation = select('ov-aggregation', 'Heads', [
    ['mean', 'mean of enabled heads'],
    ['head', 'selected head'],
    ['layer', 'selected head’s layer'],
    ['rollout', 'rollout (all layers)'],
  ] satisfies [Aggregation, string][]);
  const scale = select('ov-scale', 'Scale', [
    ['linear', 'linear'],
    ['sqrt', 'sqrt'],
    ['log', 'log'],
  ]);
  const discount = document.createElement('vscode-checkbox') as Check;
  discount.setAttribute('label', 'Discount sink');
  discount.title = 'Leave the first token and special tokens (attention sinks) out of the color scale';
  ctlRow.append(direction.wrap, aggregation.wrap, scale.wrap, discount);
  const promptSlot = h('div', 'prompt-slot');
  promptBody.append(ctlRow, promptSlot);

  const split = h('div', 'split');
  const left = h('div', 'split-left');
  const right = h('div', 'split-right');
  // The prediction first: the next tokens and the watched tokens stay above the fold.
  left.append(next, heads, lens, steering);
  right.append(pattern);
  split.append(left, right);
  main.append(prompt, split);
  app.append(toolbar, error, warn, empty, main);

  return {
    toolbar: { model, arch, facts, busy, busyText },
    error: { el: error, text: errText, dismiss },
    warn,
    empty,
    main,
    sections: { prompt, heads, next, lens, steering, pattern },
    overlayControls: { direction: direction.sel, aggregation: aggregation.sel, scale: scale.sel, discount },
    slots: { prompt: promptSlot, heads: headsBody, next: nextBody, lens: lensBody, steering: steeringBody, pattern: patternBody },
  };
}
