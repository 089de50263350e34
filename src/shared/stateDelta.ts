// Which fields of a panel state update actually change what the panel shows. Used by both sides:
// the host leaves out of a `state` message the fields it already sent with the same value (a re-run
// used to post the same interventions, model and notes again), and the panel re-renders only the
// parts of the page that depend on the fields that changed (see webview/logic/renderPlan.ts).
// Every re-render of the panel costs the browser layout, paint and compositing of the whole window
// (in code-server the webview shares the workbench's renderer), while the model runs on the same
// cores.
import type { PanelState } from './protocol';

export type StateKey = keyof PanelState;

/**
 * A field's identity for "did it change": a run by its id (run ids are unique for the extension's
 * lifetime, across engine restarts, and a run never changes under its id), everything else by its
 * JSON (small plain values).
 */
export function stateSignature<K extends StateKey>(key: K, value: PanelState[K] | undefined): string {
  if (value === undefined) return 'undefined';
  if (key === 'run') return value === null ? 'null' : `run ${(value as NonNullable<PanelState['run']>).runId}`;
  return JSON.stringify(value);
}

/** The signatures of a whole state (what the other side holds after `init`). */
export function stateSignatures(state: PanelState): Map<StateKey, string> {
  const out = new Map<StateKey, string>();
  for (const k of Object.keys(state) as StateKey[]) out.set(k, stateSignature(k, state[k]));
  return out;
}

/**
 * The fields of `patch` whose signature differs from `known`, and `known` updated to them. An
 * empty result means nothing would change on the other side.
 */
export function stateDelta(known: Map<StateKey, string>, patch: Partial<PanelState>): Partial<PanelState> {
  const out: Partial<PanelState> = {};
  for (const k of Object.keys(patch) as StateKey[]) {
    const sig = stateSignature(k, patch[k]);
    if (known.get(k) === sig) continue;
    known.set(k, sig);
    (out as Record<StateKey, unknown>)[k] = patch[k];
  }
  return out;
}
