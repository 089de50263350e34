// Model sources: a checkpoint folder, or a Hugging Face Hub id `org/name[@revision]` resolved to a
// snapshot folder of the Hugging Face cache (./hfCache.ts), downloading what is missing with
// @huggingface/hub. Model.open still takes a folder; the CLI and the engine process call
// resolveModelSource first.
//
// Order, as huggingface_hub with the cache first: a cached snapshot that holds a loadable checkpoint
// is used as is (no network); otherwise, unless HF_HUB_OFFLINE is set, the revision's commit and
// file list come from the Hub (modelInfo, pathsInfo) and only the files AttnScope reads are fetched
// into the cache: config.json, tokenizer.json, the optional generation_config.json,
// tokenizer_config.json, special_tokens_map.json, and model.safetensors or the shard index and its
// shards. A download goes to blobs/<etag>.incomplete and is continued with a Range request next
// time; a finished blob is checked against its etag (sha256 for LFS files, git blob sha1 for the
// others) before it is renamed into place, so a corrupted transfer never becomes a model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { downloadFile, modelInfo, pathsInfo, type PathInfo } from '@huggingface/hub';
import { EngineError } from '../errors';
import { formatBytes } from '../memoryEstimate';
import {
  blobPath, checkSnapshot, COMMIT_RE, findCachedSnapshot, hubCacheDir, linkSnapshotFile, markMissing, normalizeEtag,
  repoCacheDir, snapshotDir, writeRef, type SnapshotCheck,
} from './hfCache';

export interface HubModelId {
  /** org/name */
  id: string;
  /** branch, tag or commit hash; "main" when the spec names none */
  revision: string;
}

/** A repository name part: what the Hub accepts (letters, digits, - _ .; no leading/trailing - or ., no -- or ..). */
const NAME_PART = /^(?![-.])(?!.*(?:--|\.\.))[A-Za-z0-9._-]{1,96}(?<![-.])$/;
/** A revision: a branch, tag (may contain /, e.g. refs/pr/1) or commit; no .. segment, no leading / or -. */
const REVISION = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,199}(?<!\/)$/;

/** `org/name[@revision]` → id and revision; undefined when the text is not shaped like a Hub id. */
export function parseHubId(spec: string): HubModelId | undefined {
  const at = spec.indexOf('@');
  const id = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? 'main' : spec.slice(at + 1);
  const parts = id.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME_PART.test(p))) return undefined;
  if (!REVISION.test(revision)) return undefined;
  return { id, revision };
}

/** Why a text is not a Hub id (for input boxes), or undefined when it is one. */
export function hubIdProblem(spec: string): string | undefined {
  const s = spec.trim();
  if (!s) return 'Type a model id, e.g. HuggingFaceTB/SmolLM2-135M';
  const at = s.indexOf('@');
  const id = at < 0 ? s : s.slice(0, at);
  if (id.split('/').length !== 2) return 'An id is org/name, e.g. HuggingFaceTB/SmolLM2-135M (optionally @revision)';
  if (!id.split('/').every((p) => NAME_PART.test(p))) return 'org and name use letters, digits, - _ . (no leading or trailing - or ., no -- or ..)';
  if (at >= 0 && !REVISION.test(s.slice(at + 1))) return 'The revision after @ is a branch, tag or commit hash (letters, digits, - _ . /)';
  return undefined;
}

/** The settings huggingface_hub reads from the environment, read the same way. */
export interface HubEnvironment {
  endpoint: string;
  token: string | undefined;
  /** where the token came from, for messages */
  tokenSource: string | undefined;
  offline: boolean;
  cacheDir: string;
}

function hfHome(env: NodeJS.ProcessEnv): string {
  return env['HF_HOME'] || path.join(env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'huggingface');
}

export function hubEnvironment(env: NodeJS.ProcessEnv = process.env): HubEnvironment {
  let token = (env['HF_TOKEN'] ?? env['HUGGING_FACE_HUB_TOKEN'])?.trim() || undefined;
  let tokenSource = token ? (env['HF_TOKEN']?.trim() ? 'HF_TOKEN' : 'HUGGING_FACE_HUB_TOKEN') : undefined;
  if (!token) {
    // The file `huggingface-cli login` (`hf auth login`) writes.
    const file = env['HF_TOKEN_PATH'] || path.join(hfHome(env), 'token');
    try {
      token = fs.readFileSync(file, 'utf8').trim() || undefined;
      tokenSource = token ? file : undefined;
    } catch {
      token = undefined;
    }
  }
  return {
    endpoint: (env['HF_ENDPOINT'] || 'https://huggingface.co').replace(/\/+$/, ''),
    token,
    tokenSource,
    offline: /^(1|on|yes|true)$/i.test(env['HF_HUB_OFFLINE']?.trim() ?? ''),
    cacheDir: hubCacheDir(),
  };
}

