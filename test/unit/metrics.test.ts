import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duplicateMatches, headMetricsFromProbs, inductionMatches, metricNames, type HeadMetrics } from '../reference/metrics';
import { mulberry32 } from '../../src/shared/random';

function close(actual: number | null, expected: number | null, tol: number, what: string): void {
  if (expected === null) {
    assert.equal(actual, null, what);
    return;
  }
  assert.ok(actual !== null, `${what}: got null, expected ${expected}`);
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

function closeMetrics(actual: HeadMetrics[], expected: HeadMetrics[], tol: number): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, h) => {
    for (const name of metricNames) close(a[name], expected[h]![name], tol, `head ${h} ${name}`);
  });
}

/** H(p) = −Σ p ln p */
const H = (...ps: number[]) => -ps.reduce((s, p) => s + (p > 0 ? p * Math.log(p) : 0), 0);

// Head 0: explicit rows. Head 1: uniform causal attention.
const P0 = [
  [1, 0, 0, 0],
  [0.5, 0.5, 0, 0],
  [0.2, 0.3, 0.5, 0],
  [0.1, 0.2, 0.3, 0.4],
];
const P1 = [
  [1, 0, 0, 0],
  [1 / 2, 1 / 2, 0, 0],
  [1 / 3, 1 / 3, 1 / 3, 0],
  [1 / 4, 1 / 4, 1 / 4, 1 / 4],
];
const IDS4 = [5, 7, 9, 7]; // q=3 repeats id 7 from j=1 ≤ q−2, so induction looks at p[3, 2]

const EXPECTED4: HeadMetrics[] = [
  {
    entropy: (Math.LN2 + H(0.2, 0.3, 0.5) + H(0.1, 0.2, 0.3, 0.4)) / 3,
    sink: (0.5 + 0.2 + 0.1) / 3,
    prevToken: (0.5 + 0.3 + 0.3) / 3,
    selfAttn: (0.5 + 0.5 + 0.4) / 3,
    induction: 0.3,
    duplicateToken: 0.2, // q=3: p[3,1]
  },
  {
    entropy: (Math.log(2) + Math.log(3) + Math.log(4)) / 3,
    sink: (1 / 2 + 1 / 3 + 1 / 4) / 3,
    prevToken: (1 / 2 + 1 / 3 + 1 / 4) / 3,
    selfAttn: (1 / 2 + 1 / 3 + 1 / 4) / 3,
    induction: 1 / 4,
    duplicateToken: 1 / 4,
  },
];

function flat(...mats: number[][][]): number[] {
  return mats.flatMap((m) => m.flat());
}

test('metricNames', () => {
  assert.deepEqual([...metricNames], ['entropy', 'sink', 'prevToken', 'selfAttn', 'induction', 'duplicateToken']);
});

test('hand-computed T=4, two heads, Float64Array', () => {
  const probs = Float64Array.from(flat(P0, P1));
  closeMetrics(headMetricsFromProbs(probs, 2, 4, IDS4), EXPECTED4, 1e-14);
  closeMetrics(headMetricsFromProbs(probs, 2, 4, IDS4, 0, { causal: true }), EXPECTED4, 1e-14);
});

test('hand-computed T=4 with an offset into a Float32Array', () => {
  const probs = Float32Array.from([9, 9, 9, ...flat(P0, P1), 9, 9]);
  closeMetrics(headMetricsFromProbs(probs, 2, 4, IDS4, 3), EXPECTED4, 1e-6);
  // Only head 1, by offset.
  closeMetrics(headMetricsFromProbs(probs, 1, 4, IDS4, 3 + 16), [EXPECTED4[1]!], 1e-6);
});

