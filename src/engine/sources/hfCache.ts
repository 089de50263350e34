// The Hugging Face cache, in the layout huggingface_hub, transformers and @huggingface/hub share
// (https://huggingface.co/docs/hub/local-cache), so a model transformers downloaded is found here
// and what AttnScope downloads is read by transformers offline:
//   <cache>/models--<org>--<name>/
//     blobs/<etag>                 file contents, named by etag: sha256 for LFS files, git blob sha1 otherwise
//     blobs/<etag>.incomplete      a download in progress (continued with a Range request)
//     refs/<revision>              the commit hash a branch or tag pointed to when it was resolved
//     snapshots/<commit>/<file>    relative symlinks into ../../blobs/
//     .no_exist/<commit>/<file>    empty markers for optional files the repository does not have
// The cache root and folder names come from @huggingface/hub; this file adds what it lacks: reading
// refs, checking that a snapshot holds a loadable checkpoint, linking blobs, listing models.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getHFHubCachePath, getRepoFolderName, scanCacheDir } from '@huggingface/hub';
import { SUPPORTED_ARCHS } from '../spec';

/** The hub cache root: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (as huggingface_hub). */
export function hubCacheDir(): string {
  return getHFHubCachePath();
}

/** `<cache>/models--org--name` */
export function repoCacheDir(cacheDir: string, id: string): string {
  return path.join(cacheDir, getRepoFolderName({ type: 'model', name: id }));
}

export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** The commit a revision names in the cache: itself when it is a commit hash, else refs/<revision>. */
export function cachedCommit(repoDir: string, revision: string): string | undefined {
  if (COMMIT_RE.test(revision)) return revision;
  try {
    const c = fs.readFileSync(path.join(repoDir, 'refs', revision), 'utf8').trim();
    return COMMIT_RE.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Writes refs/<revision> (exactly the commit hash, no newline, as huggingface_hub does). */
export function writeRef(repoDir: string, revision: string, commit: string): void {
  // An empty refs/ folder also lets @huggingface/hub's scanCachedRepo list repositories fetched by commit.
  fs.mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
  if (revision === commit) return;
  const ref = path.join(repoDir, 'refs', revision);
  fs.mkdirSync(path.dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, commit);
  fs.renameSync(tmp, ref);
}

export function snapshotDir(repoDir: string, commit: string): string {
  return path.join(repoDir, 'snapshots', commit);
}

export function blobPath(repoDir: string, etag: string): string {
  return path.join(repoDir, 'blobs', etag);
}

/** An HTTP ETag as a file name, as huggingface_hub's _normalize_etag: no W/ prefix, no quotes. */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"+|"+$/g, '');
}

/** Points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink (a copy where symlinks are refused). */
export function linkSnapshotFile(repoDir: string, commit: string, file: string, etag: string): string {
  const link = path.join(snapshotDir(repoDir, commit), file);
  const blob = blobPath(repoDir, etag);
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.rmSync(link, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(link), blob), link);
  } catch {
    fs.copyFileSync(blob, link); // Windows without developer mode, as huggingface_hub does
  }
  return link;
}

/** Records that an optional file does not exist at this commit (huggingface_hub's .no_exist markers). */
export function markMissing(repoDir: string, commit: string, file: string): void {
  const marker = path.join(repoDir, '.no_exist', commit, file);
  fs.mkdirSync(path.dirname(marker), { recursive: true });
  fs.writeFileSync(marker, '');
}

/** What a checkpoint folder has of what AttnScope needs to open it. */
export interface SnapshotCheck {
  /** required files that are absent (config.json, tokenizer.json, weights, shards) */
  missing: string[];
  /** weights in formats AttnScope does not read, when there are no safetensors */
  otherWeights: string[];
}

const OTHER_WEIGHTS = /\.(bin|pt|pth|ckpt|gguf|h5|msgpack)$/;

