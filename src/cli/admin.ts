// The housekeeping subcommands: `cache` (the compiled-model cache) and `gpu` (onnxruntime's CUDA
// provider).
import { parseArgs } from 'node:util';
import { EngineError } from '../engine/errors';
import { cudaReadinessNow, defaultCudaStore } from '../engine/runtime/ortSession';
import { CUDA_PROVIDER, installCudaProvider, installedProvider, progressText, registryUrl, tarballUrl } from '../engine/runtime/cudaProvider';
import { cacheMaxBytes, cacheUsage, clearCache, defaultCacheRoot, formatBytes } from '../engine/runtime/modelCache';

/** `attnscope cache [--clear]`: what the compiled-model cache holds, or empty it. */
export function cacheCmd(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { clear: { type: 'boolean' } } });
  if (positionals.length) throw new EngineError('BAD_ARGUMENT', `cache takes no positional arguments (got ${positionals.join(' ')}); run "attnscope --help"`);
  const root = defaultCacheRoot();
  if (values.clear) {
    const r = clearCache(root);
    const kept = r.keptInUse ? `; ${r.keptInUse} in use kept` : '';
    process.stdout.write(`${root}: removed ${r.removed} compiled model${r.removed === 1 ? '' : 's'} (${formatBytes(r.bytes)})${kept}\n`);
    return 0;
  }
  const u = cacheUsage(root);
  const temp = u.tempBytes ? `, ${formatBytes(u.tempBytes)} in unfinished builds` : '';
  process.stdout.write(`${root}: ${u.entries.length} compiled model${u.entries.length === 1 ? '' : 's'}, ${formatBytes(u.bytes)}${temp} (limit ${formatBytes(cacheMaxBytes())})\n`);
  for (const e of u.entries) process.stdout.write(`  ${e.key}  ${formatBytes(e.bytes).padStart(9)}  last used ${new Date(e.lastUsed).toISOString()}\n`);
  return 0;
}

/** `attnscope gpu [status|install]`: onnxruntime's CUDA provider in AttnScope's cache (cudaProvider.ts). */
export async function gpuCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { registry: { type: 'string' } } });
  const action = positionals[0] ?? 'status';
  if (positionals.length > 1 || (action !== 'status' && action !== 'install')) {
    throw new EngineError('BAD_ARGUMENT', `gpu takes "status" or "install" (got ${positionals.join(' ')}); run "attnscope --help"`);
  }
  if (values.registry !== undefined && !/^https?:\/\/\S+$/.test(values.registry)) throw new EngineError('BAD_ARGUMENT', `--registry: "${values.registry}" is not an http(s) URL`);
  const store = defaultCudaStore();
  if (action === 'install') {
    if (process.platform !== 'linux' || process.arch !== 'x64') throw new EngineError('RUNTIME', `GPU support is available for Linux x64 only (this is ${process.platform} ${process.arch})`);
    const ac = new AbortController();
    const onInt = () => ac.abort();
    process.once('SIGINT', onInt);
    const tty = process.stderr.isTTY === true;
    let shown = -1;
    const url = tarballUrl(registryUrl(values.registry));
    process.stderr.write(`attnscope: onnxruntime ${CUDA_PROVIDER.ortVersion} CUDA provider (CUDA ${CUDA_PROVIDER.cuda}, cuDNN ${CUDA_PROVIDER.cudnn}) from ${url}\n`);
    try {
      const r = await installCudaProvider({
        storeDir: store,
        registry: values.registry,
        signal: ac.signal,
        onProgress: (got, total) => {
          // a TTY line per percent, redrawn in place; otherwise a line per 10% (per 10 MB when the size is unknown)
          const pct = total ? Math.floor((100 * got) / total) : Math.floor(got / 1e7);
          const step = tty || !total ? pct : Math.floor(pct / 10);
          if (step === shown) return;
          shown = step;
          process.stderr.write(`${tty ? '\r' : ''}attnscope: downloading ${progressText(got, total)}${total ? ` (${pct}%)` : ''}${tty ? '' : '\n'}`);
        },
      });
      if (tty && shown !== -1) process.stderr.write('\n');
      process.stderr.write(`attnscope: ${r.downloaded ? 'verified and installed' : 'already installed'} in ${r.dir}\n`);
    } catch (e) {
      if (tty && shown !== -1) process.stderr.write('\n');
      throw e;
    } finally {
      process.off('SIGINT', onInt);
    }
  }
  const ready = cudaReadinessNow(action === 'install');
  const installed = installedProvider(store);
  if (!ready.blocker) {
    process.stdout.write(`GPU: --device auto uses CUDA (provider ${ready.providerFile}; NVIDIA libraries found: ${ready.libraries?.needed.join(', ')})\n`);
  } else if (ready.blocker === 'system' && ready.libraries?.certain === false) {
    process.stdout.write(`GPU: uncertain, --device auto tries CUDA and falls back to the CPU: ${ready.reason}\n`);
  } else {
    process.stdout.write(`GPU: not available, --device auto uses the CPU: ${ready.reason}\n`);
    if (installed) process.stdout.write(`     the provider libraries are installed in ${store}\n`);
    else if (ready.blocker === 'provider') process.stdout.write(`     'attnscope gpu install' downloads ${(CUDA_PROVIDER.size / 1e6).toFixed(0)} MB from ${registryUrl(values.registry)} into ${store}; CUDA then needs CUDA ${CUDA_PROVIDER.cuda} and cuDNN ${CUDA_PROVIDER.cudnn} on this machine\n`);
  }
  return 0;
}