test('induction sums over every earlier match j ≤ q−2 and averages over qualifying rows', () => {
  const ids = [1, 2, 1, 2, 1];
  assert.deepEqual(inductionMatches(ids).map((a) => [...a]), [[], [], [0], [1], [0, 2]]);
  // Distinct value per cell so we can see which ones are picked: p[q,k] = (10q + k) / 100.
  const T = 5;
  const probs = new Float64Array(T * T);
  for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) probs[q * T + k] = (10 * q + k) / 100;
  const [m] = headMetricsFromProbs(probs, 1, T, ids);
  // q=2: p[2,1]; q=3: p[3,2]; q=4: p[4,1] + p[4,3]
  close(m!.induction, (0.21 + 0.32 + (0.41 + 0.43)) / 3, 1e-14, 'induction');
  close(m!.sink, (0.1 + 0.2 + 0.3 + 0.4) / 4, 1e-14, 'sink (row 0 excluded)');
  close(m!.prevToken, (0.1 + 0.21 + 0.32 + 0.43) / 4, 1e-14, 'prevToken');
  close(m!.selfAttn, (0.11 + 0.22 + 0.33 + 0.44) / 4, 1e-14, 'selfAttn');
  // duplicate token, every earlier j < q with the same id: q=2: p[2,0]; q=3: p[3,1]; q=4: p[4,0] + p[4,2]
  assert.deepEqual(duplicateMatches(ids).map((a) => [...a]), [[], [], [0], [1], [0, 2]]);
  close(m!.duplicateToken, (0.2 + 0.31 + (0.4 + 0.42)) / 3, 1e-14, 'duplicateToken');
});

test('inductionMatches: an immediate repeat (j = q−1) does not count', () => {
  assert.deepEqual(inductionMatches([3, 3, 3]).map((a) => [...a]), [[], [], [0]]);
  assert.deepEqual(inductionMatches([4, 4]).map((a) => [...a]), [[], []]);
  assert.deepEqual(inductionMatches([]), []);
});

test('null cases', () => {
  const nulls: HeadMetrics = { entropy: null, sink: null, prevToken: null, selfAttn: null, induction: null, duplicateToken: null };
  assert.deepEqual(headMetricsFromProbs(new Float32Array([1, 1]), 2, 1, [42]), [nulls, nulls]);
  assert.deepEqual(headMetricsFromProbs(new Float32Array(0), 3, 0, []), [nulls, nulls, nulls]);
  assert.deepEqual(headMetricsFromProbs(new Float32Array(0), 0, 4, [1, 2, 3, 4]), []);
  // No repeats at all, or only adjacent repeats: induction null, the rest defined.
  const probs = Float64Array.from(flat(P0));
  for (const ids of [[1, 2, 3, 4], [1, 1, 2, 2]]) {
    const [m] = headMetricsFromProbs(probs, 1, 4, ids);
    assert.equal(m!.induction, null);
    assert.equal(m!.duplicateToken === null, ids[0] === 1 && ids[1] === 2, `duplicateToken null only without any repeat (${ids})`);
    close(m!.sink, EXPECTED4[0]!.sink, 1e-14, 'sink');
    close(m!.entropy, EXPECTED4[0]!.entropy, 1e-14, 'entropy');
  }
  // T = 2: one row.
  const [two] = headMetricsFromProbs(Float64Array.from([1, 0, 0.25, 0.75]), 1, 2, [1, 1]);
  assert.deepEqual(two, { entropy: H(0.25, 0.75), sink: 0.25, prevToken: 0.25, selfAttn: 0.75, induction: null, duplicateToken: 0.25 });
});

test('bad shapes throw RangeError', () => {
  assert.throws(() => headMetricsFromProbs(new Float32Array(15), 1, 4, [1, 2, 3, 4]), RangeError);
  assert.throws(() => headMetricsFromProbs(new Float32Array(16), 1, 4, [1, 2, 3, 4], 1), RangeError);
  assert.throws(() => headMetricsFromProbs(new Float32Array(16), 1, 4, [1, 2, 3]), RangeError);
});

// ---- against a naive implementation of the definitions ----


function naive(p: ArrayLike<number>, heads: number, T: number, ids: number[], offset: number): HeadMetrics[] {
  const out: HeadMetrics[] = [];
  for (let h = 0; h < heads; h++) {
    const at = (q: number, k: number) => p[offset + h * T * T + q * T + k]!;
    if (T < 2) {
      out.push({ entropy: null, sink: null, prevToken: null, selfAttn: null, induction: null, duplicateToken: null });
      continue;
    }
    let ent = 0, sink = 0, prev = 0, self = 0, ind = 0, indRows = 0, dup = 0, dupRows = 0;
    for (let q = 1; q < T; q++) {
      for (let k = 0; k < T; k++) {
        const v = at(q, k);
        if (v > 0) ent -= v * Math.log(v);
      }
      sink += at(q, 0);
      prev += at(q, q - 1);
      self += at(q, q);
      let any = false;
      let s = 0;
      for (let j = 0; j <= q - 2; j++) {
        if (ids[j] === ids[q]) {
          any = true;
          s += at(q, j + 1);
        }
      }
      if (any) {
        indRows++;
        ind += s;
      }
      let seen = false;
      for (let j = 0; j < q; j++) {
        if (ids[j] === ids[q]) {
          seen = true;
          dup += at(q, j);
        }
      }
      if (seen) dupRows++;
    }
    const n = T - 1;
    out.push({ entropy: ent / n, sink: sink / n, prevToken: prev / n, selfAttn: self / n, induction: indRows ? ind / indRows : null, duplicateToken: dupRows ? dup / dupRows : null });
  }
  return out;
}