/** Download progress: bytes of the files still to fetch (what the cache already holds is not counted). */
export interface SourceProgress {
  id: string;
  /** the file being fetched */
  file: string;
  doneBytes: number;
  totalBytes: number;
}

export interface ResolveOptions {
  onProgress?: (p: SourceProgress) => void;
  signal?: AbortSignal;
}

export interface ResolvedSource {
  /** a checkpoint folder for Model.open */
  dir: string;
  /** set when the spec was a Hub id */
  hub?: HubModelId & { commit: string; downloaded: boolean };
}

/** One line for a progress report: "org/name: 12 MB of 270 MB (model.safetensors)". */
export function formatProgress(p: SourceProgress): string {
  const pct = p.totalBytes > 0 ? ` ${Math.floor((100 * p.doneBytes) / p.totalBytes)}%` : '';
  return `downloading ${p.id}:${pct} ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)} (${p.file})`;
}

/**
 * A model source as a checkpoint folder: an existing path is a folder; a text shaped like
 * `org/name[@revision]` is a Hub id, found in the Hugging Face cache or downloaded into it; anything
 * else is returned as a folder for Model.open to report.
 */
export async function resolveModelSource(spec: string, opts: ResolveOptions = {}): Promise<ResolvedSource> {
  const s = spec.trim();
  if (!s) throw new EngineError('MODEL', 'no model given; name a checkpoint folder or a Hugging Face model id (org/name)');
  if (fs.existsSync(s)) return { dir: path.resolve(s) };
  const hub = parseHubId(s);
  if (!hub) return { dir: path.resolve(s) };
  return resolveHubModel(hub, hubEnvironment(), opts);
}

function label(h: HubModelId): string {
  return h.revision === 'main' ? h.id : `${h.id}@${h.revision}`;
}

function snapshotProblem(h: HubModelId, dir: string, check: SnapshotCheck, why: string): EngineError {
  if (check.missing.includes('model.safetensors') && check.otherWeights.length) return noSafetensors(h, check.otherWeights);
  return new EngineError('MODEL', `${label(h)}: the cached snapshot ${dir} lacks ${check.missing.join(', ')}; ${why}`);
}

function noSafetensors(h: HubModelId, others: string[]): EngineError {
  return new EngineError('MODEL', `${label(h)} has no safetensors weights (only ${others.join(', ')}); AttnScope reads safetensors only: choose a repository or revision with model.safetensors`);
}

export async function resolveHubModel(h: HubModelId, env: HubEnvironment, opts: ResolveOptions = {}): Promise<ResolvedSource> {
  const cached = findCachedSnapshot(env.cacheDir, h.id, h.revision);
  if (cached && cached.check.missing.length === 0) return { dir: cached.dir, hub: { ...h, commit: cached.commit, downloaded: false } };
  if (env.offline) {
    if (cached) throw snapshotProblem(h, cached.dir, cached.check, 'unset HF_HUB_OFFLINE to download the rest');
    throw new EngineError('MODEL', `${label(h)} is not in the Hugging Face cache (${env.cacheDir}) and HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE to download it, or name a checkpoint folder`);
  }
  return download(h, env, opts);
}

const OPTIONAL_FILES = ['generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json'];
const OTHER_WEIGHTS = /^[^/]+\.(bin|pt|pth|ckpt|gguf|h5|msgpack)$/;
const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

