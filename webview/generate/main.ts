// Entry of the Generation panel: N tokens from the inspected prompt, without and with the current
// interventions, streamed side by side; Stop; "Inspect generated text" per side.
// Protocol: src/shared/runsProtocol.ts (ToGenerate / FromGenerate).
import './generate.css';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { RUNS_PROTOCOL_VERSION, type FromGenerate, type GenerateInit, type GenerateOptions, type Lane, type ToGenerate } from '../../src/shared/runsProtocol';
import { validateToGenerate } from '../compare/compareLogic';
import { parseGenerateFields, seedUsed } from './generateLogic';
import { Messenger } from '../../src/shared/messenger';
import { LIMITS } from '../../src/shared/validate';
import { banner } from '../components/banner';
import { el } from '../components/el';
import { formatWatchProb } from '../compare/compareLogic';
import { visibleToken } from '../logic/tokenText';
import type { WatchedToken } from '../../src/shared/watch';
import { watchedSteps } from './watchedSteps';

interface LaneView {
  /** watched: the probabilities of `watched`'s tokens at this step */
  tokens: { text: string; prob: number; watched: number[] }[];
  status: string;
  done: boolean;
}

const vscode = acquireVsCodeApi();
const messenger = new Messenger<ToGenerate, FromGenerate>((env) => vscode.postMessage(env), { errorOf: (b) => (b.type === 'error' ? b.message : undefined) });
const app = document.getElementById('app')!;
let init: GenerateInit | null = null;
let running = false;
let activeLanes: Lane[] = [];
let error: string | null = null;
/** the watched tokens of the generation shown (each token message carries their probabilities) */
let watched: WatchedToken[] = [];
const lanes: Record<Lane, LaneView> = { without: { tokens: [], status: '', done: false }, with: { tokens: [], status: '', done: false } };
const saved = (vscode.getState() ?? {}) as Partial<GenerateOptions>;

// ---- static skeleton (fields keep their values across renders) ----
const header = el('div', 'header');
const form = el('div', 'form');
function field(label: string, id: string, value: string, help: string): HTMLElement & { value: string; disabled: boolean } {
  const wrap = el('label', 'field');
  wrap.dataset.field = id;
  wrap.append(el('span', 'flabel', label));
  const tf = el('vscode-textfield' as 'input') as unknown as HTMLElement & { value: string };
  tf.id = id;
  tf.setAttribute('value', value);
  tf.title = help;
  wrap.append(tf as unknown as HTMLElement);
  form.append(wrap);
  return tf as HTMLElement & { value: string; disabled: boolean };
}
const nField = field('Tokens', 'gen-tokens', '32', `how many tokens to generate (1–${LIMITS.maxTokens})`);
const tField = field('Temperature', 'gen-temperature', '0', '0 = greedy (argmax); higher = more random');
const SEED_HELP = 'seed of the sampler: the same seed gives the same text';
const sField = field('Seed', 'gen-seed', '0', SEED_HELP);
const genBtn = el('vscode-button' as 'button') as HTMLElement;
genBtn.id = 'gen-run';
genBtn.textContent = 'Generate';
genBtn.setAttribute('icon', 'play');
const stopBtn = el('vscode-button' as 'button') as HTMLElement;
stopBtn.id = 'gen-stop';
stopBtn.textContent = 'Stop';
stopBtn.setAttribute('icon', 'debug-stop');
stopBtn.setAttribute('secondary', '');
const buttons = el('div', 'buttons'); // Generate and Stop wrap together
buttons.append(genBtn, stopBtn);
form.append(buttons);
const seedHint = el('div', 'seed-hint muted', 'Temperature 0 is greedy (always the most likely token): the seed is not used.');
seedHint.id = 'gen-seed-hint';
const msg = el('div', 'message');
const ivBox = el('div', 'interventions');
const cols = el('div', 'columns');
app.append(header, form, seedHint, msg, ivBox, cols);

