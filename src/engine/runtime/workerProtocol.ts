// The typed request/response protocol between the engine host and its worker thread.
import type { ErrorCode } from '../errors';
import type { RunRequest, RunResult } from '../run';
import type { DeviceRequest } from './ortSession';

export interface OpenParams {
  modelDir: string;
  device: DeviceRequest;
  cacheRoot?: string;
  threads?: number;
}

export interface ModelInfo {
  dir: string;
  hash: string;
  arch: string;
  modelType: string;
  layers: number;
  heads: number;
  kvHeads: number;
  hiddenSize: number;
  vocabSize: number;
  maxPositions: number;
  device: string;
  deviceNote?: string;
  loadMs: number;
}

export type WorkerRequest =
  | { id: number; kind: 'open'; params: OpenParams }
  | { id: number; kind: 'inspect'; request: RunRequest }
  | { id: number; kind: 'crash'; how: 'throw' | 'exit' | 'oom' }; // test hook: proves containment

export type WorkerReply =
  | { id: number; ok: true; kind: 'open'; info: ModelInfo }
  | { id: number; ok: true; kind: 'inspect'; result: RunResult; warnings: string[] }
  | { id: number; ok: false; error: { code: ErrorCode; message: string } }
  | { id: number; kind: 'progress'; message: string };
