// JSON from files a user points AttnScope at (config.json, tokenizer.json, the shard index): parsed
// only when its nesting is bounded. V8's JSON.parse takes any depth, but everything after it that
// walks the value recursively (JSON.stringify, structured clone to the worker, the tokenizers
// binding) overflows the stack on a pathologically nested file; real files nest a few levels.

/**
 * The shape of JSON text without parsing it, in one linear pass without recursion (strings
 * skipped): the deepest nesting of arrays/objects, and a count of values (each `{`, `[`, `,` and
 * `:` — enough to bound what parsing would allocate).
 */
export function jsonShape(text: string): { depth: number; items: number } {
  let depth = 0;
  let max = 0;
  let items = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      items++;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c || c === 0x3a) items++;
  }
  return { depth: max, items };
}

/** Deepest nesting of arrays/objects in JSON text (see jsonShape). */
export function jsonDepth(text: string): number {
  return jsonShape(text).depth;
}

/** Nesting limit: serde_json's default (the tokenizers binding refuses deeper tokenizer.json). */
export const MAX_JSON_DEPTH = 128;

/**
 * Parses JSON text; returns the problem as a short phrase instead of throwing ("not valid JSON
 * (...)" or "nested N levels deep (limit 128)").
 */
export function parseBoundedJson(text: string, maxDepth = MAX_JSON_DEPTH): { value: unknown } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { problem: `not valid JSON (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})` };
  }
  const depth = jsonDepth(text);
  if (depth > maxDepth) return { problem: `nested ${depth} levels deep (the limit is ${maxDepth}); the file is damaged or not what it claims to be` };
  return { value };
}
