// The binary-prompt detector the CLI and the extension share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BINARY_SAMPLE, detectBinaryBytes, detectBinaryText } from '../../src/engine/sources/promptText';

test('text is text: prose, code, tabs, CRLF, ANSI colours, emoji, CJK, lone surrogates', () => {
  for (const t of ['hello world', 'def f(x):\n\treturn x\r\n', '\x1b[1mbold\x1b[0m', 'Café 🎉 日本語', 'a\ud800b', '', '\f page \v']) {
    assert.equal(detectBinaryText(t), null, JSON.stringify(t));
    assert.equal(detectBinaryBytes(Buffer.from(t)), null, JSON.stringify(t));
  }
  // One stray control character in prose is not enough.
  assert.equal(detectBinaryText('some text with one \x07 bell in it'), null);
});

test('binary: a NUL, or more than 10% control or replacement characters in the sample', () => {
  assert.deepEqual(detectBinaryText('abc\0def'), { reason: 'a NUL character at offset 3' });
  assert.deepEqual(detectBinaryBytes(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])), { reason: 'a NUL byte at offset 7' });
  assert.match(detectBinaryText('ab\x01\x02\x03\x04cdef')!.reason, /^40% control or undecodable characters in its first 10 characters$/);
  assert.match(detectBinaryText('\ufffd\ufffd\ufffdabcdefg')!.reason, /30%/);
  // Latin-1 bytes are undecodable UTF-8: a mostly accented Latin-1 file is refused from its bytes.
  assert.ok(detectBinaryBytes(Buffer.from([0xe9, 0xe8, 0xe0, 0x61, 0xe9, 0xe8, 0xe0, 0x62])));
  // Only the sample counts: a NUL after it is not seen.
  assert.equal(detectBinaryText('a'.repeat(BINARY_SAMPLE) + '\0'), null);
  // A multi-byte character cut by the sample's end is not undecodable.
  const cut = Buffer.from('a' + 'é'.repeat(BINARY_SAMPLE));
  assert.equal(detectBinaryBytes(cut), null);
});