async function download(h: HubModelId, env: HubEnvironment, opts: ResolveOptions): Promise<ResolvedSource> {
  const http = new HubHttp(env, h, opts.signal);
  const common = { hubUrl: env.endpoint, fetch: http.fetch };
  const info = await http.call('model info', () => modelInfo({ ...common, name: h.id, revision: h.revision, additionalFields: ['sha', 'filePaths'] }));
  const commit = info.sha;
  if (typeof commit !== 'string' || !COMMIT_RE.test(commit)) throw new EngineError('MODEL', `${label(h)}: ${env.endpoint} gave no commit hash for this revision; check HF_ENDPOINT`);
  const files = new Set((info.filePaths ?? []).filter((f) => !f.includes('/')));
  if (!files.has('config.json')) throw new EngineError('MODEL', `${label(h)} has no config.json; it is not a transformers checkpoint`);
  if (!files.has('model.safetensors') && !files.has('model.safetensors.index.json')) {
    const others = [...files].filter((f) => OTHER_WEIGHTS.test(f));
    if (others.length) throw noSafetensors(h, others);
    throw new EngineError('MODEL', `${label(h)} has no model.safetensors or model.safetensors.index.json`);
  }
  if (!files.has('tokenizer.json')) throw new EngineError('MODEL', `${label(h)} has no tokenizer.json; AttnScope needs the fast tokenizer file (save_pretrained of a fast tokenizer writes it)`);
  if (info.gated && !env.token) throw http.gated(false);

  const repo = repoCacheDir(env.cacheDir, h.id);
  writeRef(repo, h.revision, commit);
  const small = ['config.json', 'tokenizer.json', ...OPTIONAL_FILES, ...(files.has('model.safetensors') ? [] : ['model.safetensors.index.json'])].filter((f) => files.has(f));
  for (const f of OPTIONAL_FILES) if (!files.has(f)) markMissing(repo, commit, f);
  const candidates = files.has('model.safetensors') ? ['model.safetensors'] : [...files].filter((f) => f.endsWith('.safetensors'));
  const infos = await http.call('file list', () => pathsInfo({ ...common, repo: { type: 'model', name: h.id }, paths: [...small, ...candidates], revision: commit }));
  const byPath = new Map(infos.map((p) => [p.path, p]));
  const fetcher = new BlobFetcher(h, env, http, repo, commit, opts);
  for (const f of small) await fetcher.fetch(f, requireInfo(h, byPath, f));

  let weights = candidates;
  if (!files.has('model.safetensors')) {
    const indexFile = path.join(snapshotDir(repo, commit), 'model.safetensors.index.json');
    let shards: string[];
    try {
      const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, unknown> };
      shards = [...new Set(Object.values(index.weight_map ?? {}))].filter((s): s is string => typeof s === 'string');
    } catch {
      throw new EngineError('MODEL', `${label(h)}: model.safetensors.index.json is not valid JSON; the repository's shard index is broken`);
    }
    const bad = shards.find((s) => !SAFE_FILE.test(s));
    if (bad !== undefined || shards.length === 0) throw new EngineError('MODEL', `${label(h)}: model.safetensors.index.json names ${bad === undefined ? 'no shards' : `an invalid shard ${JSON.stringify(bad)}`}`);
    const absent = shards.find((s) => !files.has(s));
    if (absent) throw new EngineError('MODEL', `${label(h)}: the shard index names ${absent}, which the repository does not have`);
    weights = shards;
  }
  fetcher.plan(weights.map((f) => requireInfo(h, byPath, f)));
  for (const f of weights) await fetcher.fetch(f, requireInfo(h, byPath, f));

  const dir = snapshotDir(repo, commit);
  const check = checkSnapshot(dir);
  if (check.missing.length) throw snapshotProblem(h, dir, check, 'run again to download it');
  return { dir, hub: { ...h, commit, downloaded: fetcher.downloaded } };
}

function requireInfo(h: HubModelId, byPath: Map<string, PathInfo>, f: string): PathInfo {
  const p = byPath.get(f);
  if (!p) throw new EngineError('MODEL', `${label(h)}: the Hub lists ${f} but gives no details for it; try again`);
  return p;
}

/** etag and size of a file as huggingface_hub names its blob: the LFS sha256, else the git blob sha1. */
function blobId(p: PathInfo): { etag: string; size: number } {
  const etag = normalizeEtag(p.lfs?.oid ?? p.oid ?? '');
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(etag)) throw new EngineError('MODEL', `${p.path}: the Hub gave no usable hash (etag ${JSON.stringify(etag)}); check HF_ENDPOINT`);
  return { etag, size: p.lfs?.size ?? p.size };
}

/** Fetches blobs into the cache (resuming .incomplete files) and links them into the snapshot. */
class BlobFetcher {
  downloaded = false;
  private done = 0;
  private total = 0;
  private lastReport = -1;

  constructor(
    private readonly h: HubModelId,
    private readonly env: HubEnvironment,
    private readonly http: HubHttp,
    private readonly repo: string,
    private readonly commit: string,
    private readonly opts: ResolveOptions,
  ) {}

  /** the files progress counts: the weights (the small files before them are not reported) */
  private readonly planned = new Set<string>();
  private counting = false;

  /** Counts the bytes still to fetch for these files (the progress total). */
  plan(files: PathInfo[]): void {
    for (const p of files) {
      const { etag, size } = blobId(p);
      this.planned.add(p.path);
      if (!this.present(p.path, etag)) this.total += size;
    }
  }

