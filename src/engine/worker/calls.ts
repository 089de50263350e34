// The typed request/response protocol between the engine host and its worker thread.
import type { ErrorCode } from '../errors';
import type { RunModelInfo } from '../runs/runFile';
import type { RunRequest, RunResult } from '../run';
import type { GenerateRequest, GenerateResult, GeneratedToken } from '../generate';
import type { DeviceRequest } from '../runtime/ortSession';
import type { RunQuery, TokenDetail } from '../analysis/kept';

export type { RunQuery, TokenDetail };

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

export type WorkerRequest =
  | { id: number; kind: 'open'; params: OpenParams }
  | { id: number; kind: 'inspect'; request: RunRequest; keep?: boolean }
  | { id: number; kind: 'query'; runId: number; query: RunQuery }
  /**
   * saves the kept run as an .attnrun file (every position's logits computed from the kept hidden
   * states when the run had no allLogits); `tensors` (default true) keeps every position's logits and
   * every head's patterns, `autoSaved` marks the file as AttnScope's own auto-save
   */
  | { id: number; kind: 'saveRun'; runId: number; file: string; tensors?: boolean; autoSaved?: boolean }
  /** generation; tokens stream back as `token` messages; `stop` (handled at once, out of order) ends it */
  | { id: number; kind: 'generate'; request: GenerateRequest }
  | { id: number; kind: 'stop'; target: number }
  | { id: number; kind: 'crash'; how: 'throw' | 'exit' | 'oom' }; // test hook: proves containment

export type WorkerReply =
  | { id: number; ok: true; kind: 'open'; info: ModelInfo }
  | { id: number; ok: true; kind: 'inspect'; result: RunResult; warnings: string[]; runId: number }
  | { id: number; ok: true; kind: 'query'; matrix?: Float32Array; detail?: TokenDetail }
  | { id: number; ok: false; error: { code: ErrorCode; message: string } }
  | { id: number; kind: 'progress'; message: string }
  | { id: number; ok: true; kind: 'saveRun'; file: string }
  | { id: number; ok: true; kind: 'generate'; result: Omit<GenerateResult, 'promptTokens'> & { promptTokens: number } }
  | { id: number; kind: 'token'; token: GeneratedToken };