/** Seeded softmax rows; causal zeroes k > q. Sprinkles exact zeros, tiny and float32-subnormal values. */
function randomProbs(rand: () => number, heads: number, T: number, causal: boolean, offset: number): number[] {
  const out = new Array<number>(offset + heads * T * T).fill(0);
  for (let i = 0; i < offset; i++) out[i] = 7; // garbage before
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < T; q++) {
      const last = causal ? q : T - 1;
      const row: number[] = [];
      for (let k = 0; k <= last; k++) {
        const u = rand();
        row.push(u < 0.05 ? 0 : u < 0.08 ? 1e-41 : u < 0.1 ? 1e-20 : Math.exp(6 * rand()));
      }
      const z = row.reduce((a, b) => a + b, 0) || 1;
      for (let k = 0; k <= last; k++) out[offset + h * T * T + q * T + k] = row[k]! / z;
    }
  }
  return out;
}

for (const causal of [true, false]) {
  test(`matches the naive definitions on a seeded random ${causal ? 'causal' : 'full'} pattern`, () => {
    const rand = mulberry32(causal ? 1234 : 5678);
    const heads = 3;
    const T = 41;
    const offset = 5;
    const ids = Array.from({ length: T }, () => Math.floor(rand() * 6)); // small vocab: many repeats
    const raw = randomProbs(rand, heads, T, causal, offset);
    const f64 = Float64Array.from(raw);
    const f32 = Float32Array.from(raw);
    const expected64 = naive(f64, heads, T, ids, offset);
    const expected32 = naive(f32, heads, T, ids, offset); // same values, rounded to float32
    closeMetrics(headMetricsFromProbs(f64, heads, T, ids, offset), expected64, 1e-12);
    closeMetrics(headMetricsFromProbs(f32, heads, T, ids, offset), expected32, 1e-12);
    const matches = inductionMatches(ids);
    closeMetrics(headMetricsFromProbs(f32, heads, T, ids, offset, { matches }), expected32, 1e-12);
    if (causal) {
      closeMetrics(headMetricsFromProbs(f64, heads, T, ids, offset, { causal: true, matches }), expected64, 1e-12);
      closeMetrics(headMetricsFromProbs(f32, heads, T, ids, offset, { causal: true }), expected32, 1e-12);
    }
    assert.ok(expected64.every((m) => m.induction !== null && m.duplicateToken !== null));
  });
}

test('entropy matches Math.log across magnitudes (fast log vs Math.log)', () => {
  const values = [1, 0.5, 0.999999, 1e-3, 123.456, 3e-8, 1e-30, 1e-38, 1e-41, 1e-45, 2 ** -126, 0.7071067811865476];
  for (const v of values) {
    for (const arr of [Float32Array.from([0, 0, v, 0]), Float64Array.from([0, 0, v, 0])]) {
      const x = arr[2]!;
      const [m] = headMetricsFromProbs(arr, 1, 2, [1, 2]);
      const want = x > 0 ? -x * Math.log(x) : 0;
      const got = m!.entropy!;
      // Relative 1e-14, except just below 1 where ln p ≈ p − 1 comes out of −ln 2 + ln m (absolute ~1e-16).
      assert.ok(Math.abs(got - want) <= Math.max(1e-14 * Math.abs(want), 2e-16), `entropy of ${x} (${arr.constructor.name}): ${got} vs ${want}`);
    }
  }
  // Negative, NaN and -0 count as 0 (never produce NaN).
  const [bad] = headMetricsFromProbs(Float32Array.from([0, 0, -0, Number.NaN]), 1, 2, [1, 2]);
  assert.equal(bad!.entropy, 0);
});
