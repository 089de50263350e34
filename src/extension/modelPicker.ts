// Select Model's quick pick: the default model, the models in the Hugging Face cache (size on disk,
// model_type, whether AttnScope can open them), recent models, "Download from Hugging Face…" (an
// org/name[@revision] id) and "Browse…" (a checkpoint folder). It only chooses; the caller opens the
// choice in the engine (which downloads a Hub id) before writing the setting.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError } from '../engine/errors';
import { formatBytes } from '../engine/memoryEstimate';
import { hubCacheDir, listCachedModels, type CachedModel } from '../engine/sources/hfCache';
import { hubIdProblem } from '../engine/sources/hub';

const RECENT_KEY = 'attnscope.recentModels';
const RECENT_MAX = 8;

type Item = vscode.QuickPickItem & { spec?: string; action?: 'download' | 'browse' };

/** The recent models (specs as written in the setting), newest first. */
export function recentModels(ctx: vscode.ExtensionContext): string[] {
  const v = ctx.globalState.get<unknown>(RECENT_KEY);
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : [];
}

/** Puts a model that opened at the top of the recent list. */
export async function rememberModel(ctx: vscode.ExtensionContext, spec: string): Promise<void> {
  if (!spec) return;
  await ctx.globalState.update(RECENT_KEY, [spec, ...recentModels(ctx).filter((s) => s !== spec)].slice(0, RECENT_MAX));
}

function cachedItem(m: CachedModel, current: string): Item {
  return {
    label: `${m.unsupported ? '$(warning)' : '$(database)'} ${m.spec}`,
    description: [m.spec === current ? 'current' : '', formatBytes(m.sizeOnDisk), m.modelType ?? 'no model_type'].filter(Boolean).join(' · '),
    detail: m.unsupported ? `Not supported: ${m.unsupported}` : 'Supported',
    spec: m.spec,
  };
}

async function items(ctx: vscode.ExtensionContext, current: string): Promise<Item[]> {
  const cached = await listCachedModels();
  const out: Item[] = [];
  if (current && !cached.some((m) => m.spec === current)) out.push({ label: `$(check) ${current}`, description: 'current', spec: current });
  out.push({ label: '$(package) Default model', description: current ? 'embedded, works offline' : 'current · embedded, works offline', spec: '' });
  out.push({ label: `Hugging Face cache (${hubCacheDir()})`, kind: vscode.QuickPickItemKind.Separator });
  if (cached.length) out.push(...cached.map((m) => cachedItem(m, current)));
  else out.push({ label: '$(info) No models in the cache yet', description: 'download one below', spec: undefined, action: 'download' });
  const recent = recentModels(ctx).filter((s) => s !== current && !cached.some((m) => m.spec === s));
  if (recent.length) {
    out.push({ label: 'Recent', kind: vscode.QuickPickItemKind.Separator });
    out.push(...recent.map((s) => ({ label: `$(history) ${s}`, description: fs.existsSync(s) ? 'folder' : 'Hugging Face id', spec: s })));
  }
  out.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  out.push({ label: '$(cloud-download) Download from Hugging Face…', description: 'org/name[@revision], into the Hugging Face cache', action: 'download' });
  out.push({ label: '$(folder-opened) Browse…', description: 'a checkpoint folder: config.json + *.safetensors + tokenizer.json', action: 'browse' });
  return out;
}

/**
 * Asks which model to use. Returns the spec to open and write to attnscope.model ('' = the default
 * model, a folder path, or a Hub id), or undefined when the user backed out.
 */
export async function pickModel(ctx: vscode.ExtensionContext, current: string): Promise<string | undefined> {
  const pick = await vscode.window.showQuickPick(items(ctx, current), {
    title: 'AttnScope: Select Model',
    placeHolder: 'A model from the Hugging Face cache, a recent one, a Hub id to download, or a folder',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!pick) return undefined;
  if (pick.action === 'download') {
    const id = await vscode.window.showInputBox({
      title: 'Download from Hugging Face',
      prompt: 'Model id org/name, optionally @branch, @tag or @commit. Public models need no token; gated or private ones need HF_TOKEN or huggingface-cli login.',
      placeHolder: 'HuggingFaceTB/SmolLM2-135M',
      validateInput: (v) => hubIdProblem(v),
    });
    return id === undefined ? undefined : id.trim();
  }
  if (pick.action === 'browse') {
    const uris = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use this checkpoint' });
    if (!uris?.[0]) return undefined;
    const dir = uris[0].fsPath;
    if (!fs.existsSync(path.join(dir, 'config.json'))) throw new EngineError('MODEL', `${dir}: no config.json; choose a Hugging Face checkpoint folder`);
    return dir;
  }
  return pick.spec;
}
