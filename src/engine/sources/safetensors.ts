// Reading .safetensors files: a little-endian u64 header length, a JSON header naming each tensor's
// dtype, shape and [begin, end) byte range in the data section, then the data. Everything in the
// header is validated against the file before any tensor is read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../errors';

export type StDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const DTYPE_BYTES: Record<StDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Largest header we accept (the safetensors library's limit); real headers are a few hundred KB even for 70B models. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  file: string;
  dtype: StDtype;
  shape: number[];
  /** absolute byte offset of the data in `file` */
  offset: number;
  length: number;
}

export interface SafetensorsHeader {
  file: string;
  size: number;
  /** modification time (ms), part of the checkpoint hash so edited weights are re-converted */
  mtimeMs: number;
  /** raw header bytes, used for the checkpoint hash */
  headerBytes: Buffer;
  tensors: TensorEntry[];
}

function bad(file: string, what: string): EngineError {
  return new EngineError('MODEL', `${file}: ${what}`);
}

export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const shown = path.basename(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw bad(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? 'error'}); check that the model folder holds this weights file`);
  }
  try {
    const stat = fs.fstatSync(fd);
    const size = stat.size;
    if (!stat.isFile()) throw bad(file, 'is not a file (a folder?); a weights file must be a .safetensors file');
    if (size < 8) throw bad(file, `file is truncated (${size} bytes); re-download ${shown}`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) throw bad(file, `header length ${n} bytes is absurd (limit ${MAX_HEADER_BYTES}); the file is not a valid safetensors file`);
    const headerLen = Number(n);
    if (8 + headerLen > size) throw bad(file, `file is truncated: header says ${headerLen} bytes but the file has ${size - 8}; re-download ${shown}`);
    const headerBytes = Buffer.alloc(headerLen);
    readFully(fd, headerBytes, 8, file);
    // As the safetensors library: the header is UTF-8 JSON that starts with '{'.
    if (headerBytes[0] !== 0x7b) throw bad(file, 'header does not start with "{"; the file is not a valid safetensors file');
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
    } catch {
      throw bad(file, 'header is not valid UTF-8 JSON; the file is not a valid safetensors file');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad(file, 'header is not a JSON object');
    const dataStart = 8 + headerLen;
    const tensors = parseEntries(file, json as Record<string, unknown>);
    checkLayout(file, tensors, size - dataStart);
    for (const t of tensors) t.offset += dataStart;
    return { file, size, mtimeMs: stat.mtimeMs, headerBytes, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

function readFully(fd: number, buf: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw bad(file, 'file is cut short while reading its header; re-download it');
    done += n;
  }
}

const isDtype = (v: unknown): v is StDtype => typeof v === 'string' && Object.hasOwn(DTYPE_BYTES, v);

/** Each tensor entry checked on its own: dtype, shape, offsets, and byte count = elements × dtype size (offsets relative to the data section). */
function parseEntries(file: string, json: Record<string, unknown>): TensorEntry[] {
  const tensors: TensorEntry[] = [];
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
        throw bad(file, '"__metadata__" must map names to strings; the file is not a valid safetensors file');
      }
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(file, `tensor ${name} has no header entry`);
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(e.dtype)) throw bad(file, `tensor ${name} has unsupported dtype ${JSON.stringify(e.dtype) ?? 'undefined'}`);
    const dtype = e.dtype;
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(file, `tensor ${name} has an invalid shape`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
      throw bad(file, `tensor ${name} has invalid data_offsets`);
    }
    const [begin, end] = offs as [number, number];
    // The element count in BigInt: a product of safe integers can exceed 2^53 and round.
    const bytes = (shape as number[]).reduce((a, d) => a * BigInt(d), 1n) * BigInt(DTYPE_BYTES[dtype]);
    if (BigInt(end - begin) !== bytes) {
      throw bad(file, `tensor ${name}: ${end - begin} bytes do not hold shape [${(shape as number[]).join(',')}] of ${dtype}`);
    }
    tensors.push({ name, file, dtype, shape: shape as number[], offset: begin, length: end - begin });
  }
  return tensors;
}

/**
 * The data section's layout, as the safetensors library requires: sorted by offset, the tensors
 * tile it exactly, from byte 0 to its last byte (no overlap, no alias, no gap, nothing after).
 */
function checkLayout(file: string, tensors: TensorEntry[], dataLen: number): void {
  const shown = path.basename(file);
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset || a.length - b.length);
  for (const t of tensors) {
    if (t.offset + t.length > dataLen) {
      throw bad(file, `tensor ${t.name} points past the end of the file (data byte ${t.offset + t.length} of ${dataLen}); the file is truncated or corrupt, re-download ${shown}`);
    }
  }
  let at = 0;
  for (const t of sorted) {
    if (t.offset < at) throw bad(file, `tensor ${t.name} overlaps the tensor before it (data_offsets start at ${t.offset}, the previous ends at ${at}); the file is corrupt, re-download ${shown}`);
    if (t.offset > at) throw bad(file, `${t.offset - at} unused bytes before tensor ${t.name} (data byte ${at}); the file is corrupt, re-download ${shown}`);
    at = t.offset + t.length;
  }
  if (at !== dataLen) throw bad(file, `${dataLen - at} bytes after the last tensor; the file is corrupt or was appended to, re-download ${shown}`);
}

const f16Table = (() => {
  // All 65536 half-precision values, so conversion is one lookup per element.
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = m * 2 ** -24;
    else if (e === 31) v = m ? NaN : Infinity;
    else v = (1 + m / 1024) * 2 ** (e - 15);
    t[h] = s * v;
  }
  return t;
})();

/** Reads one tensor and converts it to float32. */
export function readTensorF32(t: TensorEntry): Float32Array {
  // An own ArrayBuffer (offset 0) so typed views are aligned; hosts are little-endian (x64, arm64).
  const ab = new ArrayBuffer(t.length);
  const buf = new Uint8Array(ab);
  const fd = fs.openSync(t.file, 'r');
  try {
    let done = 0;
    while (done < t.length) {
      const n = fs.readSync(fd, buf, done, t.length - done, t.offset + done);
      if (n === 0) throw bad(t.file, `tensor ${t.name} is cut short; the file is truncated`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  const count = t.length / DTYPE_BYTES[t.dtype];
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(ab);
    case 'F64':
      return Float32Array.from(new Float64Array(ab));
    case 'F16': {
      const src = new Uint16Array(ab);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16Table[src[i]!]!;
      return out;
    }
    case 'BF16': {
      const src = new Uint16Array(ab);
      const out = new Float32Array(count);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = src[i]! << 16;
      return out;
    }
    default:
      throw bad(t.file, `tensor ${t.name} has dtype ${t.dtype}, but a floating-point weight (F32, F16, BF16) is needed`);
  }
}
