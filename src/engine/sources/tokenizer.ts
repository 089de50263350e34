// The prompt tokenizer: a Hugging Face `tokenizer.json` run by the `tokenizers` npm binding, with
// token offsets converted to JS string (UTF-16 code unit) indices so they can be used directly on
// the prompt text in the editor.
//
// OFFSET UNIT (observed with tokenizers 0.23.2, see test/unit/tokenizer.test.ts): the binding's
// `Encoding.getOffsets()` returns offsets in Unicode scalar values (code points) of the input
// string, *not* UTF-8 bytes and *not* UTF-16 code units. E.g. for "a😀b" it gives a=[0,1],
// the four byte-level tokens of 😀 each [1,2], b=[2,3] (UTF-16 would put b at [3,4], UTF-8 bytes
// at [5,6]); for "café" (NFC) the two byte tokens of é both get [3,4]. So a token holding only some
// of the UTF-8 bytes of a character is given the whole character's range, and offsets never fall
// inside a character: converting code point -> UTF-16 index can never split a surrogate pair.
// Special tokens inserted by the post-processor (e.g. a BOS from TemplateProcessing) come back
// as [0,0].
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from 'tokenizers';
import { EngineError, oneLine } from '../errors';
import { parseBoundedJson } from './boundedJson';

export interface PromptToken {
  id: number;
  /**
   * What this token covers in the prompt, for display: `prompt.slice(start, end)` minus any part
   * already shown by an earlier token. When several byte-level tokens share one character (é, an
   * emoji, a CJK ideograph), the first gets the character and the continuations get ''; so the
   * `text` of all tokens with start < end, concatenated in order, is the prompt (for tokenizers
   * without a normalizer that drops text). Special tokens inserted by the post-processor get
   * their token string (e.g. "<s>").
   */
  text: string;
  /** UTF-16 code unit offsets into the prompt (JS string indices), end exclusive; on code point boundaries. */
  start: number;
  end: number;
  /**
   * A special token: inserted by the post-processor (then start === end, at the position it was
   * inserted: 0 for a BOS, prompt.length for an appended EOS), or an added special token that the
   * prompt spelled out literally (e.g. "<|endoftext|>"; then it covers that text).
   */
  special: boolean;
}

export interface PromptTokenizer {
  /** Tokenizes like the model's own tokenizer with add_special_tokens=true (no truncation, no padding). */
  encode(prompt: string): Promise<PromptToken[]>;
  /**
   * Surface text of one token id, for top-K lists: " cat" for "Ġcat". For byte-level BPE, bytes
   * that are not a whole UTF-8 character are shown as "<0xE2>". Special/added tokens give their
   * content ("</s>"); an id outside the vocabulary gives "<id N>".
   */
  decodeToken(id: number): string;
  /** Decodes a whole id sequence (bytes split across tokens join up), special tokens kept. */
  decode(ids: number[]): Promise<string>;
  /** Including added tokens. */
  vocabSize: number;
  /** Absolute path of the tokenizer.json that was loaded. */
  file: string;
  /** From tokenizer_config.json when present (null when absent or not set). */
  bosToken: string | null;
  eosToken: string | null;
}

/** Loads `dir/tokenizer.json` (`dir` may also be the tokenizer.json itself). Throws EngineError('TOKENIZER'). */
export async function loadTokenizer(dir: string): Promise<PromptTokenizer> {
  return loadTokenizerSync(dir);
}

