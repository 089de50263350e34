// Which shared libraries the CUDA provider needs and whether the dynamic loader can find them,
// checked without loading anything native: the provider's DT_NEEDED entries are read from its ELF
// header, and each is looked up the way ld.so would for a library dlopen()ed by onnxruntime
// (LD_LIBRARY_PATH, then the ld.so.cache as `ldconfig -p` prints it, then the system folders).
// A missing library would otherwise surface as onnxruntime's multi-line dlopen error at session
// creation; this names it up front, in one line, for `auto`, `gpu status` and the install message.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** cuDNN is dlopen()ed by the CUDA provider at run time, so it is not among its DT_NEEDED entries. */
export const CUDNN_SONAME = 'libcudnn.so.9';

/** The DT_NEEDED sonames of a 64-bit little-endian ELF shared library; undefined when `file` is not one. */
export function elfNeeded(file: string): string[] | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const read = (offset: number, length: number): Buffer => {
      const b = Buffer.alloc(length);
      const n = fs.readSync(fd, b, 0, length, offset);
      if (n !== length) throw new RangeError('short read');
      return b;
    };
    const h = read(0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined; // \x7fELF, 64-bit, little-endian
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const loads: { vaddr: number; offset: number; size: number }[] = [];
    let dyn: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const p = read(phoff + i * phentsize, 56);
      const type = p.readUInt32LE(0);
      const offset = Number(p.readBigUInt64LE(8));
      const vaddr = Number(p.readBigUInt64LE(16));
      const size = Number(p.readBigUInt64LE(32));
      if (type === 1) loads.push({ vaddr, offset, size });
      else if (type === 2) dyn = { offset, size };
    }
    if (!dyn) return []; // statically linked
    const d = read(dyn.offset, dyn.size);
    const needed: number[] = [];
    let strtab = -1;
    let strsz = 0;
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = Number(d.readBigInt64LE(o));
      const val = Number(d.readBigUInt64LE(o + 8));
      if (tag === 0) break;
      if (tag === 1) needed.push(val);
      else if (tag === 5) strtab = val;
      else if (tag === 10) strsz = val;
    }
    const seg = loads.find((s) => strtab >= s.vaddr && strtab < s.vaddr + s.size);
    if (!seg || strsz <= 0) return undefined;
    const strings = read(strtab - seg.vaddr + seg.offset, strsz);
    return needed.map((o) => {
      const end = strings.indexOf(0, o);
      return strings.toString('latin1', o, end < 0 ? strings.length : end);
    });
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** soname -> paths from `ldconfig -p` (x86-64 entries); undefined when ldconfig cannot be run. */
export function ldconfigCache(): Map<string, string[]> | undefined {
  for (const exe of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    const r = spawnSync(exe, ['-p'], { encoding: 'utf8', timeout: 5000, maxBuffer: 16 << 20 });
    if (r.status !== 0 || !r.stdout) continue;
    const map = new Map<string, string[]>();
    for (const line of r.stdout.split('\n')) {
      const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(.+)$/.exec(line);
      if (!m || !m[2]!.includes('x86-64')) continue;
      const list = map.get(m[1]!) ?? [];
      list.push(m[3]!.trim());
      map.set(m[1]!, list);
    }
    return map;
  }
  return undefined;
}

const SYSTEM_DIRS = ['/lib64', '/usr/lib64', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib', '/usr/lib'];

export interface LoaderEnv {
  /** LD_LIBRARY_PATH as the process has it */
  ldLibraryPath?: string;
  /** `ldconfig -p`, or undefined when it could not be read */
  cache: Map<string, string[]> | undefined;
  systemDirs?: string[];
}

export function loaderEnv(): LoaderEnv {
  return { ldLibraryPath: process.env['LD_LIBRARY_PATH'], cache: ldconfigCache() };
}

/** Whether ld.so would find `soname` for a library without RUNPATH (the CUDA provider has none). */
export function loaderFinds(soname: string, env: LoaderEnv): boolean {
  const dirs = [...(env.ldLibraryPath ?? '').split(':').filter((d) => d !== ''), ...(env.systemDirs ?? SYSTEM_DIRS)];
  if (dirs.some((d) => fs.existsSync(path.join(d, soname)))) return true;
  return (env.cache?.get(soname) ?? []).some((p) => fs.existsSync(p));
}

export interface SystemLibraries {
  /** the CUDA libraries the provider needs: its CUDA DT_NEEDED entries and cuDNN */
  needed: string[];
  missing: string[];
  /** false when ldconfig could not be read: `missing` then only means "not in LD_LIBRARY_PATH or the system folders" */
  certain: boolean;
  /** the CUDA major version the provider was built for (from its libcudart soname) */
  cudaMajor?: string;
}

/** The NVIDIA libraries `providerFile` needs (sonames starting libcu/libnv, plus cuDNN) and which of them the loader lacks. */
export function systemLibraries(providerFile: string, env: LoaderEnv = loaderEnv()): SystemLibraries {
  const direct = (elfNeeded(providerFile) ?? []).filter((n) => /^lib(cu|nv)/.test(n));
  const needed = [...direct, CUDNN_SONAME];
  const cudart = direct.find((n) => n.startsWith('libcudart.so.'));
  return {
    needed,
    missing: needed.filter((n) => !loaderFinds(n, env)),
    certain: env.cache !== undefined,
    cudaMajor: cudart?.slice('libcudart.so.'.length),
  };
}
