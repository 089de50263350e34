// Steering controls for the heads selected in the grid: output scale (0..3, 0 = masked),
// mask/unmask, PASTA emphasis of the editor selection (α, on all or the selected heads), sink
// calibration (scale of attention to the first token, 0..2, on all or the selected heads) and
// reset. Each control posts one FromWebview message through `post`; the host re-runs and sends
// a new state, which comes back here through setProps.
import { headKey, headLabel, type FromWebview, type HeadRef, type HeadView, type InterventionsView, type ModelView } from '../../src/shared/protocol';
import { formatScale } from '../logic/gridLogic';
import { truncateLabel } from '../logic/tokenText';

export interface SteeringProps {
  model: ModelView | null;
  heads: HeadView[];
  /** the steering selection: the selected head first, then the extra ones */
  targets: HeadRef[];
  interventions: InterventionsView;
  alpha: number;
  emphasisHeads: 'all' | 'selected';
  sinkHeads: 'all' | 'selected';
}

export interface SteeringCallbacks {
  post(msg: FromWebview): void;
  /** UI-only choices to persist */
  onUi(p: Partial<Pick<SteeringProps, 'alpha' | 'emphasisHeads' | 'sinkHeads'>>): void;
  onDeselect(h: HeadRef): void;
}

type Field = HTMLElement & { value: string; invalid?: boolean };
type Button = HTMLElement & { disabled: boolean };
type Radio = HTMLElement & { checked: boolean };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function button(label: string, secondary: boolean, title?: string): Button {
  const b = document.createElement('vscode-button') as Button;
  b.textContent = label;
  if (secondary) b.setAttribute('secondary', '');
  if (title) b.title = title;
  return b;
}
function slider(min: number, max: number, step: number, label: string): HTMLInputElement {
  const s = el('input', 'range');
  s.type = 'range';
  s.min = String(min);
  s.max = String(max);
  s.step = String(step);
  s.setAttribute('aria-label', label);
  return s;
}
function numberField(min: number, max: number, step: number, label: string): Field {
  const f = document.createElement('vscode-textfield') as Field;
  f.setAttribute('type', 'number');
  f.setAttribute('min', String(min));
  f.setAttribute('max', String(max));
  f.setAttribute('step', String(step));
  f.setAttribute('aria-label', label);
  f.className = 'num';
  return f;
}
function radios(name: string, options: [string, string][], onChange: (v: string) => void): { group: HTMLElement; set(v: string): void } {
  const group = document.createElement('vscode-radio-group');
  group.setAttribute('variant', 'horizontal');
  const items: Radio[] = [];
  for (const [value, label] of options) {
    const r = document.createElement('vscode-radio') as Radio;
    r.setAttribute('name', name);
    r.setAttribute('value', value);
    r.setAttribute('label', label);
    r.addEventListener('change', () => {
      if (r.checked) onChange(value);
    });
    items.push(r);
    group.appendChild(r);
  }
  return { group, set: (v) => items.forEach((r) => (r.checked = r.getAttribute('value') === v)) };
}
const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));
const fmt = (v: number): string => v.toFixed(2);

export class Steering {
  readonly el: HTMLDivElement;
  private props: SteeringProps | null = null;
  /** the props last rendered (see setProps) */
  private shownKey = '';
  private readonly targetsEl = el('div', 'chips');
  private readonly scale = slider(0, 3, 0.05, 'Head output scale');
  private readonly scaleNum = numberField(0, 3, 0.05, 'Head output scale value');
  private readonly maskBtn = button('Mask', true, 'Set the scale of the selected heads to 0');
  private readonly unmaskBtn = button('Unmask', true, 'Set the scale of the selected heads back to 1');
  private readonly alpha = numberField(0.0001, 1, 0.0001, 'PASTA alpha');
  private readonly emphasisHeads;
  private readonly emphasizeBtn = button('Emphasize selection', false, 'Steer the heads towards the text selected in the editor (PASTA)');
  private readonly clearEmphasisBtn = button('Clear', true);
  private readonly emphasisNow = el('div', 'current');
  private readonly sink = slider(0, 2, 0.05, 'Sink attention scale');
  private readonly sinkNum = numberField(0, 2, 0.05, 'Sink attention scale value');
  private readonly sinkHeads;
  private readonly sinkNow = el('div', 'current');
  private readonly resetBtn = button('Reset interventions', true, 'Unmask every head, clear emphasis and sink calibration');
  private readonly summary = el('span', 'muted');

