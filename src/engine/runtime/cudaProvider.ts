// onnxruntime's CUDA execution provider, fetched on demand. onnxruntime-node's npm package carries
// only the CPU runtime; its install step fetches the provider libraries from NuGet, which a VSIX
// never runs. Here they come from the npm registry instead (a Unity package that carries the same
// ONNX Runtime release's Linux x64 CUDA build), pinned below by URL and sha512, verified before
// anything is extracted, and installed atomically into AttnScope's storage with a manifest.
// onnxruntime loads provider libraries from the folder of its own libonnxruntime.so, so they are
// then linked (or copied) next to onnxruntime-node's binding before the first CUDA session.
// Never imports onnxruntime-node (nor the rest of the engine): the extension host uses this without
// loading native code.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { EngineError, oneLine } from '../errors';
import { loaderEnv, systemLibraries, type LoaderEnv, type SystemLibraries } from './systemLibraries';

/** The one place the provider build is pinned; ortVersion must equal onnxruntime-node's version exactly. */
export const CUDA_PROVIDER = {
  ortVersion: '1.29.0',
  package: 'com.github.asus4.onnxruntime.linux-x64-gpu',
  packageVersion: '0.4.9',
  integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
  /** bytes of the tarball */
  size: 179_145_956,
  /** where the libraries sit inside the tarball */
  tarDir: 'package/Plugins/Linux/x64/',
  files: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'],
  /** what the build links against (read from its DT_NEEDED entries; cuDNN is dlopen()ed) */
  cuda: '13',
  cudnn: '9',
  license: 'MIT (Microsoft Corporation), per the package LICENSE',
} as const;

export const DEFAULT_REGISTRY = 'https://registry.npmjs.org';
export const MANIFEST = 'manifest.json';

export type ProviderFile = (typeof CUDA_PROVIDER.files)[number];

export interface ProviderManifest {
  ortVersion: string;
  package: string;
  packageVersion: string;
  integrity: string;
  url: string;
  cuda: string;
  cudnn: string;
  installedAt: string;
  files: Record<string, { size: number; sha256: string }>;
}

