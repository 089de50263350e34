// The typed call map between the engine host (extension host, CLI bench, tests) and the engine
// process: one entry per call kind, with its parameters and its result. Everything here crosses a
// process boundary by structured clone (typed arrays and Maps included), so it is plain data.
import type { ErrorCode } from '../errors';
import type { RunModelInfo } from '../runs/runFile';
import type { RunRequest, RunResult } from '../run';
import type { GenerateRequest, GenerateResult, GeneratedToken } from '../generate';
import type { DeviceRequest } from '../runtime/ortSession';
import type { PatternTile, RunQuery, TokenDetail } from '../analysis/kept';
import type { AblationRequest, AblationResult } from '../analysis/ablation';
import type { LensRequest, LensResult } from '../analysis/lens';
import type { PatchRequest, PatchResult } from '../analysis/patching';

export type { PatternTile, RunQuery, TokenDetail };

export interface OpenParams {
  modelDir: string;
  device: DeviceRequest;
  cacheRoot?: string;
  threads?: number;
}

export interface ModelInfo extends RunModelInfo {
  maxPositions: number;
  device: string;
  deviceNote?: string;
  loadMs: number;
}

export interface InspectReply {
  result: RunResult;
  warnings: string[];
  runId: number;
  /** where the inspection's time went between the host and the engine process (see InspectTrace) */
  trace: InspectTrace;
}

/**
 * Wall-clock marks of one inspection in ms since the epoch (performance.timeOrigin + now(): the
 * two processes' marks compare), from the call leaving the host to its reply arriving there. The
 * engine process fills its marks; EngineHost.inspect adds the host's (absent on the wire).
 */
export interface InspectTrace {
  /** host: inspect() was called (before waiting for the model and for an earlier inspection) */
  called?: number;
  /** host: the call was sent to the engine process */
  sent?: number;
  /** engine: the call arrived on its main thread */
  received: number;
  /** engine: its handler started (after the model calls queued before it) */
  started: number;
  /** engine: the run (tokenizing, forward pass, kept state) returned */
  ran: number;
  /** engine: the reply is about to be sent (the kept run's queries set up) */
  replied: number;
  /** host: the reply arrived (deserialized, on the host's event loop) */
  arrived?: number;
  /** engine: queries about the kept run its main thread answered while this call was in it, and their ms */
  queries: number;
  queryMs: number;
  /** host: the other calls (by kind) sent to the engine while this one was in flight */
  during?: Partial<Record<CallKind, number>>;
}

/** performance.timeOrigin + performance.now(): a wall clock in ms that the host and the engine process share. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface QueryReply {
  /** aggregate [T, T] or one head's pattern [T, T] (row = query) */
  matrix?: Float32Array;
  detail?: TokenDetail;
  /** a rollout row [T] (query `rollout`) or the overlay's row or column [T] (query `overlay`) */
  row?: Float32Array;
  /** a window of one head's pattern, exact or max-pooled (query `patternTile`) */
  tile?: PatternTile;
  /** ms from the query's arrival in the engine process to its answer (waiting for the kept run's query sessions included) */
  engineMs?: number;
  /** wallMs() when the query arrived on the engine process's main thread (its 'message' event) */
  receivedAt?: number;
}

/** The result of `ablate`: AblationResult without the tokens (the host has the run's), with their count. */
export type AblateReply = Omit<AblationResult, 'tokens'> & { tokenCount: number };

/** The result of `lens`: LensResult without the tokens and the [L+1, V] logits, with the token count. */
export type LensReply = Omit<LensResult, 'tokens' | 'logits'> & { tokenCount: number };

/** The result of `patch`: PatchResult without the two token lists, with their (equal) count. */
export type PatchReply = Omit<PatchResult, 'cleanTokens' | 'corruptTokens'> & { tokenCount: number };

/** A vocabulary token: its id and its text as the tokenizer decodes it alone. */
export interface VocabToken {
  id: number;
  text: string;
}

