// Pattern tiles in the panel (webview/logic/patternTile.ts) on tiles made by the engine's own
// patternTile over a seeded fixture pattern: the cells the heatmap colors, the block under the
// pointer, the caption, the request for a view, and the validation of both messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { patternSource, patternTile, type PatternTile } from '../../src/engine/analysis/kept';
import { PATTERN_TILE_MAX, type PatternTileMsg } from '../../src/shared/protocol';
import { patternTileMsg } from '../../src/shared/validate';
import { parseFromWebview } from '../../src/extension/panelMessages';
import { validateToWebview } from '../../webview/logic/validate';
import { blockOf, decodeTile, poolCaption, sameRequest, tileAnswers, tileCellAt, tileCells, tileRequest } from '../../webview/logic/patternTile';
import { fixturePattern, fixtureTokens } from '../fixtures/webviewFixtures';

const T = 90;
const { tokens } = fixtureTokens(T);
const ids = tokens.map((t) => t.id);
/** a previous-token head and a sink-heavy head of the fixture, [T, T] */
const prev = fixturePattern('prev', ids, 11);
const sink = fixturePattern('sink', ids, 12);

function engineTile(p: Float32Array, q0: number, q1: number, k0: number, k1: number, size: number): PatternTile {
  return patternTile({ runId: 1, T, L: 1, H: 1, attention: patternSource(new Map([[0, p]]), T) }, 0, 0, q0, q1, k0, k1, size);
}

function msgOf(t: PatternTile): PatternTileMsg {
  return { q0: t.q0, q1: t.q1, k0: t.k0, k1: t.k1, pooled: t.pooled, rowEdges: Array.from(t.rowEdges), colEdges: Array.from(t.colEdges), values: { dims: [t.rowEdges.length - 1, t.colEdges.length - 1], data: t.values.slice().buffer } };
}

function tileOf(p: Float32Array, q0: number, q1: number, k0: number, k1: number, size: number) {
  const t = engineTile(p, q0, q1, k0, k1, size);
  return decodeTile(5, '1.3', msgOf(t), t.values);
}

test('tile cells: an exact window holds the pattern values, −1 above the diagonal', () => {
  const t = tileOf(prev, 20, 40, 10, 30, 64);
  assert.equal(t.pooled, false);
  const c = tileCells(t, null);
  assert.equal(c.rows, 20);
  assert.equal(c.cols, 20);
  let max = 0;
  for (let r = 0; r < 20; r++)
    for (let k = 0; k < 20; k++) {
      const q = 20 + r;
      const key = 10 + k;
      const cell = c.cells[r * 20 + k]!;
      if (key > q) assert.equal(cell, -1, `(${q}, ${key}) is above the diagonal`);
      else {
        assert.equal(cell, prev[q * T + key]!);
        max = Math.max(max, cell);
      }
    }
  assert.equal(c.max, max);
});

test('tile cells: pooled blocks are each the max over their tokens; the sink discount leaves the blocks holding excluded keys out of the max', () => {
  const t = tileOf(sink, 0, T, 0, T, 8);
  assert.equal(t.pooled, true);
  const c = tileCells(t, null);
  for (let r = 0; r < t.rows; r++)
    for (let b = 0; b < t.cols; b++) {
      let m = -1;
      for (let q = t.rowEdges[r]!; q < t.rowEdges[r + 1]!; q++) for (let k = t.colEdges[b]!; k < t.colEdges[b + 1]! && k <= q; k++) m = Math.max(m, sink[q * T + k]!);
      assert.equal(c.cells[r * t.cols + b], m, `block ${r},${b}`);
    }
  const exclude = new Uint8Array(T);
  exclude[0] = 1;
  const d = tileCells(t, exclude);
  let rest = 0;
  for (let r = 0; r < t.rows; r++) for (let b = 1; b < t.cols; b++) rest = Math.max(rest, d.cells[r * t.cols + b]!);
  assert.equal(d.max, rest, 'the first column block (holding token 0) is out of the max');
  assert.ok(c.max > d.max, 'the sink is the largest value of a sink head');
});

test('tile lookup: the block under a token, its ranges and value; outside the tile none', () => {
  const t = tileOf(prev, 0, T, 0, T, 8);
  const e = t.rowEdges;
  assert.equal(blockOf(e, 0), 0);
  assert.equal(blockOf(e, T - 1), t.rows - 1);
  assert.equal(blockOf(e, T), -1);
  assert.equal(blockOf(e, -1), -1);
  for (let i = 0; i < T; i++) {
    const b = blockOf(e, i);
    assert.ok(e[b]! <= i && i < e[b + 1]!, `token ${i} in block ${b}`);
  }
  const at = tileCellAt(t, 50, 49)!;
  assert.ok(at.qa <= 50 && 50 <= at.qb && at.ka <= 49 && 49 <= at.kb);
  assert.equal(at.value, t.values[blockOf(t.rowEdges, 50) * t.cols + blockOf(t.colEdges, 49)]);
  // the block holding the previous-token stripe shows its max, not a mean
  assert.ok(at.value >= prev[50 * T + 49]!);
  const zoom = tileOf(prev, 40, 60, 40, 60, 64);
  assert.equal(tileCellAt(zoom, 39, 40), null);
  assert.deepEqual(tileCellAt(zoom, 50, 49), { qa: 50, qb: 50, ka: 49, kb: 49, value: prev[50 * T + 49]! });
});

