// GPU support: installing onnxruntime's CUDA provider from a registry tarball (served here by a
// loopback HTTP server from a generated package: fake ELF libraries under package/Plugins/Linux/x64/),
// verifying it before extraction, resuming, refusing, cancelling, linking into a binding folder
// (a temporary one: the real node_modules is never touched) and naming what CUDA still lacks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar';
import { isEngineError } from '../../src/engine/errors';
import { CUDA_PROVIDER, cudaReadiness, cudaStoreIn, installCudaProvider, installedProvider, linkProvider, MANIFEST, registryUrl, tarballUrl, type ProviderManifest } from '../../src/engine/runtime/cudaProvider';
import { elfNeeded, systemLibraries, type LoaderEnv } from '../../src/engine/runtime/systemLibraries';
import { main } from '../../src/cli/main';

const TGZ_NAME = `${CUDA_PROVIDER.package}-${CUDA_PROVIDER.packageVersion}.tgz`;
const TGZ_PATH = `/${CUDA_PROVIDER.package}/-/${TGZ_NAME}`;
const NEEDED = ['libcublasLt.so.13', 'libcublas.so.13', 'libcudart.so.13', 'libcuda.so.1', 'libstdc++.so.6', 'libc.so.6'];

/** Seeded bytes (mulberry32), so every run serves the same package. */
function seededBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    b[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return b;
}

/** A minimal 64-bit little-endian ELF shared object whose dynamic section lists `needed`, padded with `pad` bytes. */
function fakeElf(needed: string[], pad: Buffer): Buffer {
  const base = 0x400000;
  const strtab = Buffer.from(`\0${needed.join('\0')}\0`, 'latin1');
  const strOff = 64 + 2 * 56;
  const dynOff = Math.ceil((strOff + strtab.length) / 8) * 8;
  const entries: [number, number][] = [];
  let o = 1;
  for (const n of needed) {
    entries.push([1, o]); // DT_NEEDED
    o += n.length + 1;
  }
  entries.push([5, base + strOff], [10, strtab.length], [0, 0]); // DT_STRTAB, DT_STRSZ, DT_NULL
  const dyn = Buffer.alloc(entries.length * 16);
  entries.forEach(([tag, val], i) => {
    dyn.writeBigInt64LE(BigInt(tag), i * 16);
    dyn.writeBigUInt64LE(BigInt(val), i * 16 + 8);
  });
  const size = dynOff + dyn.length;
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = 2; // 64-bit
  h[5] = 1; // little-endian
  h[6] = 1;
  h.writeUInt16LE(3, 0x10); // ET_DYN
  h.writeUInt16LE(62, 0x12); // x86-64
  h.writeUInt32LE(1, 0x14);
  h.writeBigUInt64LE(64n, 0x20); // e_phoff
  h.writeUInt16LE(64, 0x34);
  h.writeUInt16LE(56, 0x36);
  h.writeUInt16LE(2, 0x38);
  const ph = Buffer.alloc(2 * 56);
  const phdr = (i: number, type: number, off: number, len: number) => {
    ph.writeUInt32LE(type, i * 56);
    ph.writeBigUInt64LE(BigInt(off), i * 56 + 8);
    ph.writeBigUInt64LE(BigInt(base + off), i * 56 + 16);
    ph.writeBigUInt64LE(BigInt(base + off), i * 56 + 24);
    ph.writeBigUInt64LE(BigInt(len), i * 56 + 32);
    ph.writeBigUInt64LE(BigInt(len), i * 56 + 40);
  };
  phdr(0, 1, 0, size); // PT_LOAD
  phdr(1, 2, dynOff, dyn.length); // PT_DYNAMIC
  const out = Buffer.alloc(size);
  h.copy(out, 0);
  ph.copy(out, 64);
  strtab.copy(out, strOff);
  dyn.copy(out, dynOff);
  return Buffer.concat([out, pad]);
}