  private present(file: string, etag: string): boolean {
    return fs.existsSync(path.join(snapshotDir(this.repo, this.commit), file)) || fs.existsSync(blobPath(this.repo, etag));
  }

  private count(bytes: number): void {
    if (this.counting) this.done += bytes;
  }

  private report(file: string, force = false): void {
    if (!this.opts.onProgress || this.total === 0 || !this.counting) return;
    // At most one report per percent: progress crosses a process boundary.
    const pct = Math.floor((100 * this.done) / this.total);
    if (!force && pct === this.lastReport) return;
    this.lastReport = pct;
    this.opts.onProgress({ id: label(this.h), file, doneBytes: this.done, totalBytes: this.total });
  }

  async fetch(file: string, p: PathInfo): Promise<void> {
    const { etag, size } = blobId(p);
    const link = path.join(snapshotDir(this.repo, this.commit), file);
    if (fs.existsSync(link)) return;
    const blob = blobPath(this.repo, etag);
    if (!fs.existsSync(blob)) {
      this.counting = this.planned.has(file);
      await this.download(file, etag, size, blob);
      this.downloaded = true;
    }
    linkSnapshotFile(this.repo, this.commit, file, etag);
  }

  private async download(file: string, etag: string, size: number, blob: string): Promise<void> {
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    const part = `${blob}.incomplete`;
    const url = `${this.env.endpoint}/${this.h.id}/resolve/${encodeURIComponent(this.commit)}/${file}`;
    const remote = await downloadFile({ repo: { type: 'model', name: this.h.id }, path: file, fetch: this.http.fetch, xet: false, downloadInfo: { url, size, etag } });
    if (!remote) throw new EngineError('MODEL', `${label(this.h)}: ${file} is listed but cannot be downloaded`);
    for (let attempt = 0; ; attempt++) {
      let offset = fs.existsSync(part) ? fs.statSync(part).size : 0;
      if (offset > size) {
        fs.truncateSync(part, 0);
        offset = 0;
      }
      const hash = await hashPrefix(part, etag, size, offset);
      this.count(offset);
      this.report(file, true);
      this.http.rangeIgnored = false;
      this.http.failure = undefined;
      try {
        if (offset < size) await this.append(file, part, remote.slice(offset), hash);
      } catch (e) {
        if (this.http.rangeIgnored && attempt === 0) {
          // The server sent the whole file to a Range request: start this file over.
          this.count(-fs.statSync(part).size);
          fs.truncateSync(part, 0);
          continue;
        }
        throw this.http.explain(e, file);
      }
      const got = fs.statSync(part).size;
      const digest = hash?.digest('hex');
      if (got !== size || (digest !== undefined && digest !== etag)) {
        fs.rmSync(part, { force: true });
        throw new EngineError('MODEL', `${label(this.h)}: the download of ${file} is corrupt (${got !== size ? `${got} bytes, expected ${size}` : `checksum ${digest} ≠ ${etag}`}); it was deleted, run again to download it anew`);
      }
      fs.renameSync(part, blob);
      this.report(file, true);
      return;
    }
  }

  private async append(file: string, part: string, remote: Blob, hash: Hash | undefined): Promise<void> {
    const fh = await fs.promises.open(part, 'a');
    try {
      const reader = remote.stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await fh.write(value);
        hash?.update(value);
        this.count(value.byteLength);
        this.report(file);
      }
    } finally {
      await fh.close();
    }
  }
}

/** A hash of the blob's first `offset` bytes already on disk (git blob sha1 or sha256, by the etag's length). */
async function hashPrefix(part: string, etag: string, size: number, offset: number): Promise<Hash | undefined> {
  const hash = etag.length === 64 ? createHash('sha256') : etag.length === 40 ? createHash('sha1').update(`blob ${size}\0`) : undefined;
  if (hash && offset > 0) {
    for await (const chunk of fs.createReadStream(part, { start: 0, end: offset - 1 })) hash.update(chunk as Buffer);
  }
  return hash;
}

/**
 * The fetch @huggingface/hub calls through: adds the token (the library refuses tokens that do not
 * start with hf_, which mirrors may issue), the abort signal, and turns failures into one-line
 * EngineErrors by X-Error-Code, keeping the last one (a failed download surfaces inside a stream).
 */
class HubHttp {
  failure: EngineError | undefined;
  rangeIgnored = false;

  constructor(
    private readonly env: HubEnvironment,
    private readonly h: HubModelId,
    private readonly signal: AbortSignal | undefined,
  ) {}