/** The seed field is disabled, with the reason shown, while the temperature is 0 (greedy). */
function syncSeed(): void {
  const used = seedUsed(tField.value);
  sField.disabled = !used;
  sField.toggleAttribute('disabled', !used);
  sField.title = used ? SEED_HELP : 'not used at temperature 0 (greedy): set a temperature above 0 to sample';
  sField.closest('.field')?.classList.toggle('disabled', !used);
  seedHint.hidden = used;
}
tField.addEventListener('input', syncSeed);
tField.addEventListener('change', syncSeed);
syncSeed();

function options(): GenerateOptions | string {
  return parseGenerateFields({ tokens: nField.value, temperature: tField.value, seed: sField.value });
}

genBtn.addEventListener('click', () => {
  const o = options();
  if (typeof o === 'string') {
    error = o;
    render();
    return;
  }
  error = null;
  vscode.setState(o);
  // an event, not a request: a generation can outlast any reply timeout; the host streams
  // started/token/done/finished, and an error (e.g. a generation is running) comes back as `error`
  messenger.sendEvent({ type: 'generate', options: o });
  running = true;
  render();
});
stopBtn.addEventListener('click', () => messenger.sendEvent({ type: 'stop' }));

window.addEventListener('message', (ev: MessageEvent) => {
  const v = validateToGenerate(ev.data);
  if (!v.ok) return;
  if (messenger.receive(v.value)) return;
  const b = v.value.body;
  switch (b.type) {
    case 'init': {
      const first = init === null;
      init = b.init;
      if (first) {
        const o = { ...b.init.options, ...saved };
        nField.value = String(o.maxTokens);
        tField.value = String(o.temperature);
        sField.value = String(o.seed);
        syncSeed();
      }
      break;
    }
    case 'session':
      // the session changed (e.g. Reset Interventions): list its interventions now; which lanes
      // run is decided by the host when Generate is pressed
      if (init) init = { ...init, ...b.session };
      break;
    case 'started':
      running = true;
      activeLanes = b.lanes;
      watched = b.watched ?? [];
      error = null;
      for (const l of ['with', 'without'] as Lane[]) lanes[l] = { tokens: [], status: b.lanes.includes(l) ? 'waiting…' : '', done: false };
      lanes[b.lanes[0]!].status = 'generating…';
      break;
    case 'token': {
      // probabilities of other watched tokens than the started message's are not shown
      const w = b.watched?.length === watched.length ? b.watched : watched.map(() => NaN);
      const t = { text: b.text, prob: b.prob, watched: w };
      lanes[b.lane].tokens.push(t);
      lanes[b.lane].status = `${lanes[b.lane].tokens.length} tokens…`;
      appendToken(b.lane, t);
      return; // no full re-render per token
    }
    case 'done': {
      const reason = { maxTokens: 'reached the token limit', stopToken: 'the model ended the text', maxPositions: 'reached the model’s context length', cancelled: 'stopped' }[b.stopReason] ?? b.stopReason;
      lanes[b.lane].status = `${b.tokens} tokens · ${b.perTokenMs > 0 ? `${b.perTokenMs.toFixed(1)} ms/token · ` : ''}${reason}`;
      lanes[b.lane].done = true;
      const next = activeLanes[activeLanes.indexOf(b.lane) + 1];
      if (next && !lanes[next].done) lanes[next].status = 'generating…';
      break;
    }
    case 'finished':
      running = false;
      break;
    case 'error':
      error = b.message;
      running = false;
      break;
  }
  render();
});

/**
 * One generated token: its probability (and the watched tokens' at this step) as the title, dotted
 * underline when unlikely (p < 10%).
 */
function generatedToken(t: LaneView['tokens'][number]): HTMLSpanElement {
  const s = el('span', 'gtok', t.text);
  s.title = [`p = ${(t.prob * 100).toFixed(1)}%`, ...watched.map((w, i) => `p(${visibleToken(w.text)}) = ${formatWatchProb(t.watched[i] ?? NaN)}`)].join('\n');
  if (t.prob < 0.1) s.classList.add('unlikely');
  return s;
}

