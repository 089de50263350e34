// The safetensors reader refuses what the safetensors library refuses: overlapping, aliased or
// gapped data_offsets, bytes after the last tensor, bad header bounds, unknown dtypes, byte
// counts that do not match the shape — each with one line naming the file and the problem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsHeader } from '../../src/engine/sources/safetensors';
import { EngineError } from '../../src/engine/errors';

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-st-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A file from a header object (or raw header text) and `dataLen` data bytes. */
function file(header: Record<string, unknown> | string | Buffer, dataLen: number, lenOverride?: bigint): string {
  const json = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(8);
  pre.writeBigUInt64LE(lenOverride ?? BigInt(json.length));
  const f = path.join(tmp, `f${n++}.safetensors`);
  fs.writeFileSync(f, Buffer.concat([pre, json, Buffer.alloc(dataLen, 1)]));
  return f;
}

const t = (begin: number, end: number, shape = [(end - begin) / 4], dtype = 'F32') => ({ dtype, shape, data_offsets: [begin, end] });

function refuses(f: string, pattern: RegExp): void {
  assert.throws(
    () => readSafetensorsHeader(f),
    (e: unknown) => {
      assert.ok(e instanceof EngineError, `EngineError, got ${String(e)}`);
      assert.equal(e.code, 'MODEL');
      assert.ok(!e.message.includes('\n'), 'one line');
      assert.ok(e.message.startsWith(f), `names the file: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('a well-formed file: tensors tile the data section; order in the header does not matter', () => {
  const h = readSafetensorsHeader(file({ b: t(16, 24), a: t(0, 16, [2, 2]), __metadata__: { format: 'pt' } }, 24));
  assert.deepEqual(h.tensors.map((x) => [x.name, x.offset, x.length]), [['b', 8 + h.headerBytes.length + 16, 8], ['a', 8 + h.headerBytes.length, 16]]);
  // An empty tensor has begin == end and takes no bytes.
  assert.equal(readSafetensorsHeader(file({ a: t(0, 8), e: t(8, 8, [0, 3]) }, 8)).tensors.length, 2);
});

test('overlapping, aliased and gapped data_offsets, trailing bytes', () => {
  refuses(file({ a: t(0, 16), b: t(8, 24) }, 24), /tensor b overlaps the tensor before it/);
  refuses(file({ a: t(0, 16), b: t(0, 16) }, 16), /overlaps/);
  refuses(file({ a: t(0, 8), b: t(12, 20) }, 20), /4 unused bytes before tensor b/);
  refuses(file({ a: t(4, 12) }, 12), /4 unused bytes before tensor a/);
  refuses(file({ a: t(0, 8) }, 12), /4 bytes after the last tensor/);
  refuses(file({ a: t(0, 8), b: t(8, 16) }, 12), /tensor b points past the end of the file/);
});

test('header bounds: absurd length, past the file, not starting with "{", not UTF-8, not an object', () => {
  refuses(file({ a: t(0, 8) }, 8, 100_000_001n), /header length 100000001 bytes is absurd/);
  refuses(file({ a: t(0, 8) }, 8, 1n << 63n), /absurd/);
  refuses(file({ a: t(0, 8) }, 0, 10_000n), /truncated: header says 10000 bytes/);
  refuses(file(' {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8), /does not start with "\{"/);
  refuses(file(Buffer.concat([Buffer.from('{"a'), Buffer.from([0xff]), Buffer.from('":1}')]), 0), /not valid UTF-8 JSON/);
  refuses(file('[1,2]', 0), /does not start with/);
  refuses(file('{"a":', 0), /not valid UTF-8 JSON/);
  refuses(file('', 0), /does not start with/);
});

test('entries: dtype, shape, offsets, byte count, metadata', () => {
  refuses(file({ a: t(0, 8, [2], 'toString') }, 8), /unsupported dtype "toString"/);
  refuses(file({ a: t(0, 8, [2], 'F8_E4M3') }, 8), /unsupported dtype "F8_E4M3"/);
  refuses(file({ a: { ...t(0, 8), dtype: 4 } }, 8), /unsupported dtype 4/);
  refuses(file({ a: t(0, 8, [2, -1]) }, 8), /invalid shape/);
  refuses(file({ a: t(0, 8, [2.5]) }, 8), /invalid shape/);
  refuses(file({ a: t(0, 8, [2 ** 53]) }, 8), /invalid shape/);
  // 2^31 × 2^31 × 4 bytes overflows a double's exact range: counted exactly, it does not match.
  refuses(file({ a: t(0, 8, [2 ** 31, 2 ** 31]) }, 8), /8 bytes do not hold shape \[2147483648,2147483648\] of F32/);
  refuses(file({ a: t(0, 8, [3]) }, 8), /8 bytes do not hold shape \[3\] of F32/);
  refuses(file({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8), /invalid data_offsets/);
  refuses(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8), /invalid data_offsets/);
  refuses(file({ a: { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] } }, 8), /invalid data_offsets/);
  refuses(file({ a: 7 }, 0), /tensor a has no header entry/);
  refuses(file({ a: [1] }, 0), /tensor a has no header entry/);
  refuses(file({ a: t(0, 8), __metadata__: { format: 1 } }, 8), /"__metadata__" must map names to strings/);
});