  private cancelled(): EngineError {
    return new EngineError('CANCELLED', `download of ${label(this.h)} cancelled; what was downloaded is kept and continued next time`);
  }

  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (this.signal?.aborted) throw (this.failure = this.cancelled());
    const headers = new Headers(init.headers);
    if (this.env.token) headers.set('Authorization', `Bearer ${this.env.token}`);
    let resp: Response;
    try {
      resp = await fetch(input, { ...init, headers, signal: this.signal });
    } catch (e) {
      throw (this.failure = this.signal?.aborted ? this.cancelled() : this.unreachable(e));
    }
    if (!resp.ok) {
      await resp.body?.cancel().catch(() => undefined);
      throw (this.failure = this.classify(resp));
    }
    const range = /^bytes=(\d+)-/.exec(headers.get('Range') ?? '');
    if (range && Number(range[1]) > 0 && resp.status !== 206) {
      await resp.body?.cancel().catch(() => undefined);
      this.rangeIgnored = true;
      throw new Error('the server ignored the Range request');
    }
    return resp;
  };

  /** Runs a library call; its failures come out as the one-line error the fetch recorded. */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.failure = undefined;
    try {
      return await fn();
    } catch (e) {
      throw this.failure ?? new EngineError('MODEL', `${label(this.h)}: unexpected answer from ${this.env.endpoint} for the ${what} (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }

  /** A failure while streaming a file: the recorded HTTP failure, a cancellation or an interruption. */
  explain(e: unknown, file: string): EngineError {
    if (this.signal?.aborted) return this.cancelled();
    if (this.failure) return this.failure;
    if (e instanceof EngineError) return e;
    return new EngineError('MODEL', `download of ${file} from ${this.env.endpoint} was interrupted (${causeOf(e)}); run again to continue it`);
  }

  private unreachable(e: unknown): EngineError {
    return new EngineError('MODEL', `cannot reach the Hugging Face Hub at ${this.env.endpoint} (${causeOf(e)}); check the network connection or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only models already in the cache`);
  }

  gated(withToken: boolean): EngineError {
    const page = `${this.env.endpoint}/${this.h.id}`;
    return withToken
      ? new EngineError('MODEL', `${this.h.id} is a gated model and the token from ${this.env.tokenSource} has no access yet; request access on ${page}`)
      : new EngineError('MODEL', `${this.h.id} is a gated model: accept its terms on ${page}, then set HF_TOKEN or run huggingface-cli login`);
  }

  private classify(resp: Response): EngineError {
    const code = resp.headers.get('X-Error-Code');
    const status = resp.status;
    const e = this.env;
    const what = new URL(resp.url || e.endpoint).pathname;
    switch (code) {
      case 'RepoNotFound':
        return new EngineError('MODEL', `${this.h.id}: not found (no model repository of that name on ${e.endpoint}${e.token ? ` that the token from ${e.tokenSource} can read` : '; a private one needs HF_TOKEN or huggingface-cli login'}, and no folder of that name)`);
      case 'RevisionNotFound':
        return new EngineError('MODEL', `${this.h.id}: revision "${this.h.revision}" not found; use a branch, a tag or a full commit hash`);
      case 'GatedRepo':
        return this.gated(!!e.token);
      case 'EntryNotFound':
        return new EngineError('MODEL', `${label(this.h)}: ${decodeURIComponent(what.split('/').pop() ?? '')} not found in the repository`);
    }
    if (status === 401 && e.token) return new EngineError('MODEL', `${e.endpoint} refused the token from ${e.tokenSource} (401); check it or run huggingface-cli login again`);
    if (status === 401 || status === 404) return new EngineError('MODEL', `${this.h.id}: not found (${e.endpoint} answered ${status} for ${what}, and there is no folder of that name)`);
    if (status === 403) return new EngineError('MODEL', `${this.h.id}: access denied by ${e.endpoint} (403)`);
    if (status === 429) return new EngineError('MODEL', `${e.endpoint} is limiting requests (429); wait a minute and run again${e.token ? '' : ' (logged-in users get higher limits: HF_TOKEN)'}`);
    if (status >= 500) return new EngineError('MODEL', `the Hugging Face Hub at ${e.endpoint} answered ${status} for ${what}; try again later`);
    return new EngineError('MODEL', `${e.endpoint} answered ${status} for ${what}`);
  }
}

function causeOf(e: unknown): string {
  const c = (e as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (c && typeof c.code === 'string') return c.code;
  if (c && typeof c.message === 'string') return c.message;
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}
