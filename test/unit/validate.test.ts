// The shared validation combinators (src/shared/validate.ts): what each accepts and returns, the
// path and wording of what it refuses, the one set of limits, and parseMessage's error replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS, Invalid, arr, bool, checkMessage, envelope, generateOptions, headList, headRef, int, list, nullable, num, numOrNull, obj, oneOf, parseMessage, str, strOrNull, tensor, validate, type Obj } from '../../src/shared/validate';

/** The error of a check that must fail. */
function error(check: () => unknown): string {
  const r = validate(check);
  assert.equal(r.ok, false, 'the check accepted the value');
  return (r as { error: string }).error;
}

test('validate: a value, or the Invalid error with its path; other errors are thrown', () => {
  assert.deepEqual(validate(() => int(3, 'x')), { ok: true, value: 3 });
  assert.deepEqual(validate(() => int(-1, 'body.state.run.tokens[3].start')), { ok: false, error: 'body.state.run.tokens[3].start: expected an integer ≥ 0' });
  assert.throws(() => validate(() => { throw new TypeError('a bug'); }), TypeError);
  assert.ok(new Invalid('x') instanceof Error);
});

test('int: safe integers within the bounds', () => {
  assert.equal(int(0, 'i'), 0);
  assert.equal(int(5, 'i', 1, 5), 5);
  for (const v of [1.5, NaN, Infinity, '3', null, undefined, 2 ** 53, -1]) assert.equal(error(() => int(v, 'i')), 'i: expected an integer ≥ 0', String(v));
  assert.equal(error(() => int(0, 'i', 1)), 'i: expected an integer ≥ 1');
  assert.equal(error(() => int(6, 'i', 1, 5)), 'i: expected an integer from 1 to 5');
});

test('num / numOrNull: finite numbers in a range; null (and NaN) only where allowed', () => {
  assert.equal(num(-2.5, 'n'), -2.5);
  for (const v of [NaN, Infinity, -Infinity, '1', null]) assert.equal(error(() => num(v, 'n')), 'n: expected a finite number');
  assert.equal(num(0, 'n', { min: 0, max: 100 }), 0);
  assert.equal(error(() => num(100.5, 'n', { min: 0, max: 100 })), 'n: expected a number ≥ 0 and ≤ 100');
  assert.equal(error(() => num(0, 'n', { above: 0 })), 'n: expected a number > 0');
  assert.equal(error(() => num(101, 'n', { above: 0, max: 100 })), 'n: expected a number > 0 and ≤ 100');
  assert.equal(numOrNull(null, 'm'), null);
  assert.equal(numOrNull(NaN, 'm'), null, 'a metric that is not available');
  assert.equal(numOrNull(0.25, 'm'), 0.25);
  assert.equal(error(() => numOrNull(Infinity, 'm')), 'm: expected a finite number');
});

test('str / strOrNull / bool / oneOf', () => {
  assert.equal(str('abc', 's'), 'abc');
  assert.equal(error(() => str(3, 's')), 's: expected a string');
  assert.equal(error(() => str('abcd', 's', 3)), 's: expected at most 3 characters, got 4');
  assert.equal(error(() => str('', 's', 10, 1)), 's: expected a non-empty string');
  assert.equal(error(() => str('x'.repeat(LIMITS.text + 1), 's')), `s: expected at most ${LIMITS.text} characters, got ${LIMITS.text + 1}`);
  assert.equal(strOrNull(null, 's'), null);
  assert.equal(error(() => strOrNull(undefined, 's')), 's: expected a string');
  assert.equal(bool(false, 'b'), false);
  assert.equal(error(() => bool(0, 'b')), 'b: expected a boolean');
  assert.equal(oneOf('to', 'd', ['from', 'to']), 'to');
  assert.equal(error(() => oneOf('up', 'd', ['from', 'to'])), 'd: expected one of from, to');
  assert.equal(error(() => oneOf(['to'], 'd', ['from', 'to'])), 'd: expected one of from, to');
});