  constructor(private readonly cb: SteeringCallbacks) {
    this.el = el('div', 'steering');
    this.emphasisHeads = radios('emph-heads', [['selected', 'Selected heads'], ['all', 'All heads']], (v) => this.cb.onUi({ emphasisHeads: v === 'all' ? 'all' : 'selected' }));
    this.sinkHeads = radios('sink-heads', [['selected', 'Selected heads'], ['all', 'All heads']], (v) => {
      this.cb.onUi({ sinkHeads: v === 'all' ? 'all' : 'selected' });
    });

    const sec = (title: string, help: string): HTMLDivElement => {
      const s = el('div', 'steer-section');
      const h = el('div', 'steer-title', title);
      const p = el('div', 'steer-help', help);
      s.append(h, p);
      this.el.appendChild(s);
      return s;
    };
    const row = (...children: HTMLElement[]): HTMLDivElement => {
      const r = el('div', 'row');
      r.append(...children);
      return r;
    };

    const s1 = sec('Head output scale', '0 masks a head, 1 leaves it unchanged, above 1 amplifies its output.');
    s1.append(this.targetsEl, row(this.scale, this.scaleNum), row(this.maskBtn, this.unmaskBtn));

    const s2 = sec('Emphasize selection (PASTA)', 'Select text in the editor, then scale attention to everything outside it by α on the chosen heads.');
    const alphaLabel = el('label', 'ctl-label', 'α');
    s2.append(row(alphaLabel, this.alpha, this.emphasisHeads.group), row(this.emphasizeBtn, this.clearEmphasisBtn), this.emphasisNow);

    const s3 = sec('Sink calibration', 'Scale the attention to the first token (the attention sink); 1 = unchanged.');
    s3.append(row(this.sink, this.sinkNum), row(this.sinkHeads.group), this.sinkNow);

    const foot = el('div', 'row steer-foot');
    foot.append(this.resetBtn, this.summary);
    this.el.appendChild(foot);

    // Scale: the readout follows the drag; the host re-runs on release (or on a typed value).
    this.scale.addEventListener('input', () => (this.scaleNum.value = fmt(Number(this.scale.value))));
    this.scale.addEventListener('change', () => this.postScale(Number(this.scale.value)));
    this.scaleNum.addEventListener('change', () => {
      const v = Number(this.scaleNum.value);
      if (Number.isFinite(v)) this.postScale(clamp(v, 0, 3));
    });
    this.maskBtn.addEventListener('click', () => this.postScale(0));
    this.unmaskBtn.addEventListener('click', () => this.postScale(1));

    this.alpha.addEventListener('change', () => {
      const v = Number(this.alpha.value);
      const ok = Number.isFinite(v) && v > 0 && v <= 1;
      this.alpha.invalid = !ok;
      if (ok) this.cb.onUi({ alpha: v });
    });
    this.emphasizeBtn.addEventListener('click', () => {
      const p = this.props;
      if (!p) return;
      const a = Number(this.alpha.value);
      if (!(Number.isFinite(a) && a > 0 && a <= 1)) {
        this.alpha.invalid = true;
        return;
      }
      this.cb.post({ type: 'emphasizeSelection', alpha: a, heads: p.emphasisHeads === 'all' ? 'all' : p.targets });
    });
    this.clearEmphasisBtn.addEventListener('click', () => this.cb.post({ type: 'clearEmphasis' }));

    this.sink.addEventListener('input', () => (this.sinkNum.value = fmt(Number(this.sink.value))));
    this.sink.addEventListener('change', () => this.postSink(Number(this.sink.value)));
    this.sinkNum.addEventListener('change', () => {
      const v = Number(this.sinkNum.value);
      if (Number.isFinite(v)) this.postSink(clamp(v, 0, 2));
    });
    this.resetBtn.addEventListener('click', () => this.cb.post({ type: 'reset' }));
  }