let tmp: string;
let tgz: Buffer;
let integrity: string;
let cudaLib: Buffer;
let sharedLib: Buffer;
let server: http.Server;
let base: string;
/** what the server does with the next requests */
let mode: 'ok' | 'cut' | 'hold' | '404' = 'ok';
/** ends the connection of a 'cut' response (called from the client's progress, so it is on disk first) */
let cutNow: (() => void) | undefined;
const requests: { url: string; range?: string }[] = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-gpu-'));
  const pkg = path.join(tmp, 'pkg');
  const libs = path.join(pkg, 'package', 'Plugins', 'Linux', 'x64');
  fs.mkdirSync(libs, { recursive: true });
  cudaLib = fakeElf(NEEDED, seededBytes(400_000, 1));
  sharedLib = fakeElf(['libstdc++.so.6', 'libc.so.6'], seededBytes(3000, 2));
  fs.writeFileSync(path.join(libs, 'libonnxruntime_providers_cuda.so'), cudaLib);
  fs.writeFileSync(path.join(libs, 'libonnxruntime_providers_shared.so'), sharedLib);
  fs.writeFileSync(path.join(libs, 'libonnxruntime_providers_tensorrt.so'), seededBytes(1000, 3));
  fs.writeFileSync(path.join(pkg, 'package', 'package.json'), JSON.stringify({ name: CUDA_PROVIDER.package, version: CUDA_PROVIDER.packageVersion }));
  const file = path.join(tmp, TGZ_NAME);
  await tar.c({ gzip: true, file, cwd: pkg, portable: true }, ['package']);
  tgz = fs.readFileSync(file);
  integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
  server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', range: req.headers.range });
    if (mode === '404' || !req.url?.endsWith(TGZ_PATH)) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    if (mode === 'cut' || mode === 'hold') {
      res.writeHead(200, { 'content-length': tgz.length });
      res.write(tgz.subarray(0, 64 * 1024));
      cutNow = () => res.socket?.end();
      return; // 'hold' keeps the connection open until the client gives up
    }
    if (m) res.writeHead(206, { 'content-length': tgz.length - from, 'content-range': `bytes ${from}-${tgz.length - 1}/${tgz.length}` });
    else res.writeHead(200, { 'content-length': tgz.length });
    res.end(tgz.subarray(from));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** A fresh cache root, its store path, and the mirror registry URL. */
function fresh(): { root: string; store: string } {
  const root = path.join(tmp, `cache${n++}`);
  return { root, store: cudaStoreIn(root) };
}
const url = () => `${base}${TGZ_PATH}`;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** what is left in the store's parent folder (partial downloads, staging folders) */
const leftovers = (store: string) => (fs.existsSync(path.dirname(store)) ? fs.readdirSync(path.dirname(store)) : []);

async function rejects(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isEngineError(e), `an EngineError, not ${String(e)}`);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  assert.fail('expected a rejection');
}

test('install: downloads from a registry mirror, verifies, extracts only the provider libraries, writes the manifest', async () => {
  mode = 'ok';
  const { store } = fresh();
  const seen: number[] = [];
  const before = requests.length;
  const r = await installCudaProvider({ storeDir: store, registry: `${base}/`, integrity, onProgress: (got) => seen.push(got) });
  assert.equal(requests[before]!.url, TGZ_PATH, 'the npm tarball path under the mirror');
  assert.equal(r.downloaded, true);
  assert.deepEqual(fs.readdirSync(store).sort(), ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', MANIFEST]);
  assert.deepEqual(fs.readFileSync(path.join(store, 'libonnxruntime_providers_cuda.so')), cudaLib);
  const m = JSON.parse(fs.readFileSync(path.join(store, MANIFEST), 'utf8')) as ProviderManifest;
  assert.equal(m.ortVersion, '1.29.0');
  assert.equal(m.package, CUDA_PROVIDER.package);
  assert.equal(m.integrity, integrity);
  assert.equal(m.cuda, '13');
  assert.equal(m.cudnn, '9');
  assert.deepEqual(m.files['libonnxruntime_providers_cuda.so'], { size: cudaLib.length, sha256: sha256(cudaLib) });
  assert.deepEqual(m.files['libonnxruntime_providers_shared.so'], { size: sharedLib.length, sha256: sha256(sharedLib) });
  assert.equal(seen.at(-1), tgz.length, 'progress ends at the tarball size');
  assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]!), 'progress never goes back');
  assert.deepEqual(leftovers(store), [path.basename(store)], 'no partial download or staging folder left');
  assert.ok(installedProvider(store));
  // A second install finds it and downloads nothing.
  const count = requests.length;
  const again = await installCudaProvider({ storeDir: store, registry: base, integrity });
  assert.equal(again.downloaded, false);
  assert.equal(requests.length, count);
});