test('obj / arr / list / nullable: paths of items, and the length limit', () => {
  assert.deepEqual(obj({ a: 1 }, 'o'), { a: 1 });
  for (const v of [null, [], 'x', 1]) assert.equal(error(() => obj(v, 'o')), 'o: expected an object');
  assert.deepEqual(arr([1, 2], 'a'), [1, 2]);
  assert.equal(error(() => arr({ length: 1 }, 'a')), 'a: expected an array');
  assert.equal(error(() => arr([1, 2, 3], 'a', 2)), 'a: expected at most 2 items, got 3');
  assert.deepEqual(list([1, 2], 'xs', (v, p) => int(v, p) * 10), [10, 20]);
  assert.equal(error(() => list([1, 'two'], 'xs', (v, p) => int(v, p))), 'xs[1]: expected an integer ≥ 0');
  assert.equal(error(() => list([[0], [1, -1]], 'm', (row, p) => list(row, p, (v, q) => int(v, q)))), 'm[1][1]: expected an integer ≥ 0');
  assert.equal(nullable(null, 'h', headRef), null);
  assert.deepEqual(nullable({ layer: 1, head: 2 }, 'h', headRef), { layer: 1, head: 2 });
});

test('headRef / headList: clean copies, indexes below LIMITS.headIndex, lists up to LIMITS.heads', () => {
  assert.deepEqual(headRef({ layer: 3, head: 4, extra: 'dropped' }, 'h'), { layer: 3, head: 4 });
  assert.equal(error(() => headRef({ layer: 0 }, 'body.head')), `body.head.head: expected an integer from 0 to ${LIMITS.headIndex - 1}`);
  assert.equal(error(() => headRef({ layer: LIMITS.headIndex, head: 0 }, 'h')), `h.layer: expected an integer from 0 to ${LIMITS.headIndex - 1}`);
  assert.deepEqual(headList([{ layer: 0, head: 1 }], 'hs'), [{ layer: 0, head: 1 }]);
  assert.equal(error(() => headList([{ layer: 0, head: 1 }, { layer: 0, head: -1 }], 'hs')), `hs[1].head: expected an integer from 0 to ${LIMITS.headIndex - 1}`);
  const many = Array.from({ length: LIMITS.heads + 1 }, () => ({ layer: 0, head: 0 }));
  assert.equal(error(() => headList(many, 'hs')), `hs: expected at most ${LIMITS.heads} items, got ${LIMITS.heads + 1}`);
});

test('tensor: float32 bytes matching the dims, of the given rank', () => {
  const t = { dims: [2, 3], data: new ArrayBuffer(24) };
  assert.equal(tensor(t, 't', 2), t);
  assert.ok(tensor({ dims: [3], data: new Float32Array(3) }, 't'), 'a typed-array view');
  assert.ok(tensor({ dims: [0], data: new ArrayBuffer(0) }, 't', 1), 'empty');
  assert.equal(error(() => tensor(t, 't', 1)), 't.dims: expected 1 dimension(s)');
  assert.equal(error(() => tensor({ dims: [2, 3], data: new ArrayBuffer(20) }, 't')), 't.data: expected 24 bytes (float32 × 2×3), got 20');
  assert.equal(error(() => tensor({ dims: [2], data: [0, 1] }, 't')), 't.data: expected an ArrayBuffer');
  assert.equal(error(() => tensor({ dims: [2, -1], data: new ArrayBuffer(0) }, 't')), 't.dims[1]: expected an integer ≥ 0');
});

test('generateOptions: the limits the page and the host share', () => {
  assert.deepEqual(generateOptions({ maxTokens: LIMITS.maxTokens, temperature: LIMITS.temperature, seed: LIMITS.seed, extra: 1 }, 'o'), { maxTokens: LIMITS.maxTokens, temperature: LIMITS.temperature, seed: LIMITS.seed });
  assert.equal(error(() => generateOptions({ maxTokens: 0, temperature: 0, seed: 0 }, 'o')), `o.maxTokens: expected an integer from 1 to ${LIMITS.maxTokens}`);
  assert.equal(error(() => generateOptions({ maxTokens: 1, temperature: -0.1, seed: 0 }, 'o')), `o.temperature: expected a number ≥ 0 and ≤ ${LIMITS.temperature}`);
  assert.equal(error(() => generateOptions({ maxTokens: 1, temperature: 0, seed: LIMITS.seed + 1 }, 'o')), `o.seed: expected an integer from 0 to ${LIMITS.seed}`);
});