export function loadTokenizerSync(dirOrFile: string): PromptTokenizer {
  const abs = path.resolve(dirOrFile);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs);
  } catch {
    st = undefined;
  }
  if (!st) {
    throw new EngineError('TOKENIZER', `${abs}: not found; pass the model folder that holds the Hugging Face tokenizer.json`);
  }
  const dir = st.isDirectory() ? abs : path.dirname(abs);
  const file = st.isDirectory() ? path.join(abs, 'tokenizer.json') : abs;

  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EngineError('TOKENIZER', `${dir}: no tokenizer.json in this folder; ${missingHint(dir)}`);
    throw new EngineError('TOKENIZER', `${file}: cannot read (${code ?? oneLine(e)}); check the file's permissions`);
  }
  if (text.startsWith('version https://git-lfs')) {
    throw new EngineError('TOKENIZER', `${file}: is a Git LFS pointer, not the tokenizer; run \`git lfs pull\` in the model folder or re-download tokenizer.json`);
  }
  const parsed = parseBoundedJson(text);
  if ('problem' in parsed) throw new EngineError('TOKENIZER', `${file}: ${parsed.problem}; re-download tokenizer.json from the model's Hugging Face repository`);
  const json = parsed.value;
  if (typeof json !== 'object' || json === null || Array.isArray(json) || !('model' in json)) {
    throw new EngineError('TOKENIZER', `${file}: not a Hugging Face tokenizer.json (expected a JSON object with a "model" entry); re-download it from the model's repository`);
  }
  // Checked here because the binding does not: a template naming a special token it does not define
  // loads fine, then panics inside Rust on the first encode and aborts the whole process.
  const ppProblem = postProcessorProblem((json as { post_processor?: unknown }).post_processor, 'post_processor');
  if (ppProblem) throw new EngineError('TOKENIZER', `${file}: ${ppProblem}; re-download tokenizer.json, or re-save it with a recent transformers`);
  let tok: Tokenizer;
  try {
    tok = Tokenizer.fromString(text);
  } catch (e) {
    throw new EngineError('TOKENIZER', `${file}: malformed or unsupported tokenizer (${bindingReason(e)}); re-download tokenizer.json, or re-save it with a recent transformers: AutoTokenizer.from_pretrained(folder).save_pretrained(folder)`);
  }
  // The model sees the whole prompt: tokenizer.json may carry truncation/padding settings meant for
  // training; they would silently cut the prompt or add pad tokens.
  tok.disableTruncation();
  tok.disablePadding();

  const meta = json as TokenizerJson;
  const specialIds = new Set<number>();
  for (const t of Array.isArray(meta.added_tokens) ? meta.added_tokens : []) {
    if (t && t.special === true && typeof t.id === 'number') specialIds.add(t.id);
  }
  const addedIds = new Set<number>();
  for (const t of Array.isArray(meta.added_tokens) ? meta.added_tokens : []) {
    if (t && typeof t.id === 'number') addedIds.add(t.id);
  }
  const byteLevel = isByteLevelDecoder(meta.decoder);
  const config = readConfig(dir);
  const decoder = tok.getDecoder();
  const decodeCache = new Map<number, string>();

  const decodeToken = (id: number): string => {
    const hit = decodeCache.get(id);
    if (hit !== undefined) return hit;
    const raw = Number.isInteger(id) && id >= 0 ? tok.idToToken(id) : null;
    let out: string;
    if (raw === null) out = `<id ${id}>`;
    else if (addedIds.has(id)) out = raw;
    else if (byteLevel) out = decodeByteLevel(raw) ?? raw;
    else out = decodeWith(decoder, raw);
    decodeCache.set(id, out);
    return out;
  };

  const encode = async (prompt: string): Promise<PromptToken[]> => {
    let enc;
    try {
      enc = await tok.encode(prompt);
    } catch (e) {
      throw new EngineError('TOKENIZER', `${file}: failed to tokenize the prompt (${bindingReason(e)})`);
    }
    const ids = enc.getIds();
    const tokens = enc.getTokens();
    const offsets = enc.getOffsets();
    const mask = enc.getSpecialTokensMask();
    const cpToUnit = codePointToUtf16(prompt);
    const cpCount = cpToUnit.length - 1;
    const out: PromptToken[] = [];
    let covered = 0; // UTF-16 index up to which earlier tokens have shown the prompt
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const [s0, e0] = offsets[i] ?? [0, 0];
      const s = cpToUnit[clamp(s0 ?? 0, 0, cpCount)]!;
      const e = cpToUnit[clamp(e0 ?? 0, 0, cpCount)]!;
      const inserted = mask[i] === 1;
      const special = inserted || specialIds.has(id);
      if (inserted || (special && s === e)) {
        // Added by the post-processor: place it where it was inserted (BOS at 0, EOS after the text).
        out.push({ id, text: tokens[i] ?? tok.idToToken(id) ?? '', start: covered, end: covered, special: true });
        continue;
      }
      const start = Math.min(s, e);
      const end = Math.max(s, e);
      const from = Math.max(start, covered);
      out.push({ id, text: from < end ? prompt.slice(from, end) : '', start, end, special });
      if (end > covered) covered = end;
    }
    return out;
  };

  return {
    encode,
    decodeToken,
    decode: (ids: number[]) => tok.decode(ids, false),
    vocabSize: tok.getVocabSize(true),
    file,
    bosToken: config.bos,
    eosToken: config.eos,
  };
}

