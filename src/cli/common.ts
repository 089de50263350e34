// What every `attnscope` subcommand shares: where the model comes from (a folder, a Hub id, the
// embedded default), reading a prompt file, writing the JSON result, token-id flags, and opening a
// model for the length of one command.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError, oneLine } from '../engine/errors';
import { Model } from '../engine/model';
import type { DeviceRequest } from '../engine/runtime/ortSession';
import { detectBinaryBytes } from '../engine/sources/promptText';
import { formatProgress, resolveModelSource, type SourceProgress } from '../engine/sources/hub';

/** The model shipped with the package (models/default), used when --model is absent. */
export function defaultModelDir(): string {
  return path.join(__dirname, '..', 'models', 'default');
}

/**
 * --model as a checkpoint folder: a folder, or a Hub id org/name[@revision] found in the Hugging
 * Face cache or downloaded into it (progress on stderr; an interrupted download continues next time).
 */
export async function resolveModel(spec: string | undefined): Promise<string> {
  if (spec) {
    let shown = '';
    const tty = process.stderr.isTTY;
    const onProgress = (p: SourceProgress) => {
      // On a terminal one line redrawn in place; in a log one line per file and 10%.
      const line = `attnscope: ${formatProgress(p)}`;
      const decile = `${p.file}|${Math.floor((10 * p.doneBytes) / Math.max(1, p.totalBytes))}`;
      if (tty) process.stderr.write(`\r${line}\x1b[K`);
      else if (decile !== shown) process.stderr.write(line + '\n');
      shown = decile;
    };
    let resolved: Awaited<ReturnType<typeof resolveModelSource>>;
    try {
      resolved = await resolveModelSource(spec, { onProgress });
    } finally {
      if (tty && shown) process.stderr.write('\n');
    }
    const { dir, hub } = resolved;
    if (hub?.downloaded) process.stderr.write(`attnscope: ${hub.id}@${hub.commit.slice(0, 12)} is in the Hugging Face cache at ${dir}\n`);
    return dir;
  }
  const d = defaultModelDir();
  if (!fs.existsSync(path.join(d, 'config.json'))) {
    throw new EngineError('MODEL', `no --model given and the embedded default model is missing at ${d}; pass --model <checkpoint folder or org/name>`);
  }
  return d;
}

/** Reads a prompt file as UTF-8; refuses binary content (an executable, an image) unless `allowBinary`. */
export function readPrompt(file: string, allowBinary = false): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError('PROMPT', `${file}: ${code === 'ENOENT' ? 'prompt file not found' : code === 'EISDIR' ? 'is a folder, not a prompt file' : `cannot read (${code})`}`);
  }
  const binary = detectBinaryBytes(bytes);
  if (binary && !allowBinary) {
    throw new EngineError('PROMPT', `${file}: looks like a binary file, not text (${binary.reason}); pass a text prompt, or add --allow-binary to inspect it anyway`);
  }
  let text: string;
  if (binary) {
    text = new TextDecoder('utf-8', { fatal: false }).decode(bytes); // undecodable bytes become U+FFFD
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      const at = firstInvalidUtf8(bytes);
      throw new EngineError('PROMPT', `${file}: not valid UTF-8 (first bad byte at offset ${at}); save the prompt as UTF-8`);
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) throw new EngineError('PROMPT', `${file}: the prompt is empty; write some text to inspect`);
  return text;
}

/** Byte offset where the first ill-formed UTF-8 sequence starts. */
function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return b.length;
}

/** Writes the JSON result to `--json out` (atomically) or stdout. */
export function write(out: string | undefined, text: string): void {
  if (!out) {
    process.stdout.write(text + '\n');
    return;
  }
  try {
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text + '\n', 'utf8');
    fs.renameSync(tmp, out);
  } catch (e) {
    throw new EngineError('BAD_ARGUMENT', `--json ${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? oneLine(e)})`);
  }
}

/** A token id flag: a non-negative integer (checked against the vocabulary once the model is open). */
export function parseTokenId(s: string, flag: string): number {
  const n = Number(s);
  if (!/^\s*\d+\s*$/.test(s) || !Number.isSafeInteger(n)) throw new EngineError('BAD_ARGUMENT', `${flag}: "${s}" must be a token id (a non-negative integer)`);
  return n;
}

export function checkTokenIdFlag(model: Model, id: number, flag: string): void {
  if (id >= model.dims.vocabSize) throw new EngineError('BAD_ARGUMENT', `${flag}: ${id} is not in the vocabulary (0..${model.dims.vocabSize - 1})`);
}

/** Prints a warning on stderr (the engine's warnings: a prompt cut to the token limit, …). */
export function warn(w: string): void {
  process.stderr.write(`attnscope: warning: ${w}\n`);
}

/** Opens the model named by --model (or the default) on a device, runs `fn`, and always releases it. */
/** `warm`: the session to create at open (Model.open; 'kept' when the command's runs are kept inspections only). */
export async function withModel<T>(spec: string | undefined, device: DeviceRequest, fn: (model: Model) => Promise<T>, warm?: 'plain' | 'kept'): Promise<T> {
  const model = await Model.open(await resolveModel(spec), { device, ...(warm ? { warm } : {}) });
  try {
    return await fn(model);
  } finally {
    await model.release();
  }
}