/** Per watched token: the largest probability in either lane (the top of both sparklines). */
function watchScale(): number[] {
  return watched.map((_, w) => {
    let m = 0;
    for (const l of ['with', 'without'] as Lane[]) for (const t of lanes[l].tokens) if (Number.isFinite(t.watched[w]!)) m = Math.max(m, t.watched[w]!);
    return m;
  });
}

function watchedBlock(lane: Lane): HTMLElement {
  return watchedSteps({ tokens: watched, steps: lanes[lane].tokens.map((t) => t.watched), scale: watchScale(), texts: lanes[lane].tokens.map((t) => t.text) });
}

function appendToken(lane: Lane, t: LaneView['tokens'][number]): void {
  const out = document.querySelector<HTMLElement>(`[data-lane="${lane}"] .generated`);
  const st = document.querySelector<HTMLElement>(`[data-lane="${lane}"] .status`);
  if (!out) return render();
  out.append(generatedToken(t));
  if (st) st.textContent = lanes[lane].status;
  // the sparklines of both lanes share a scale per token: redraw both
  if (watched.length) for (const l of ['with', 'without'] as Lane[]) document.querySelector(`[data-lane="${l}"] .gen-watched`)?.replaceWith(watchedBlock(l));
  const box = out.closest('.textbox');
  if (box) box.scrollTop = box.scrollHeight;
}

function render(): void {
  header.replaceChildren();
  if (!init) {
    header.append(el('p', 'muted', 'Loading…'));
    return;
  }
  header.append(el('h2', '', `Continue ${init.promptName}`), el('span', 'muted', `${init.prompt.length} characters of prompt`));
  genBtn.toggleAttribute('disabled', running);
  stopBtn.toggleAttribute('disabled', !running);
  msg.replaceChildren();
  if (error) msg.append(banner({ kind: 'error', content: error }));
  ivBox.replaceChildren();
  if (init.interventions.length === 0) ivBox.append(el('span', 'muted', 'No interventions are active: only the unmodified model generates. Mask, scale or emphasize heads to compare.'));
  else {
    ivBox.append(el('span', 'muted', 'Interventions: '));
    for (const l of init.interventions) ivBox.append(el('span', 'chip iv', l));
  }
  cols.replaceChildren();
  const shown: Lane[] = init.interventions.length > 0 || activeLanes.includes('with') ? ['without', 'with'] : ['without'];
  cols.classList.toggle('one', shown.length === 1);
  for (const lane of shown) {
    const col = el('div', 'col');
    col.dataset.lane = lane;
    col.append(el('h3', '', lane === 'without' ? 'Without interventions' : 'With interventions'));
    const box = el('div', 'textbox');
    const tail = init.prompt.length > 300 ? `…${init.prompt.slice(-300)}` : init.prompt;
    box.append(el('span', 'prompt', tail));
    const gen = el('span', 'generated');
    for (const t of lanes[lane].tokens) gen.append(generatedToken(t));
    box.append(gen);
    if (running && !lanes[lane].done && activeLanes.includes(lane)) box.append(el('span', 'caret'));
    col.append(box, watchedBlock(lane));
    const foot = el('div', 'foot');
    foot.append(el('span', 'status muted', lanes[lane].status || (running ? '' : 'Press Generate.')));
    const ins = el('vscode-button' as 'button') as HTMLElement;
    ins.textContent = 'Inspect generated text';
    ins.setAttribute('secondary', '');
    ins.setAttribute('icon', 'eye');
    ins.className = 'inspect';
    ins.toggleAttribute('disabled', lanes[lane].tokens.length === 0 || running);
    ins.addEventListener('click', () => messenger.sendEvent({ type: 'inspect', lane }));
    foot.append(ins);
    col.append(foot);
    cols.append(col);
  }
}

render();
messenger.sendEvent({ type: 'ready', version: RUNS_PROTOCOL_VERSION });