/**
 * Throws TOKENIZER when the tokenizer produced an id the model has no embedding row for (a
 * tokenizer.json from another model, or added tokens past config.json's vocab_size): such ids must
 * never reach onnxruntime.
 */
export function checkTokenIds(file: string, tokens: readonly PromptToken[], vocabSize: number): void {
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i]!.id;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new EngineError('TOKENIZER', `${file}: the prompt's token ${i} (${JSON.stringify(tokens[i]!.text.slice(0, 24))}) has id ${id}, but the model's vocab_size is ${vocabSize}; the tokenizer and config.json belong to different models`);
    }
  }
}

interface TokenizerJson {
  added_tokens?: { id?: unknown; content?: unknown; special?: unknown }[];
  decoder?: unknown;
}

function missingHint(dir: string): string {
  const has = (n: string) => fs.existsSync(path.join(dir, n));
  const alt = has('tokenizer.model')
    ? 'found tokenizer.model (SentencePiece) but '
    : has('vocab.json') && has('merges.txt')
      ? 'found vocab.json + merges.txt but '
      : '';
  return `${alt}AttnScope needs the Hugging Face tokenizer.json (fast tokenizer); download it from the model's repository or create it with transformers: AutoTokenizer.from_pretrained(folder).save_pretrained(folder)`;
}

/** The binding's reason, one line, without its "Error loading from file" prefix. */
function bindingReason(e: unknown): string {
  return oneLine(e).replace(/^Error loading from file:?\s*/, '').trim() || 'unknown error';
}

function readConfig(dir: string): { bos: string | null; eos: string | null } {
  const file = path.join(dir, 'tokenizer_config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { bos: null, eos: null }; // optional
  }
  const parsed = parseBoundedJson(text);
  if ('problem' in parsed) throw new EngineError('TOKENIZER', `${file}: ${parsed.problem}; fix or re-download it, or delete it (tokenizer.json is enough)`);
  const cfg = parsed.value;
  if (typeof cfg !== 'object' || cfg === null) return { bos: null, eos: null };
  const c = cfg as Record<string, unknown>;
  return { bos: tokenName(c['bos_token']), eos: tokenName(c['eos_token']) };
}

/** tokenizer_config.json writes tokens as "<s>" or as {"__type": "AddedToken", "content": "<s>", ...}. */
function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

function isByteLevelDecoder(d: unknown): boolean {
  if (typeof d !== 'object' || d === null) return false;
  const o = d as { type?: unknown; decoders?: unknown };
  if (o.type === 'ByteLevel') return true;
  // A Sequence made only of ByteLevel (as some exports write it).
  if (o.type === 'Sequence' && Array.isArray(o.decoders) && o.decoders.length > 0) {
    return o.decoders.every((x) => isByteLevelDecoder(x));
  }
  return false;
}

function decodeWith(decoder: { decode(tokens: string[]): string } | null, raw: string): string {
  if (!decoder) return raw;
  let s: string;
  try {
    s = decoder.decode([raw]);
  } catch {
    return raw;
  }
  // SentencePiece-style decoders (Metaspace, or Replace ▁ + Strip) drop the leading space of the
  // first token of a text; a lone token is always "first", so put the space back.
  if (raw.startsWith('\u2581') && !s.startsWith(' ')) s = ' ' + s;
  return s;
}

