// Is a prompt text at all? An executable, image or archive opened as a prompt tokenizes into
// thousands of byte tokens and "runs" without a word; the CLI refuses it (unless asked) and the
// extension warns and asks. The test is the one `file`/git-style tools use: a NUL in the first few
// KB, or a high share of control and replacement characters there.

/** How much of the start is looked at (UTF-16 code units, or bytes). */
export const BINARY_SAMPLE = 8192;
/** Share of control/replacement characters in the sample above which text is called binary. */
export const BINARY_CONTROL_SHARE = 0.1;

export interface BinaryVerdict {
  /** what gives it away, e.g. "a NUL character at offset 24" (engine terms, one phrase) */
  reason: string;
}

/** Control characters other than tab, newline, vertical tab, form feed, carriage return and ESC; and U+FFFD. */
function isSuspicious(c: number): boolean {
  if (c < 0x20) return !(c >= 0x09 && c <= 0x0d) && c !== 0x1b;
  return c === 0x7f || (c >= 0x80 && c <= 0x9f) || c === 0xfffd;
}

/** Null when `text` looks like text; otherwise why it looks binary. Looks at the first BINARY_SAMPLE code units. */
export function detectBinaryText(text: string): BinaryVerdict | null {
  const n = Math.min(text.length, BINARY_SAMPLE);
  let odd = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) return { reason: `a NUL character at offset ${i}` };
    if (isSuspicious(c)) odd++;
  }
  if (odd >= 2 && odd > n * BINARY_CONTROL_SHARE) {
    return { reason: `${Math.round((100 * odd) / n)}% control or undecodable characters in its first ${n} characters` };
  }
  return null;
}

/** The same test on raw file bytes (undecodable UTF-8 counts as replacement characters). */
export function detectBinaryBytes(bytes: Uint8Array): BinaryVerdict | null {
  const head = bytes.subarray(0, BINARY_SAMPLE);
  const nul = head.indexOf(0);
  if (nul >= 0) return { reason: `a NUL byte at offset ${nul}` };
  // A multi-byte character cut by the sample's end decodes to one U+FFFD: drop an incomplete tail.
  let end = head.length;
  if (head.length < bytes.length) {
    let k = end - 1;
    while (k > 0 && end - k < 4 && (head[k]! & 0xc0) === 0x80) k--;
    const lead = head[k]!;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (k + need > end) end = k;
  }
  return detectBinaryText(new TextDecoder('utf-8', { fatal: false }).decode(head.subarray(0, end)));
}