/** Checks a folder (a cache snapshot) for config.json, tokenizer.json and complete safetensors weights. */
export function checkSnapshot(dir: string): SnapshotCheck {
  const has = (f: string) => fs.existsSync(path.join(dir, f)); // follows symlinks: a dangling link is missing
  const missing = ['config.json', 'tokenizer.json'].filter((f) => !has(f));
  let otherWeights: string[] = [];
  if (!has('model.safetensors')) {
    if (has('model.safetensors.index.json')) {
      try {
        const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map?: Record<string, unknown> };
        const shards = new Set(Object.values(index.weight_map ?? {}).filter((s): s is string => typeof s === 'string'));
        if (shards.size === 0) missing.push('model.safetensors.index.json (no weight_map)');
        for (const s of shards) if (!has(s)) missing.push(s);
      } catch {
        missing.push('model.safetensors.index.json (unreadable)');
      }
    } else {
      missing.push('model.safetensors');
      try {
        otherWeights = fs.readdirSync(dir).filter((f) => OTHER_WEIGHTS.test(f));
      } catch {
        otherWeights = [];
      }
    }
  }
  return { missing, otherWeights };
}

/** A snapshot in the cache for id@revision, with what it lacks; undefined when none is cached. */
export function findCachedSnapshot(cacheDir: string, id: string, revision: string): { dir: string; commit: string; check: SnapshotCheck } | undefined {
  const repo = repoCacheDir(cacheDir, id);
  const commit = cachedCommit(repo, revision);
  if (!commit) return undefined;
  const dir = snapshotDir(repo, commit);
  if (!fs.existsSync(dir)) return undefined;
  return { dir, commit, check: checkSnapshot(dir) };
}

/** `org/name` for a folder inside a cache snapshot (…/models--org--name/snapshots/<commit>), else undefined. */
export function hubIdFromSnapshotDir(dir: string): string | undefined {
  const parts = path.resolve(dir).split(path.sep);
  const i = parts.lastIndexOf('snapshots');
  if (i < 1 || i !== parts.length - 2) return undefined;
  const repo = parts[i - 1]!;
  if (!repo.startsWith('models--')) return undefined;
  return repo.slice('models--'.length).split('--').join('/');
}

/** A model found in the cache (for the model picker). */
export interface CachedModel {
  /** org/name, with @revision when the snapshot is not what main points to */
  spec: string;
  id: string;
  commit: string;
  /** the snapshot folder (a checkpoint folder) */
  dir: string;
  /** bytes of every blob the repository holds in the cache */
  sizeOnDisk: number;
  /** config.json model_type, when readable */
  modelType?: string;
  /** null when AttnScope can open it, else why not (one short phrase) */
  unsupported: string | null;
}

/** Why AttnScope cannot open a snapshot (short phrase), or null when it can as far as files and model_type tell. */
export function unsupportedReason(modelType: string | undefined, check: SnapshotCheck): string | null {
  if (check.missing.includes('model.safetensors') && check.otherWeights.length) return `no safetensors (${check.otherWeights.join(', ')})`;
  if (check.missing.length) return `incomplete: no ${check.missing.join(', ')}`;
  if (modelType === undefined) return 'config.json has no model_type';
  if (!SUPPORTED_ARCHS.includes(modelType)) return `model_type ${modelType} is not supported`;
  return null;
}

/** The models in the hub cache, one entry per repository (its main snapshot, else its newest). */
export async function listCachedModels(cacheDir = hubCacheDir()): Promise<CachedModel[]> {
  if (!fs.existsSync(cacheDir)) return [];
  let info: Awaited<ReturnType<typeof scanCacheDir>>;
  try {
    info = await scanCacheDir(cacheDir);
  } catch {
    return [];
  }
  const out: CachedModel[] = [];
  for (const repo of info.repos) {
    if (repo.id.type !== 'model' || repo.revisions.length === 0) continue;
    const main = repo.revisions.find((r) => r.refs.includes('main'));
    const rev = main ?? [...repo.revisions].sort((a, b) => b.lastModifiedAt.getTime() - a.lastModifiedAt.getTime())[0]!;
    const spec = main ? repo.id.name : `${repo.id.name}@${rev.refs[0] ?? rev.commitOid}`;
    let modelType: string | undefined;
    try {
      const mt = (JSON.parse(fs.readFileSync(path.join(rev.path, 'config.json'), 'utf8')) as { model_type?: unknown }).model_type;
      if (typeof mt === 'string') modelType = mt;
    } catch {
      modelType = undefined;
    }
    out.push({ spec, id: repo.id.name, commit: rev.commitOid, dir: rev.path, sizeOnDisk: repo.size, modelType, unsupported: unsupportedReason(modelType, checkSnapshot(rev.path)) });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
