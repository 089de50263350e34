// A Hugging Face checkpoint folder: config.json, model.safetensors or a sharded
// model.safetensors.index.json, tokenizer.json. This file finds and validates the pieces; the
// family files in ../arch turn them into a ModelSpec.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../errors';
import { readSafetensorsHeader, readTensorF32, type TensorEntry } from './safetensors';
import { parseBoundedJson } from './boundedJson';

export interface Checkpoint {
  dir: string;
  config: Record<string, unknown>;
  tensors: Map<string, TensorEntry>;
}

export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError('MODEL', `${file}: ${code === 'ENOENT' ? 'not found' : `cannot read (${code})`}; ${what}`);
  }
  const r = parseBoundedJson(text);
  if ('problem' in r) throw new EngineError('MODEL', `${file}: ${r.problem}; fix or re-download it`);
  return r.value;
}

/** JSON.parse'd objects can hold any key: look up only their own properties ("constructor", "__proto__"). */
function own<T>(o: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** A shard file name from the index: a plain file name in the checkpoint folder. */
function checkShardName(indexFile: string, f: unknown): string {
  if (typeof f !== 'string' || f === '' || f === '.' || f === '..' || /[/\\\0]/.test(f)) {
    throw new EngineError('MODEL', `${indexFile}: invalid shard name ${JSON.stringify(f) ?? String(f)} in "weight_map" (expected a file name in the checkpoint folder, e.g. model-00001-of-00002.safetensors); re-download the checkpoint`);
  }
  return f;
}

export function openCheckpoint(dir: string): Checkpoint {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new EngineError('MODEL', `${abs}: model folder not found; point --model (CLI) or the attnscope.model setting (VS Code) at a Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json)`);
  }
  if (!st.isDirectory()) throw new EngineError('MODEL', `${abs}: not a folder; --model takes a checkpoint folder holding config.json, *.safetensors and tokenizer.json`);
  const configFile = path.join(abs, 'config.json');
  const config = readJsonFile(configFile, 'a Hugging Face checkpoint folder needs its config.json');
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new EngineError('MODEL', `${configFile}: expected a JSON object with the model's hyperparameters`);
  }

  const files: string[] = [];
  const indexFile = path.join(abs, 'model.safetensors.index.json');
  const single = path.join(abs, 'model.safetensors');
  let weightMap: Record<string, string> | undefined;
  if (fs.existsSync(single)) {
    files.push(single);
  } else if (fs.existsSync(indexFile)) {
    const index = readJsonFile(indexFile, 'the shard index is needed to find the weights');
    const wm = typeof index === 'object' && index !== null && !Array.isArray(index) ? own(index as Record<string, unknown>, 'weight_map') : undefined;
    if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
      throw new EngineError('MODEL', `${indexFile}: has no "weight_map" object; re-download the checkpoint`);
    }
    weightMap = wm as Record<string, string>;
    if (Object.keys(weightMap).length === 0) throw new EngineError('MODEL', `${indexFile}: "weight_map" lists no tensors; re-download the checkpoint`);
    for (const f of new Set(Object.values(weightMap))) files.push(path.join(abs, checkShardName(indexFile, f)));
  } else {
    const others = fs.readdirSync(abs).filter((f) => f.endsWith('.bin') || f.endsWith('.pt') || f.endsWith('.gguf'));
    const hint = others.length ? ` (found ${others.join(', ')}: convert it to safetensors, e.g. save_pretrained(safe_serialization=True))` : '';
    throw new EngineError('MODEL', `${abs}: no model.safetensors or model.safetensors.index.json${hint}`);
  }

  const tensors = new Map<string, TensorEntry>();
  for (const f of files) {
    const h = readSafetensorsHeader(f);
    for (const t of h.tensors) {
      const listed = weightMap ? own(weightMap, t.name) : undefined;
      if (listed !== undefined && path.join(abs, listed) !== f) continue;
      tensors.set(t.name, t);
    }
  }
  if (weightMap) {
    for (const [name, f] of Object.entries(weightMap)) {
      if (!tensors.has(name)) throw new EngineError('MODEL', `${path.join(abs, f)}: tensor ${name} listed in the shard index is missing from the shard`);
    }
  }
  return { dir: abs, config: config as Record<string, unknown>, tensors };
}

/** Looks up a required tensor, checks its shape, and returns a lazy float32 loader. */
export function requireTensor(ck: Checkpoint, name: string, shape: number[]) {
  const t = ck.tensors.get(name);
  if (!t) throw new EngineError('MODEL', `${ck.dir}: required tensor ${name} is missing from the weights; the checkpoint is incomplete or of another architecture`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new EngineError('MODEL', `${t.file}: tensor ${name} has shape [${t.shape.join(',')}] but config.json implies [${shape.join(',')}]; config.json and the weights disagree`);
  }
  return t;
}

export { readTensorF32 };
