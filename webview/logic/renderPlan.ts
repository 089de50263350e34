// What the panel re-renders for a state update (DOM-free, so the unit tests cover it): the parts
// of the page that depend on the fields whose value changed, collected over the messages of one
// animation frame and rendered once. A re-run sends up to four messages (interventions, busy, the
// run with its overlay, not busy); each used to rebuild the whole page (the toolbar, the grid's
// notes and chips, the steering chips, the watched tokens and the logit lens table), and every
// rebuild cost the browser layout, paint and compositing while the model ran on the same cores.
import type { PanelState } from '../../src/shared/protocol';
import { stateSignature, type StateKey } from '../../src/shared/stateDelta';

export type RenderPart = 'toolbar' | 'run' | 'settings' | 'grid' | 'steering' | 'pattern' | 'watch';
export const RENDER_PARTS: readonly RenderPart[] = ['toolbar', 'run', 'settings', 'grid', 'steering', 'pattern', 'watch'];

/** The parts that read each state field (main.ts's render functions). */
const READERS: Record<StateKey, readonly RenderPart[]> = {
  model: ['toolbar', 'grid', 'steering', 'pattern', 'watch'],
  run: ['toolbar', 'run', 'grid', 'steering', 'pattern', 'watch'],
  selected: ['grid', 'steering', 'pattern'],
  interventions: ['grid', 'steering'],
  settings: ['settings', 'grid'],
  busy: ['toolbar'],
  error: ['toolbar'],
  importance: ['grid'],
  importanceNote: ['grid'],
  patching: ['grid'],
  patchingNote: ['grid'],
  watch: ['watch'],
};

/** The fields of `patch` whose value differs from `state`'s (a run by its id, the rest by value). */
export function changedKeys(state: PanelState, patch: Partial<PanelState>): StateKey[] {
  return (Object.keys(patch) as StateKey[]).filter((k) => k in READERS && stateSignature(k, patch[k]) !== stateSignature(k, state[k]));
}

/** The parts to re-render when `keys` changed. */
export function partsFor(keys: readonly StateKey[]): Set<RenderPart> {
  const out = new Set<RenderPart>();
  for (const k of keys) for (const p of READERS[k] ?? []) out.add(p);
  return out;
}

/**
 * Collects parts to render and renders them once, at the next `schedule`d callback (an animation
 * frame in the panel) or at `flush()` (a message that needs the DOM up to date first, e.g. an
 * overlay for a new run's token spans). Parts are rendered in RENDER_PARTS order.
 */
export class RenderBatch {
  private pending = new Set<RenderPart>();
  private scheduled = false;

  constructor(
    private readonly schedule: (cb: () => void) => void,
    private readonly render: (parts: ReadonlySet<RenderPart>) => void,
  ) {}

  mark(parts: Iterable<RenderPart>): void {
    for (const p of parts) this.pending.add(p);
    if (this.pending.size === 0 || this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Renders what is pending now (nothing when nothing is). */
  flush(): void {
    if (this.pending.size === 0) return;
    const parts = new Set(RENDER_PARTS.filter((p) => this.pending.has(p)));
    this.pending.clear();
    this.render(parts);
  }

  get isPending(): boolean {
    return this.pending.size > 0;
  }
}