/** The provider's folder under a cache root: <root>/cuda/<onnxruntime version> (the CLI's root is modelCache's defaultCacheRoot()). */
export function cudaStoreIn(root: string): string {
  return path.join(root, 'cuda', CUDA_PROVIDER.ortVersion);
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

/** The registry to download from: an explicit one, else npm's own setting (npm_config_registry), else registry.npmjs.org. */
export function registryUrl(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (explicit || env['npm_config_registry'] || env['NPM_CONFIG_REGISTRY'] || DEFAULT_REGISTRY).replace(/\/+$/, '');
}

export function tarballUrl(registry: string): string {
  const { package: name, packageVersion: v } = CUDA_PROVIDER;
  return `${registry.replace(/\/+$/, '')}/${name}/-/${name}-${v}.tgz`;
}

/** The installed provider in `storeDir`, when its manifest matches the pinned build and its files are all there. */
export function installedProvider(storeDir: string): ProviderManifest | undefined {
  let m: ProviderManifest;
  try {
    m = JSON.parse(fs.readFileSync(path.join(storeDir, MANIFEST), 'utf8')) as ProviderManifest;
  } catch {
    return undefined;
  }
  if (m.ortVersion !== CUDA_PROVIDER.ortVersion || !m.files) return undefined;
  for (const f of CUDA_PROVIDER.files) {
    const entry = m.files[f];
    const size = fileSize(path.join(storeDir, f));
    if (!entry || size !== entry.size) return undefined;
  }
  return m;
}

function fileSize(p: string): number | undefined {
  try {
    return fs.statSync(p).size;
  } catch {
    return undefined;
  }
}

export interface InstallOptions {
  /** the folder to install into (CLI: defaultCudaStore(); VS Code: the extension's global storage) */
  storeDir: string;
  /** registry base URL (mirrors); default registryUrl() */
  registry?: string;
  /** overrides for tests: the tarball URL and its integrity */
  url?: string;
  integrity?: string;
  signal?: AbortSignal;
  /** bytes of the tarball on disk so far, and its total when known */
  onProgress?(received: number, total: number | undefined): void;
}

export interface InstallResult {
  dir: string;
  manifest: ProviderManifest;
  /** false when a valid install was already there (nothing was downloaded) */
  downloaded: boolean;
}

const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/**
 * Downloads the pinned provider tarball (resuming a partial download with HTTP Range), verifies its
 * sha512 integrity, extracts the provider libraries and installs them atomically into `storeDir`.
 * A cancelled install leaves nothing behind; an interrupted one keeps the partial tarball to resume.
 */
export async function installCudaProvider(opts: InstallOptions): Promise<InstallResult> {
  const already = installedProvider(opts.storeDir);
  const integrity = opts.integrity ?? CUDA_PROVIDER.integrity;
  if (already && already.integrity === integrity) return { dir: opts.storeDir, manifest: already, downloaded: false };
  const url = opts.url ?? tarballUrl(registryUrl(opts.registry));
  const parent = path.dirname(opts.storeDir);
  const base = path.basename(opts.storeDir);
  const part = path.join(parent, `.${base}-${CUDA_PROVIDER.package}-${CUDA_PROVIDER.packageVersion}.tgz.part`);
  const staging = path.join(parent, `.${base}.staging-${process.pid}`);
  const cleanup = (withPart: boolean) => {
    fs.rmSync(staging, { recursive: true, force: true });
    if (withPart) fs.rmSync(part, { force: true });
  };
  const cancelled = () => new EngineError('CANCELLED', 'GPU support installation cancelled; nothing was installed');
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new EngineError('RUNTIME', `${parent}: cannot create the GPU support folder (${(e as NodeJS.ErrnoException).code ?? oneLine(e)}); set ATTNSCOPE_CACHE to a writable folder`);
  }
  try {
    await download(url, part, opts);
    if (opts.signal?.aborted) throw cancelled();
    const got = await sha512(part);
    if (got !== integrity) {
      fs.rmSync(part, { force: true });
      throw new EngineError('RUNTIME', `${url}: checksum mismatch (expected ${integrity}, got ${got}); nothing was installed, check the registry or mirror`);
    }
    if (opts.signal?.aborted) throw cancelled();
    const manifest = await extract(part, staging, url, integrity);
    if (opts.signal?.aborted) throw cancelled();
    // Swap the staging folder in with renames, so the store is never seen half-written.
    const old = path.join(parent, `.${base}.old-${process.pid}`);
    if (fs.existsSync(opts.storeDir)) fs.renameSync(opts.storeDir, old);
    fs.renameSync(staging, opts.storeDir);
    fs.rmSync(old, { recursive: true, force: true });
    fs.rmSync(part, { force: true });
    return { dir: opts.storeDir, manifest, downloaded: true };
  } catch (e) {
    const userCancel = opts.signal?.aborted === true;
    cleanup(userCancel);
    if (userCancel) throw cancelled();
    if (e instanceof EngineError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new EngineError('RUNTIME', `${parent}: disk full while installing GPU support (needs about ${MB(CUDA_PROVIDER.size * 2.3)}); free space and run the install again`);
    throw new EngineError('RUNTIME', `installing GPU support into ${opts.storeDir} failed (${code ?? oneLine(e)})`);
  }
}

/** Streams `url` into `part`, appending with an HTTP Range request when a partial file is there. */
async function download(url: string, part: string, opts: InstallOptions): Promise<void> {
  const expected = opts.integrity === undefined && opts.url === undefined ? CUDA_PROVIDER.size : undefined;
  let have = fileSize(part) ?? 0;
  if (expected !== undefined && have === expected) return; // complete but not yet verified
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { 'user-agent': 'attnscope', accept: 'application/octet-stream' };
    if (have > 0) headers['range'] = `bytes=${have}-`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: opts.signal, redirect: 'follow' });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new EngineError('RUNTIME', `${url}: cannot download (${netReason(e)}); check the network, or use a registry mirror (npm_config_registry)`);
    }
    let append = false;
    let total: number | undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        await res.body?.cancel();
        if (attempt > 0) throw new EngineError('RUNTIME', `${url}: the server answered a resumed download with the wrong range; delete ${part} and retry`);
        have = 0; // start over
        fs.rmSync(part, { force: true });
        continue;
      }
      append = true;
      total = m[2] === '*' ? undefined : Number(m[2]);
    } else if (res.status === 416 && have > 0 && attempt === 0) {
      // The partial file is as long as the resource, or longer: start over (verification follows either way).
      await res.body?.cancel();
      have = 0;
      fs.rmSync(part, { force: true });
      continue;
    } else if (res.ok) {
      const len = Number(res.headers.get('content-length'));
      total = Number.isFinite(len) && len > 0 ? len : expected;
      have = 0;
    } else {
      await res.body?.cancel();
      throw new EngineError('RUNTIME', `${url}: the registry answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}; check the registry address (a mirror must carry ${CUDA_PROVIDER.package}@${CUDA_PROVIDER.packageVersion})`);
    }
    if (!res.body) throw new EngineError('RUNTIME', `${url}: the registry answered with no body`);
    let received = have;
    opts.onProgress?.(received, total);
    // Each chunk is on disk before the next is read and before progress counts it, so an interrupted
    // download resumes from exactly what was reported.
    const fh = await fs.promises.open(part, append ? 'a' : 'w');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await fh.write(chunk);
        received += chunk.length;
        opts.onProgress?.(received, total);
      }
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw e;
      throw new EngineError('RUNTIME', `${url}: download interrupted after ${MB(received)}${total ? ` of ${MB(total)}` : ''} (${netReason(e)}); run the install again to resume`);
    } finally {
      await fh.close();
    }
    const size = fileSize(part) ?? 0;
    if (total !== undefined && size < total) {
      throw new EngineError('RUNTIME', `${url}: download ended early after ${MB(size)} of ${MB(total)}; run the install again to resume`);
    }
    return;
  }
}

function netReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (e as NodeJS.ErrnoException).code;
  const named: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'name resolution failed',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'timed out',
    UND_ERR_SOCKET: 'connection closed',
    UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  };
  if (code && named[code]) return named[code]!;
  return code ?? cause?.message ?? oneLine(e);
}

export async function sha512(file: string): Promise<string> {
  const h = createHash('sha512');
  await pipeline(fs.createReadStream(file), h);
  return `sha512-${h.digest('base64')}`;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(fs.createReadStream(file), h);
  return h.digest('hex');
}

/** Extracts only the provider libraries into `staging` and writes the manifest there. */
async function extract(tgz: string, staging: string, url: string, integrity: string): Promise<ProviderManifest> {
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const wanted = new Set<string>(CUDA_PROVIDER.files.map((f) => CUDA_PROVIDER.tarDir + f));
  try {
    await tar.x({ file: tgz, cwd: staging, strict: true, strip: CUDA_PROVIDER.tarDir.split('/').length - 1, filter: (p, entry) => wanted.has(p) && (!('type' in entry) || entry.type === 'File') });
  } catch (e) {
    throw new EngineError('RUNTIME', `${url}: the package could not be unpacked (${oneLine(e)})`);
  }
  const files: ProviderManifest['files'] = {};
  for (const f of CUDA_PROVIDER.files) {
    const p = path.join(staging, f);
    const size = fileSize(p);
    if (size === undefined) throw new EngineError('RUNTIME', `${url}: the package has no ${CUDA_PROVIDER.tarDir}${f}; it is not the CUDA provider build`);
    fs.chmodSync(p, 0o755);
    files[f] = { size, sha256: await sha256(p) };
  }
  const manifest: ProviderManifest = {
    ortVersion: CUDA_PROVIDER.ortVersion,
    package: CUDA_PROVIDER.package,
    packageVersion: CUDA_PROVIDER.packageVersion,
    integrity,
    url,
    cuda: CUDA_PROVIDER.cuda,
    cudnn: CUDA_PROVIDER.cudnn,
    installedAt: new Date().toISOString(),
    files,
  };
  fs.writeFileSync(path.join(staging, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

export interface LinkResult {
  /** libraries linked (or copied) into the binding folder by this call */
  linked: string[];
  /** libraries already there (ours, or onnxruntime-node's own from its install step) */
  present: string[];
  /** true when symlinks failed and the libraries were copied */
  copied: boolean;
}

/**
 * Puts the installed libraries from `storeDir` next to onnxruntime's binding in `bindingDir`: a
 * symlink (atomically, via rename), or a copy where symlinks fail. Real files already there are
 * left alone; a dangling link, or one into another AttnScope store, is replaced.
 */
export function linkProvider(storeDir: string, bindingDir: string): LinkResult {
  const out: LinkResult = { linked: [], present: [], copied: false };
  for (const f of CUDA_PROVIDER.files) {
    const src = path.join(storeDir, f);
    const dst = path.join(bindingDir, f);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(dst);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      const to = path.resolve(bindingDir, fs.readlinkSync(dst));
      if (to === src && fs.existsSync(dst)) {
        out.present.push(f);
        continue;
      }
      if (fs.existsSync(dst) && !fs.existsSync(path.join(path.dirname(to), MANIFEST))) {
        out.present.push(f); // someone else's working link
        continue;
      }
    } else if (st) {
      out.present.push(f);
      continue;
    }
    const tmp = `${dst}.attnscope-${process.pid}.tmp`;
    try {
      fs.rmSync(tmp, { force: true });
      try {
        fs.symlinkSync(src, tmp);
      } catch {
        fs.copyFileSync(src, tmp);
        fs.chmodSync(tmp, 0o755);
        out.copied = true;
      }
      fs.renameSync(tmp, dst);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new EngineError('RUNTIME', `${bindingDir}: cannot place the CUDA provider libraries next to onnxruntime (${(e as NodeJS.ErrnoException).code ?? oneLine(e)}); make that folder writable`);
    }
    out.linked.push(f);
  }
  return out;
}

/** Whether onnxruntime would find the provider libraries in `bindingDir` now. */
export function providerInBinding(bindingDir: string): boolean {
  return CUDA_PROVIDER.files.every((f) => fs.existsSync(path.join(bindingDir, f)));
}

/** A human size for progress lines: "12.3 / 179.1 MB". */
export function progressText(received: number, total: number | undefined): string {
  return total ? `${(received / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB` : `${(received / 1e6).toFixed(1)} MB`;
}

export type CudaBlocker = 'platform' | 'runtime' | 'provider' | 'link' | 'system';

export interface CudaReadiness {
  /** what keeps CUDA from working; undefined when nothing is known to be missing */
  blocker?: CudaBlocker;
  /** one line saying what is missing and how to get it */
  reason?: string;
  /** the provider library whose needs were checked (in the binding folder, or in a store) */
  providerFile?: string;
  /** the NVIDIA libraries the provider needs and which ones the loader lacks */
  libraries?: SystemLibraries;
  /** the store whose libraries this call linked into the binding folder */
  linkedFrom?: string;
}

export interface ReadinessOptions {
  /** onnxruntime-node's binding folder (default ortBinaryDir()) */
  bindingDir?: string;
  /** stores to link from when the binding folder lacks the provider, first installed one wins */
  stores: string[];
  /** link from a store now (model opens) or only report (status) */
  link: boolean;
  loader?: LoaderEnv;
  platform?: string;
  arch?: string;
}

/** The install hint every "not installed" message carries. */
export const INSTALL_HINT = `run 'AttnScope: Install GPU Support' (VS Code) or 'attnscope gpu install' (CLI)`;

/**
 * What stands between this process and a CUDA session, without loading anything native: the
 * platform, the provider libraries (linked from a store when `link`), and the NVIDIA libraries the
 * provider needs as the dynamic loader would find them.
 */
export function cudaReadiness(opts: ReadinessOptions): CudaReadiness {
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  if (platform !== 'linux' || arch !== 'x64') return { blocker: 'platform', reason: `CUDA needs Linux x64 (this is ${platform} ${arch})` };
  const bindingDir = 'bindingDir' in opts ? opts.bindingDir : ortBinaryDir();
  if (!bindingDir) return { blocker: 'runtime', reason: 'onnxruntime-node was not found next to AttnScope; reinstall AttnScope' };
  const cudaLib = CUDA_PROVIDER.files[1];
  let providerFile: string | undefined;
  let linkedFrom: string | undefined;
  if (providerInBinding(bindingDir)) {
    providerFile = path.join(bindingDir, cudaLib);
  } else {
    const store = opts.stores.find((s) => installedProvider(s));
    if (!store) return { blocker: 'provider', reason: `the CUDA provider libraries for onnxruntime ${CUDA_PROVIDER.ortVersion} are not installed; ${INSTALL_HINT}` };
    if (opts.link) {
      try {
        linkProvider(store, bindingDir);
        linkedFrom = store;
      } catch (e) {
        return { blocker: 'link', reason: oneLine(e) };
      }
    }
    providerFile = path.join(linkedFrom ? bindingDir : store, cudaLib);
  }
  const libraries = systemLibraries(providerFile, opts.loader ?? loaderEnv());
  const base = { providerFile, libraries, ...(linkedFrom ? { linkedFrom } : {}) };
  if (libraries.missing.length === 0) return base;
  return { ...base, blocker: 'system', reason: missingLibrariesText(libraries) };
}

/** One line naming the NVIDIA libraries the loader cannot find and what provides them. */
export function missingLibrariesText(l: SystemLibraries): string {
  const where = l.certain ? '' : ' (ldconfig could not be run: looked in LD_LIBRARY_PATH and the system folders only)';
  const cuda = l.cudaMajor ?? CUDA_PROVIDER.cuda;
  if (l.missing.includes('libcuda.so.1')) {
    return `no NVIDIA driver found (the loader cannot find libcuda.so.1)${where}; CUDA needs an NVIDIA GPU with its driver, plus CUDA ${cuda} and cuDNN ${CUDA_PROVIDER.cudnn}`;
  }
  return `the loader cannot find ${l.missing.join(', ')}${where}; the CUDA provider needs CUDA ${cuda} and cuDNN ${CUDA_PROVIDER.cudnn} (install them, or add the folder holding them to LD_LIBRARY_PATH)`;
}