test('tile caption and requests: pooled sizes said, exact says nothing; a view asks for its window at ≤ PATTERN_TILE_MAX cells', () => {
  assert.equal(poolCaption(tileOf(prev, 0, 80, 0, 80, 16)), 'max-pooled, 5×5 tokens per cell');
  assert.equal(poolCaption(tileOf(prev, 0, T, 0, T, 8)), 'max-pooled, up to 12×12 tokens per cell');
  assert.equal(poolCaption(tileOf(prev, 0, 20, 0, 20, 64)), '');
  const r = tileRequest({ q0: 100, k0: 30, n: 4000 }, 2400);
  assert.deepEqual(r, { q0: 100, q1: 4100, k0: 30, k1: 4030, size: PATTERN_TILE_MAX });
  assert.equal(tileRequest({ q0: 0, k0: 0, n: 16 }, 600).size, 600);
  assert.ok(sameRequest(r, { ...r }));
  assert.ok(!sameRequest(r, { ...r, size: 1000 }));
  assert.ok(!sameRequest(null, r));
  const t = tileOf(prev, 10, 30, 10, 30, 600);
  assert.ok(tileAnswers(t, { q0: 10, q1: 30, k0: 10, k1: 30, size: 600 }), 'an exact window answers any size at least its tokens');
  assert.ok(!tileAnswers(t, { q0: 10, q1: 30, k0: 11, k1: 31, size: 600 }), 'another window');
  assert.ok(!tileAnswers(tileOf(prev, 0, T, 0, T, 8), { q0: 0, q1: T, k0: 0, k1: T, size: 16 }), 'coarser than asked');
});

test('patternTile messages: the engine\'s tiles pass; inconsistent edges, dims or flags are refused with a path', () => {
  const good = msgOf(engineTile(prev, 0, T, 0, T, 8));
  assert.equal(patternTileMsg(good, 'body.tile', PATTERN_TILE_MAX).rowEdges.length, 9);
  const env = { messageId: 3, inReplyTo: 2, body: { type: 'patternTile', runId: 5, head: { layer: 1, head: 3 }, tile: good } };
  assert.ok(validateToWebview(env).ok);
  const bad = (patch: Partial<PatternTileMsg>, why: RegExp) => {
    const v = validateToWebview({ ...env, body: { ...env.body, tile: { ...good, ...patch } } });
    assert.ok(!v.ok && why.test(v.error), `${JSON.stringify(patch).slice(0, 80)} → ${v.ok ? 'accepted' : v.error}`);
  };
  bad({ rowEdges: good.rowEdges.slice(1) }, /body\.tile\.rowEdges: expected 9 edges/);
  bad({ colEdges: [...good.colEdges.slice(0, -1), T + 1] }, /body\.tile\.colEdges: expected edges from 0 to 90/);
  bad({ rowEdges: [0, 5, 5, ...good.rowEdges.slice(3)] }, /body\.tile\.rowEdges\[2\]: expected strictly increasing/);
  bad({ values: { dims: [8, 9], data: new ArrayBuffer(8 * 9 * 4) } }, /body\.tile\.colEdges: expected 10 edges/);
  bad({ values: { dims: [8, 8], data: new ArrayBuffer(12) } }, /body\.tile\.values\.data: expected 256 bytes/);
  bad({ pooled: false }, /body\.tile\.pooled: an exact tile has one cell per token/);
  bad({ q1: 0 }, /body\.tile\.q1/);
});

test('requestPatternTile from the webview: a clean copy; windows that are empty and sizes past the cap are refused', () => {
  const ok = parseFromWebview({ messageId: 7, body: { type: 'requestPatternTile', runId: 4, head: { layer: 0, head: 2, extra: 1 }, q0: 0, q1: 10, k0: 2, k1: 9, size: 512, junk: true } });
  assert.ok(ok.ok);
  assert.deepEqual(ok.value.body, { type: 'requestPatternTile', runId: 4, head: { layer: 0, head: 2 }, q0: 0, q1: 10, k0: 2, k1: 9, size: 512 });
  const refuse = (patch: Record<string, unknown>, why: RegExp) => {
    const r = parseFromWebview({ messageId: 8, body: { type: 'requestPatternTile', runId: 4, head: { layer: 0, head: 2 }, q0: 0, q1: 10, k0: 0, k1: 10, size: 64, ...patch } });
    assert.ok(!r.ok && why.test(r.error), r.ok ? 'accepted' : r.error);
    assert.equal(r.messageId, 8, 'answered with an error reply');
  };
  refuse({ q1: 0 }, /body\.q1: expected an integer/);
  refuse({ q0: 5, q1: 5 }, /body\.q1: expected q1 > q0 \(5\)/);
  refuse({ k0: 3, k1: 2 }, /body\.k1: expected k1 > k0 \(3\)/);
  refuse({ size: PATTERN_TILE_MAX + 1 }, /body\.size: expected an integer from 1 to 1024/);
  refuse({ size: 0 }, /body\.size/);
  refuse({ q0: 1.5 }, /body\.q0/);
});