  setProps(p: SteeringProps): void {
    // Identical props (a re-run that changed none of them) rebuild nothing: each rebuilt chip costs
    // the window a layout and a repaint while the model runs.
    const key = JSON.stringify([p.model, p.heads.map((h) => `${h.layer}.${h.head}:${h.scale}`), p.targets, p.interventions, p.alpha, p.emphasisHeads, p.sinkHeads]);
    this.props = p;
    if (key === this.shownKey) return;
    this.shownKey = key;
    const scaleOf = new Map(p.heads.map((h) => [headKey(h), h.scale]));
    const primary = p.targets[0];
    const none = !p.model || p.targets.length === 0;

    this.targetsEl.replaceChildren();
    if (p.targets.length === 0) this.targetsEl.appendChild(el('span', 'muted', 'Select a head in the grid (ctrl/⌘-click for more).'));
    p.targets.forEach((h, i) => {
      const s = scaleOf.get(headKey(h)) ?? 1;
      const chip = el('span', i === 0 ? 'chip-head primary' : 'chip-head', headLabel(h));
      if (s !== 1) chip.appendChild(el('span', s === 0 ? 'chip-scale masked' : 'chip-scale', formatScale(s)));
      if (i > 0) {
        const x = el('button', 'chip-x', '×');
        x.title = `Remove ${headLabel(h)} from the selection`;
        x.addEventListener('click', () => this.cb.onDeselect(h));
        chip.appendChild(x);
      }
      this.targetsEl.appendChild(chip);
    });

    const cur = primary ? (scaleOf.get(headKey(primary)) ?? 1) : 1;
    if (document.activeElement !== this.scale) this.scale.value = String(cur);
    if (!this.scaleNum.matches(':focus-within')) this.scaleNum.value = fmt(cur);
    for (const c of [this.scale, this.scaleNum, this.maskBtn, this.unmaskBtn] as (HTMLElement & { disabled: boolean })[]) c.disabled = none;
    const allMasked = p.targets.length > 0 && p.targets.every((h) => scaleOf.get(headKey(h)) === 0);
    this.maskBtn.disabled = none || allMasked;
    this.unmaskBtn.disabled = none || !p.targets.some((h) => (scaleOf.get(headKey(h)) ?? 1) !== 1);

    if (!this.alpha.matches(':focus-within')) this.alpha.value = String(p.alpha);
    this.emphasisHeads.set(p.emphasisHeads);
    this.sinkHeads.set(p.sinkHeads);
    this.emphasizeBtn.disabled = !p.model || (p.emphasisHeads === 'selected' && p.targets.length === 0);
    const e = p.interventions.emphasis;
    this.clearEmphasisBtn.disabled = !e;
    this.emphasisNow.replaceChildren();
    if (e) {
      this.emphasisNow.append(
        el('span', 'muted', 'Active: '),
        el('q', 'span-text', truncateLabel(e.text.replace(/\s+/g, ' '), 80)),
        el('span', 'muted', ` · α ${e.alpha} · ${e.heads === 'all' ? 'all heads' : e.heads.map(headLabel).join(', ')}`),
      );
    }

    const sv = p.interventions.sink?.value ?? 1;
    if (document.activeElement !== this.sink) this.sink.value = String(sv);
    if (!this.sinkNum.matches(':focus-within')) this.sinkNum.value = fmt(sv);
    const sinkOff = !p.model || (p.sinkHeads === 'selected' && p.targets.length === 0);
    this.sink.disabled = sinkOff;
    (this.sinkNum as Field & { disabled: boolean }).disabled = sinkOff;
    this.sinkNow.replaceChildren();
    const s = p.interventions.sink;
    if (s) {
      const L = p.model?.layers ?? 0;
      const H = p.model?.heads ?? 0;
      const heads = s.heads.length === L * H && L * H > 0 ? 'all heads' : s.heads.map(headLabel).join(', ');
      this.sinkNow.append(el('span', 'muted', `Active: first-token attention ×${fmt(s.value)} on ${heads}`));
    }

    const scaled = p.interventions.scales.filter((x) => x.value !== 0).length;
    const masked = p.interventions.scales.filter((x) => x.value === 0).length;
    const parts = [masked ? `${masked} masked` : '', scaled ? `${scaled} scaled` : '', e ? 'emphasis' : '', s ? 'sink calibration' : ''].filter(Boolean);
    this.summary.textContent = parts.length ? parts.join(' · ') : 'No interventions.';
    this.resetBtn.disabled = parts.length === 0;
  }

  private postScale(value: number): void {
    const p = this.props;
    if (!p || p.targets.length === 0) return;
    this.cb.post({ type: 'setScale', heads: p.targets, value: Math.round(value * 100) / 100 });
  }

  private postSink(value: number): void {
    const p = this.props;
    if (!p || !p.model) return;
    const heads = p.sinkHeads === 'all' ? allHeads(p.model) : p.targets;
    if (heads.length === 0) return;
    this.cb.post({ type: 'setSink', heads, value: Math.round(value * 100) / 100 });
  }
}

export function allHeads(m: ModelView): HeadRef[] {
  const out: HeadRef[] = [];
  for (let layer = 0; layer < m.layers; layer++) for (let head = 0; head < m.heads; head++) out.push({ layer, head });
  return out;
}