let byteOfChar: Map<string, number> | undefined;

/** GPT-2's byte -> unicode map, inverted. */
function byteMap(): Map<string, number> {
  if (byteOfChar) return byteOfChar;
  const m = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    m.set(String.fromCharCode(printable ? b : 256 + n++), b);
  }
  byteOfChar = m;
  return m;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** ByteLevel token -> text; bytes that do not form a whole UTF-8 character become "<0xXX>". Null when not byte-level. */
function decodeByteLevel(raw: string): string | null {
  const map = byteMap();
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const b = map.get(raw[i]!);
    if (b === undefined) return null;
    bytes[i] = b;
  }
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len > 0 && i + len <= bytes.length) {
      try {
        out += utf8.decode(bytes.subarray(i, i + len));
        i += len;
        continue;
      } catch {
        // fall through: not a valid sequence
      }
    }
    out += `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    i++;
  }
  return out;
}

/** map[k] = UTF-16 index of code point k; map[cpCount] = s.length. A lone surrogate counts as one code point. */
function codePointToUtf16(s: string): Int32Array {
  let count = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    count++;
  }
  const map = new Int32Array(count + 1);
  let k = 0;
  for (let i = 0; i < s.length; i++) {
    map[k++] = i;
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  map[count] = s.length;
  return map;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Record<string, unknown>, k: string): unknown => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);

/**
 * What is wrong with a tokenizer.json post-processor that the tokenizers binding would accept and
 * then abort on (a TemplateProcessing piece naming a special token missing from its special_tokens
 * map, an entry whose ids and tokens disagree, a Bert/Roberta sep or cls that is not [token, id]);
 * undefined when it is sound or absent.
 */
export function postProcessorProblem(pp: unknown, where: string, depth = 0): string | undefined {
  if (pp === undefined || pp === null) return undefined;
  if (!isObject(pp)) return `${where} is not an object`;
  if (depth > 8) return `${where} nests processors too deeply`;
  const type = own(pp, 'type');
  if (type === 'Sequence') {
    const list = own(pp, 'processors');
    if (!Array.isArray(list)) return `${where}.processors is not a list`;
    for (const [i, p] of list.entries()) {
      const problem = postProcessorProblem(p, `${where}.processors[${i}]`, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  }
  if (type === 'BertProcessing' || type === 'RobertaProcessing') {
    for (const k of ['sep', 'cls']) {
      const v = own(pp, k);
      if (!(Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && Number.isSafeInteger(v[1]) && (v[1] as number) >= 0)) return `${where}.${k} is not a [token, id] pair`;
    }
    return undefined;
  }
  if (type !== 'TemplateProcessing') return undefined;
  const specials = own(pp, 'special_tokens');
  if (!isObject(specials)) return `${where}.special_tokens is not an object`;
  for (const [name, entry] of Object.entries(specials)) {
    if (!isObject(entry)) return `${where}.special_tokens["${name}"] is not an object`;
    const ids = own(entry, 'ids');
    const tokens = own(entry, 'tokens');
    if (!Array.isArray(ids) || !ids.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) return `${where}.special_tokens["${name}"].ids is not a list of token ids`;
    if (!Array.isArray(tokens) || tokens.length !== ids.length || !tokens.every((x) => typeof x === 'string')) return `${where}.special_tokens["${name}"].tokens does not match its ids`;
  }
  for (const part of ['single', 'pair']) {
    const seq = own(pp, part);
    if (seq === undefined) continue;
    if (!Array.isArray(seq)) return `${where}.${part} is not a list`;
    for (const piece of seq) {
      const st = isObject(piece) ? own(piece, 'SpecialToken') : undefined;
      if (st === undefined) continue;
      const id = isObject(st) ? own(st, 'id') : undefined;
      if (typeof id !== 'string') return `${where}.${part}: a SpecialToken has no id`;
      if (own(specials, id) === undefined) return `${where}.${part} uses the special token "${id.slice(0, 40)}", which its special_tokens do not define`;
    }
  }
  return undefined;
}