/**
 * The answer of `lookupToken`. For `{text}`: the tokens the text encodes to (special tokens the
 * tokenizer inserts left out) and, when the text has no leading whitespace, the tokens of the text
 * with one leading space (the usual word-initial form). For `{id}`: that one token.
 */
export interface TokenLookup {
  pieces: VocabToken[];
  spaced: VocabToken[] | null;
}

export type GenerateReply = Omit<GenerateResult, 'promptTokens'> & { promptTokens: number };

/** How the test hook makes the engine process die. */
export type CrashHow = 'throw' | 'exit' | 'oom' | 'abort' | 'kill';

/** Call kind → [parameters, result]. */
export interface EngineCalls {
  /** opens (or re-opens) a model; progress messages while converting weights */
  open: [OpenParams, ModelInfo];
  /**
   * runs an inspection; with `keep`, the run stays in the engine for queries (its queries, keys and
   * row lse per layer, not its patterns: see analysis/kept.ts) and `request.attention` is ignored
   */
  inspect: [{ request: RunRequest; keep?: boolean }, InspectReply];
  /** a question about the kept run, answered without re-running (also while a newer run is in flight) */
  query: [{ runId: number; query: RunQuery }, QueryReply];
  /**
   * saves the kept run as an .attnrun file; `tensors` (default true) keeps every position's logits
   * (computed from the kept hidden states when the run had none) and every head's patterns;
   * `autoSaved` marks the file as AttnScope's own auto-save (only those are ever pruned)
   */
  saveRun: [{ runId: number; file: string; tensors?: boolean; autoSaved?: boolean }, { file: string }];
  /** generation; tokens stream back as `token` messages; a `stop` message ends it */
  generate: [{ request: GenerateRequest }, GenerateReply];
  /**
   * head importance by ablation (analysis/ablation.ts): masks each head alone and measures the
   * request's metric; `progress` messages carry done/total after the baseline and each head; a
   * `stop` message cancels between head runs (the call then fails with CANCELLED)
   */
  ablate: [{ request: AblationRequest }, AblateReply];
  /** empties the compiled-model cache under `root` (entries this engine has open are kept) */
  clearCache: [{ root?: string }, { removed: number; bytes: number; keptInUse: number }];
  /**
   * the logit lens at one position (analysis/lens.ts): each layer's top-K and the watched ids'
   * probability, logit and rank; layer L is the model's own prediction at that position
   */
  lens: [{ request: LensRequest }, LensReply];
  /**
   * activation patching per head (analysis/patching.ts), clean → corrupt; `progress` messages carry
   * done/total after the corrupt baseline and each head; a `stop` message cancels between runs
   */
  patch: [{ request: PatchRequest }, PatchReply];
  /** looks a text (or an id) up in the open model's vocabulary */
  lookupToken: [{ text: string } | { id: number }, TokenLookup];
  /** test hook: proves containment */
  crash: [{ how: CrashHow }, never];
}

export type CallKind = keyof EngineCalls;
export type CallParams<K extends CallKind> = EngineCalls[K][0];
export type CallResult<K extends CallKind> = EngineCalls[K][1];

/** Host → engine process. `params` are the CallParams of `kind` (EngineHost.call pairs them). */
export type ToEngine =
  | { type: 'call'; id: number; kind: CallKind; params: CallParams<CallKind> }
  /**
   * ends the generation started by call `target` after the token being decoded, cancels an
   * ablation between head runs, or aborts a model download (handled at once, out of order)
   */
  | { type: 'stop'; target: number };

/**
 * Engine process → host. A result's type is the CallResult of the call `id` named (the host keeps
 * that pairing in its typed call()).
 */
export type FromEngine =
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; code: ErrorCode; message: string }
  /** `done`/`total`: steps of a call that counts them (ablate: the baseline is step 0, then one per head) */
  | { type: 'progress'; id: number; message: string; done?: number; total?: number }
  | { type: 'token'; id: number; token: GeneratedToken }
  /** what the run in progress needs: said before it starts, so a death by memory can be explained */
  | { type: 'load'; id: number; tokens: number; estimatedBytes: number };
