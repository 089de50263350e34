// onnxruntime-node sessions and device choice. `auto` tries CUDA on Linux x64 and falls back to CPU
// when its provider libraries are missing; the chosen device is always reported.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError, oneLine } from '../errors';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type Device = 'cpu' | 'cuda';

export interface SessionResult {
  session: ort.InferenceSession;
  device: Device;
  /** why CUDA was not used, when it was asked for or tried */
  fallback?: string;
}

function cudaPossible(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `CUDA needs Linux x64 (this is ${process.platform} ${process.arch})`;
  const backends = ort.listSupportedBackends?.() ?? [];
  const cuda = backends.find((b) => b.name === 'cuda');
  if (!cuda) return 'this onnxruntime-node build has no CUDA backend';
  const dir = ortBinaryDir();
  if (dir && !fs.existsSync(path.join(dir, 'libonnxruntime_providers_cuda.so'))) {
    return `the CUDA provider libraries are not installed in ${dir} (onnxruntime-node's install step fetches them; see the README's GPU section)`;
  }
  return undefined;
}

/** Folder of onnxruntime-node's native binding, where its provider libraries must sit. */
export function ortBinaryDir(): string | undefined {
  try {
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

function options(device: Device, threads?: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: device === 'cuda' ? [{ name: 'cuda' }, 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(threads ? { intraOpNumThreads: threads } : {}),
  };
}

export async function createSession(modelPath: string, device: DeviceRequest, threads?: number): Promise<SessionResult> {
  if (device !== 'cpu') {
    const why = cudaPossible();
    if (!why) {
      try {
        return { session: await ort.InferenceSession.create(modelPath, options('cuda', threads)), device: 'cuda' };
      } catch (e) {
        if (device === 'cuda') throw new EngineError('RUNTIME', `CUDA was requested but its provider did not load (${oneLine(e)}); install the CUDA provider libraries or use --device cpu`);
        return { ...(await cpu(modelPath, threads)), fallback: `CUDA provider did not load: ${oneLine(e)}` };
      }
    }
    if (device === 'cuda') throw new EngineError('RUNTIME', `CUDA was requested but ${why}; use --device cpu or auto`);
    return { ...(await cpu(modelPath, threads)), fallback: why };
  }
  return cpu(modelPath, threads);
}

async function cpu(modelPath: string, threads?: number): Promise<SessionResult> {
  try {
    return { session: await ort.InferenceSession.create(modelPath, options('cpu', threads)), device: 'cpu' };
  } catch (e) {
    throw new EngineError('RUNTIME', `${modelPath}: onnxruntime could not load the compiled graph (${oneLine(e)}); delete the cache folder and retry`);
  }
}

export { ort };
