// onnxruntime-node sessions and device choice. `auto` uses CUDA on Linux x64 when its provider
// libraries are installed (cudaProvider.ts) and the NVIDIA libraries they need are on the loader's
// path, and falls back to CPU otherwise; the chosen device, and why CUDA was not used, are reported.
import * as ort from 'onnxruntime-node';
import { EngineError, oneLine } from '../errors';
import { cudaReadiness, cudaStoreIn, ortBinaryDir, type CudaReadiness } from './cudaProvider';
import { defaultCacheRoot } from './modelCache';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type Device = 'cpu' | 'cuda';

export interface SessionResult {
  session: ort.InferenceSession;
  device: Device;
  /** why CUDA was not used, when it was asked for or tried */
  fallback?: string;
}

/**
 * What keeps this process from CUDA, or nothing. Links the provider libraries from the CLI's store
 * into onnxruntime's folder when they are installed there but not yet linked (the extension host
 * links from its own storage at activation).
 */
export function cudaReadinessNow(link = true): CudaReadiness {
  if (process.platform === 'linux' && process.arch === 'x64') {
    const backends = ort.listSupportedBackends?.() ?? [];
    if (!backends.some((b) => b.name === 'cuda')) return { blocker: 'runtime', reason: 'this onnxruntime-node build has no CUDA backend' };
  }
  return cudaReadiness({ stores: [defaultCudaStore()], link });
}

export { ortBinaryDir };

/** Where the CLI installs the CUDA provider: $ATTNSCOPE_CACHE/cuda/<version> or ~/.cache/attnscope/cuda/<version>. */
export function defaultCudaStore(): string {
  return cudaStoreIn(defaultCacheRoot());
}

function options(device: Device, threads?: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: device === 'cuda' ? [{ name: 'cuda' }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    // Without onnxruntime's CPU arena a buffer it frees goes back to the system: a kept run's queries
    // and keys (graph outputs) are then released one by one as they are copied to the caller instead
    // of all staying in the arena until the run ends. Measured on a SmolLM2-135M shape (BENCHMARKS.md):
    // engine peak 2.50 → 2.19 GiB at 8,000 tokens, 1.60 → 1.48 GiB at 4,096, run times unchanged.
    enableCpuMemArena: false,
    logSeverityLevel: 3,
    ...(threads ? { intraOpNumThreads: threads } : {}),
  };
}

export async function createSession(modelPath: string, device: DeviceRequest, threads?: number): Promise<SessionResult> {
  if (device === 'cpu') return cpu(modelPath, threads);
  const r = cudaReadinessNow();
  // Missing NVIDIA libraries skip the attempt under `auto` when the loader's view was read in full;
  // an explicit `cuda`, or an uncertain check, tries anyway and names what was missing if it fails.
  const attempt = !r.blocker || (r.blocker === 'system' && (device === 'cuda' || r.libraries?.certain === false));
  if (!attempt) {
    if (device === 'cuda') throw new EngineError('RUNTIME', `CUDA was requested but ${r.reason}; use --device cpu or auto`);
    return { ...(await cpu(modelPath, threads)), fallback: r.reason };
  }
  try {
    return { session: await ort.InferenceSession.create(modelPath, options('cuda', threads)), device: 'cuda' };
  } catch (e) {
    const why = r.reason ? `${r.reason} (onnxruntime: ${oneLine(e)})` : `its provider did not load (${oneLine(e)})`;
    if (device === 'cuda') throw new EngineError('RUNTIME', `CUDA was requested but ${why}; use --device cpu or auto`);
    return { ...(await cpu(modelPath, threads)), fallback: `CUDA: ${why}` };
  }
}

async function cpu(modelPath: string, threads?: number): Promise<SessionResult> {
  try {
    return { session: await ort.InferenceSession.create(modelPath, options('cpu', threads)), device: 'cpu' };
  } catch (e) {
    throw new EngineError('RUNTIME', `${modelPath}: onnxruntime could not load the compiled graph (${oneLine(e)}); delete the cache folder and retry`);
  }
}

export { ort };