test('install: a wrong checksum is refused in one line before extraction, and nothing is installed', async () => {
  mode = 'ok';
  const { store } = fresh();
  const wrong = `sha512-${createHash('sha512').update('something else').digest('base64')}`;
  const e = await rejects(installCudaProvider({ storeDir: store, url: url(), integrity: wrong }));
  assert.match(e.message, /checksum mismatch/);
  assert.ok(e.message.includes(wrong) && e.message.includes(integrity), 'names both checksums');
  assert.equal(fs.existsSync(store), false);
  assert.deepEqual(leftovers(store), [], 'the bad download is deleted too');
});

test('install: an interrupted download keeps its part and resumes it with an HTTP Range request', async () => {
  const { store } = fresh();
  mode = 'cut';
  let onDisk = 0;
  const e = await rejects(
    installCudaProvider({
      storeDir: store,
      url: url(),
      integrity,
      onProgress: (got) => {
        onDisk = got;
        if (got > 0) cutNow?.();
      },
    }),
  );
  assert.match(e.message, /interrupted/);
  assert.match(e.message, /run the install again to resume/);
  const [part] = leftovers(store);
  assert.ok(part?.endsWith('.tgz.part'), `a partial download is kept (${leftovers(store).join(', ')})`);
  const partSize = fs.statSync(path.join(path.dirname(store), part)).size;
  assert.ok(partSize > 0 && partSize < tgz.length);
  assert.equal(partSize, onDisk, 'every byte reported is on disk');
  assert.equal(fs.existsSync(store), false);
  mode = 'ok';
  const count = requests.length;
  const r = await installCudaProvider({ storeDir: store, url: url(), integrity });
  assert.equal(requests.length, count + 1);
  assert.equal(requests.at(-1)!.range, `bytes=${partSize}-`);
  assert.equal(r.downloaded, true);
  assert.deepEqual(fs.readFileSync(path.join(store, 'libonnxruntime_providers_cuda.so')), cudaLib);
  assert.deepEqual(leftovers(store), [path.basename(store)]);
});

test('install: 404 and a refused connection are one line each, and nothing is installed', async () => {
  mode = '404';
  const a = fresh();
  const e404 = await rejects(installCudaProvider({ storeDir: a.store, registry: base, integrity }));
  assert.match(e404.message, /answered 404 Not Found/);
  assert.ok(e404.message.includes(CUDA_PROVIDER.package));
  assert.deepEqual(leftovers(a.store), []);
  mode = 'ok';
  // A port that was just free: bind, note it, close.
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const b = fresh();
  const refused = await rejects(installCudaProvider({ storeDir: b.store, registry: `http://127.0.0.1:${port}`, integrity }));
  assert.match(refused.message, /cannot download \(connection refused\)/);
  assert.deepEqual(leftovers(b.store), []);
});

test('install: cancel leaves no partial files behind', async () => {
  mode = 'hold';
  const { store } = fresh();
  const ac = new AbortController();
  const e = await rejects(installCudaProvider({ storeDir: store, url: url(), integrity, signal: ac.signal, onProgress: (got) => got > 0 && ac.abort() }));
  assert.equal(e.code, 'CANCELLED');
  assert.match(e.message, /cancelled; nothing was installed/);
  assert.deepEqual(leftovers(store), []);
  cutNow?.();
  mode = 'ok';
});