test('envelope: messageId, optional inReplyTo, a body with a type', () => {
  assert.deepEqual(envelope({ messageId: 3, body: { type: 'x', a: 1 } }), { messageId: 3, body: { type: 'x', a: 1 }, type: 'x' });
  assert.equal(envelope({ messageId: 3, inReplyTo: 2, body: { type: 'x' } }).inReplyTo, 2);
  assert.equal(error(() => envelope(null)), 'message: expected an envelope {messageId, body}');
  assert.equal(error(() => envelope({ messageId: -1, body: { type: 'x' } })), 'message.messageId: expected an integer ≥ 0');
  assert.equal(error(() => envelope({ messageId: 1, inReplyTo: 'a', body: { type: 'x' } })), 'message.inReplyTo: expected an integer ≥ 0');
  assert.equal(error(() => envelope({ messageId: 1, body: 'x' })), 'body: expected an object');
  assert.equal(error(() => envelope({ messageId: 1, body: {} })), 'body.type: expected a string');
});

type Msg = { type: 'ping'; n: number } | { type: 'stop' };
const BODIES = { ping: (b: Obj) => ({ type: 'ping' as const, n: int(b.n, 'body.n', 0, 9) }), stop: () => ({ type: 'stop' as const }) };

test('parseMessage: clean bodies; errors name the message and keep its messageId for the reply', () => {
  assert.deepEqual(parseMessage<Msg>({ messageId: 4, body: { type: 'ping', n: 2, junk: true } }, BODIES), { ok: true, value: { messageId: 4, body: { type: 'ping', n: 2 } } });
  assert.deepEqual(parseMessage<Msg>({ messageId: 5, body: { type: 'ping', n: 10 } }, BODIES), { ok: false, error: 'malformed ping message: body.n: expected an integer from 0 to 9', messageId: 5 });
  assert.deepEqual(parseMessage<Msg>({ messageId: 6, body: { type: 'toString' } }, BODIES), { ok: false, error: 'unknown message type "toString"', messageId: 6 }, 'no inherited property is a handler');
  assert.deepEqual(parseMessage<Msg>({ messageId: 7, body: 'ping' }, BODIES), { ok: false, error: 'body: expected an object', messageId: 7 });
  assert.deepEqual(parseMessage<Msg>({ body: { type: 'stop' } }, BODIES), { ok: false, error: 'message.messageId: expected an integer ≥ 0' });
  const long = parseMessage<Msg>({ messageId: 1, body: { type: 'x'.repeat(50) } }, BODIES);
  assert.deepEqual(long, { ok: false, error: `unknown message type "${'x'.repeat(40)}"`, messageId: 1 });
  const huge = parseMessage<Msg>({ messageId: 1, body: { type: 'x'.repeat(100) } }, BODIES);
  assert.deepEqual(huge, { ok: false, error: 'body.type: expected at most 64 characters, got 100', messageId: 1 });
});

test('checkMessage: the page side checks in place and returns the message itself', () => {
  const checks = { ping: (b: Obj) => void int(b.n, 'body.n', 0, 9), stop: () => undefined };
  const raw = { messageId: 1, inReplyTo: 0, body: { type: 'ping', n: 3 } };
  const r = checkMessage<Msg>(raw, checks);
  assert.ok(r.ok && r.value === raw, 'no copy');
  assert.deepEqual(checkMessage<Msg>({ messageId: 1, body: { type: 'ping', n: -3 } }, checks), { ok: false, error: 'body.n: expected an integer from 0 to 9' });
  assert.deepEqual(checkMessage<Msg>({ messageId: 1, body: { type: 'constructor' } }, checks), { ok: false, error: 'body.type: expected one of ping, stop' });
  assert.deepEqual(checkMessage<Msg>([], checks), { ok: false, error: 'message: expected an envelope {messageId, body}' });
});