test('link: symlinks the installed libraries into the binding folder, once; leaves real files alone; replaces dangling links', async () => {
  mode = 'ok';
  const { store } = fresh();
  await installCudaProvider({ storeDir: store, url: url(), integrity });
  const binding = path.join(tmp, `binding${n++}`);
  fs.mkdirSync(binding);
  const first = linkProvider(store, binding);
  assert.deepEqual(first.linked.sort(), [...CUDA_PROVIDER.files].sort());
  for (const f of CUDA_PROVIDER.files) {
    assert.ok(fs.lstatSync(path.join(binding, f)).isSymbolicLink());
    assert.equal(fs.readlinkSync(path.join(binding, f)), path.join(store, f));
  }
  const second = linkProvider(store, binding);
  assert.deepEqual(second.linked, []);
  assert.deepEqual(second.present.sort(), [...CUDA_PROVIDER.files].sort());
  // onnxruntime-node's own libraries (real files) stay; a link into a removed store is renewed.
  const other = path.join(tmp, `binding${n++}`);
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'libonnxruntime_providers_shared.so'), 'their own');
  fs.symlinkSync(path.join(tmp, 'gone', 'libonnxruntime_providers_cuda.so'), path.join(other, 'libonnxruntime_providers_cuda.so'));
  const third = linkProvider(store, other);
  assert.deepEqual(third.linked, ['libonnxruntime_providers_cuda.so']);
  assert.deepEqual(third.present, ['libonnxruntime_providers_shared.so']);
  assert.equal(fs.readFileSync(path.join(other, 'libonnxruntime_providers_shared.so'), 'utf8'), 'their own');
  assert.deepEqual(fs.readFileSync(path.join(other, 'libonnxruntime_providers_cuda.so')), cudaLib);
  assert.deepEqual(fs.readdirSync(other).sort(), [...CUDA_PROVIDER.files].sort(), 'no temporary link left');
});

test('readiness: names what is missing (platform, provider, NVIDIA libraries) and links from a store', async () => {
  mode = 'ok';
  const { store } = fresh();
  const binding = path.join(tmp, `binding${n++}`);
  fs.mkdirSync(binding);
  const libdir = path.join(tmp, `libs${n++}`);
  fs.mkdirSync(libdir);
  const loader = (cache: Map<string, string[]> | undefined): LoaderEnv => ({ ldLibraryPath: libdir, cache, systemDirs: [] });
  const mac = cudaReadiness({ bindingDir: binding, stores: [store], link: true, loader: loader(new Map()), platform: 'darwin', arch: 'arm64' });
  assert.equal(mac.blocker, 'platform');
  const none = cudaReadiness({ bindingDir: binding, stores: [store], link: true, loader: loader(new Map()) });
  assert.equal(none.blocker, 'provider');
  assert.match(none.reason!, /not installed; run 'AttnScope: Install GPU Support' \(VS Code\) or 'attnscope gpu install' \(CLI\)/);
  await installCudaProvider({ storeDir: store, url: url(), integrity });
  // Reporting only (gpu status) does not link; a model open does.
  const look = cudaReadiness({ bindingDir: binding, stores: [store], link: false, loader: loader(new Map()) });
  assert.equal(look.providerFile, path.join(store, 'libonnxruntime_providers_cuda.so'));
  assert.deepEqual(fs.readdirSync(binding), []);
  for (const lib of ['libcuda.so.1', 'libcudart.so.13', 'libstdc++.so.6']) fs.writeFileSync(path.join(libdir, lib), '');
  const cache = new Map([['libcublasLt.so.13', [path.join(libdir, 'libcublasLt.so.13')]]]); // a stale cache entry does not count
  const some = cudaReadiness({ bindingDir: binding, stores: [store], link: true, loader: loader(cache) });
  assert.equal(some.linkedFrom, store);
  assert.deepEqual(fs.readdirSync(binding).sort(), [...CUDA_PROVIDER.files].sort());
  assert.equal(some.blocker, 'system');
  assert.deepEqual(some.libraries!.needed, ['libcublasLt.so.13', 'libcublas.so.13', 'libcudart.so.13', 'libcuda.so.1', 'libcudnn.so.9']);
  assert.deepEqual(some.libraries!.missing, ['libcublasLt.so.13', 'libcublas.so.13', 'libcudnn.so.9']);
  assert.equal(some.reason, 'the loader cannot find libcublasLt.so.13, libcublas.so.13, libcudnn.so.9; the CUDA provider needs CUDA 13 and cuDNN 9 (install them, or add the folder holding them to LD_LIBRARY_PATH)');
  fs.rmSync(path.join(libdir, 'libcuda.so.1'));
  const noDriver = cudaReadiness({ bindingDir: binding, stores: [store], link: true, loader: loader(undefined) });
  assert.equal(noDriver.libraries!.certain, false);
  assert.match(noDriver.reason!, /^no NVIDIA driver found \(the loader cannot find libcuda\.so\.1\) \(ldconfig could not be run/);
  for (const lib of ['libcuda.so.1', 'libcublas.so.13', 'libcudnn.so.9']) fs.writeFileSync(path.join(libdir, lib), '');
  fs.writeFileSync(path.join(libdir, 'elsewhere-libcublasLt.so.13'), '');
  const ready = cudaReadiness({ bindingDir: binding, stores: [store], link: true, loader: loader(new Map([['libcublasLt.so.13', [path.join(libdir, 'elsewhere-libcublasLt.so.13')]]])) });
  assert.equal(ready.blocker, undefined, ready.reason);
  assert.equal(ready.linkedFrom, undefined, 'already linked');
  assert.equal(ready.providerFile, path.join(binding, 'libonnxruntime_providers_cuda.so'));
});

test('ELF: DT_NEEDED entries of a generated library and of the node binary; not-ELF is undefined', () => {
  const f = path.join(tmp, 'needed.so');
  fs.writeFileSync(f, fakeElf(['libfoo.so.1', 'libbar.so.2'], Buffer.alloc(0)));
  assert.deepEqual(elfNeeded(f), ['libfoo.so.1', 'libbar.so.2']);
  fs.writeFileSync(f, 'not an ELF file at all, but long enough to have a header of sixty-four bytes.');
  assert.equal(elfNeeded(f), undefined);
  assert.equal(elfNeeded(path.join(tmp, 'absent.so')), undefined);
  if (process.platform === 'linux') {
    const node = elfNeeded(process.execPath);
    assert.ok(node?.some((n) => /^libc\.so/.test(n)), `node links libc (${node?.join(', ')})`);
  }
  // A provider built for another CUDA major names that one.
  fs.writeFileSync(f, fakeElf(['libcudart.so.12', 'libcublas.so.12'], Buffer.alloc(0)));
  const l = systemLibraries(f, { ldLibraryPath: '', cache: new Map(), systemDirs: [] });
  assert.equal(l.cudaMajor, '12');
  assert.deepEqual(l.missing, ['libcudart.so.12', 'libcublas.so.12', 'libcudnn.so.9']);
});

test('registry: explicit, then npm_config_registry, then registry.npmjs.org; the tarball path is npm\'s', () => {
  assert.equal(registryUrl(undefined, {}), 'https://registry.npmjs.org');
  assert.equal(registryUrl(undefined, { npm_config_registry: 'https://mirror.example/npm/' }), 'https://mirror.example/npm');
  assert.equal(registryUrl('http://127.0.0.1:4873//', { npm_config_registry: 'https://mirror.example/npm/' }), 'http://127.0.0.1:4873');
  assert.equal(tarballUrl('https://registry.npmjs.org'), `https://registry.npmjs.org${TGZ_PATH}`);
});

test('CLI: attnscope gpu status reports in two lines; a bad action or registry is a usage error', async () => {
  const saved = process.env['ATTNSCOPE_CACHE'];
  process.env['ATTNSCOPE_CACHE'] = path.join(tmp, `cli${n++}`); // an empty cache: nothing to link from
  const out: string[] = [];
  const err: string[] = [];
  const w = process.stdout.write.bind(process.stdout);
  const we = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => out.push(s) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(s) > 0) as typeof process.stderr.write;
  try {
    assert.equal(await main(['gpu', 'status']), 0);
    assert.equal(await main(['gpu', 'uninstall']), 2);
    assert.equal(await main(['gpu', 'install', '--registry', 'ftp://mirror']), 2);
  } finally {
    process.stdout.write = w;
    process.stderr.write = we;
    if (saved === undefined) delete process.env['ATTNSCOPE_CACHE'];
    else process.env['ATTNSCOPE_CACHE'] = saved;
  }
  const status = out.join('');
  assert.match(status, /^GPU: /);
  assert.ok(status.trimEnd().split('\n').length <= 2, status);
  assert.deepEqual(err, ['attnscope: gpu takes "status" or "install" (got uninstall); run "attnscope --help"\n', 'attnscope: --registry: "ftp://mirror" is not an http(s) URL\n']);
});
