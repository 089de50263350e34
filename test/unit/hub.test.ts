// Model sources from the Hugging Face Hub (src/engine/sources/hub.ts, hfCache.ts) against a loopback
// server that answers the requests @huggingface/hub makes as the Hub does (never the real Hub):
//   GET  /api/models/{org}/{name}/revision/{rev}?expand=sha&expand=siblings…   (modelInfo)
//   POST /api/models/{org}/{name}/paths-info/{commit}  {"paths":[…]}           (pathsInfo: oid, size, lfs.oid)
//   GET  /{org}/{name}/resolve/{commit}/{file}  [Range: bytes=a-b → 206]       (downloadFile / WebBlob)
// with X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo as the Hub sends them.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { makeTinyCheckpoint, tinyVariant } from '../fixtures/tinyModels';
import { resolveModelSource, parseHubId, hubIdProblem, formatProgress, type SourceProgress } from '../../src/engine/sources/hub';
import { listCachedModels, hubIdFromSnapshotDir, normalizeEtag } from '../../src/engine/sources/hfCache';
import { Model } from '../../src/engine/model';
import { EngineError, isEngineError } from '../../src/engine/errors';
import { EngineHost } from '../../src/engine/worker/engineHost';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const ENGINE = path.join(ROOT, 'dist', 'engineProcess.js');
const TOKEN = 'hf_fakeTokenForTests';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const isLfs = (f: string) => /\.(safetensors|bin)$/.test(f);

interface FakeRepo {
  files: Map<string, Buffer>;
  /** branch/tag → commit */
  refs: Record<string, string>;
  gated?: boolean;
}

interface Logged {
  method: string;
  url: string;
  auth?: string;
  range?: string;
}

/** A loopback stand-in for the Hub: serves FakeRepos, logs requests, can cut or stall a download. */
class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: Logged[] = [];
  /** the next full GET of this file sends `bytes` bytes, then the connection drops */
  cut: { file: string; bytes: number } | undefined;
  /** GETs of this file send headers and the first chunk, then nothing (until the server closes) */
  stall: string | undefined;
  /** answer Range requests with the whole file (200), as a server without range support does */
  ignoreRange = false;
  private server: http.Server | undefined;
  endpoint = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.endpoint = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private error(res: http.ServerResponse, status: number, code: string | undefined, message: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json', ...(code ? { 'X-Error-Code': code } : {}) });
    res.end(JSON.stringify({ error: message }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url!, this.endpoint);
    this.log.push({ method: req.method!, url: url.pathname, auth: req.headers.authorization, range: req.headers.range });
    const p = url.pathname.split('/').map(decodeURIComponent);
    // /api/models/{org}/{name}[/revision/{rev} | /paths-info/{rev}]
    if (p[1] === 'api' && p[2] === 'models') {
      const id = `${p[3]}/${p[4]}`;
      const repo = this.repos.get(id);
      if (!repo) return this.error(res, 401, 'RepoNotFound', `Repository Not Found for url: ${url}`);
      const rev = p.slice(6).join('/') || 'main';
      const commit = repo.refs[rev] ?? (Object.values(repo.refs).includes(rev) ? rev : undefined);
      if (!commit) return this.error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      if (req.method === 'GET' && (p[5] === 'revision' || p[5] === undefined)) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return void res.end(JSON.stringify({
          _id: 'fake', id, sha: commit, private: false, gated: repo.gated ? 'manual' : false, downloads: 0, likes: 0,
          lastModified: '2024-01-01T00:00:00.000Z', pipeline_tag: 'text-generation',
          siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
        }));
      }
      if (req.method === 'POST' && p[5] === 'paths-info') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { paths: string[] };
        const out = body.paths.filter((f) => repo.files.has(f)).map((f) => {
          const b = repo.files.get(f)!;
          return { type: 'file', path: f, size: b.length, oid: gitSha1(isLfs(f) ? Buffer.from(`pointer ${sha256(b)}`) : b), ...(isLfs(f) ? { lfs: { oid: sha256(b), size: b.length, pointerSize: 134 } } : {}) };
        });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return void res.end(JSON.stringify(out));
      }
      return this.error(res, 404, undefined, 'not here');
    }
    // /{org}/{name}/resolve/{rev}/{file}
    if (p[3] === 'resolve') {
      const id = `${p[1]}/${p[2]}`;
      const repo = this.repos.get(id);
      if (!repo) return this.error(res, 401, 'RepoNotFound', 'Repository Not Found');
      const commit = repo.refs[p[4]!] ?? (Object.values(repo.refs).includes(p[4]!) ? p[4]! : undefined);
      if (!commit) return this.error(res, 404, 'RevisionNotFound', 'Invalid rev id');
      if (repo.gated && req.headers.authorization !== `Bearer ${TOKEN}`) {
        return this.error(res, req.headers.authorization ? 403 : 401, 'GatedRepo', `Access to model ${id} is restricted.`);
      }
      const file = p.slice(5).join('/');
      const b = repo.files.get(file);
      if (!b) return this.error(res, 404, 'EntryNotFound', `Entry not found: ${file}`);
      const headers: http.OutgoingHttpHeaders = { 'X-Repo-Commit': commit, 'Accept-Ranges': 'bytes', ETag: `"${isLfs(file) ? sha256(b) : gitSha1(b)}"`, 'Content-Type': 'application/octet-stream' };
      if (isLfs(file)) Object.assign(headers, { 'X-Linked-Etag': `"${sha256(b)}"`, 'X-Linked-Size': String(b.length) });
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m && !this.ignoreRange) {
        const start = Number(m[1]);
        const end = m[2] ? Math.min(Number(m[2]), b.length - 1) : b.length - 1;
        res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${b.length}`, 'Content-Length': String(end - start + 1) });
        return void res.end(b.subarray(start, end + 1));
      }
      res.writeHead(200, { ...headers, 'Content-Length': String(b.length) });
      if (this.stall === file) return void res.write(b.subarray(0, 64));
      if (this.cut?.file === file) {
        const n = this.cut.bytes;
        this.cut = undefined;
        return void res.write(b.subarray(0, n), () => res.socket?.destroy());
      }
      return void res.end(b);
    }
    this.error(res, 404, undefined, 'not here');
  }
}

function repoFromFolder(dir: string, extra: Record<string, Buffer> = {}, gated = false, commitSeed = dir): FakeRepo {
  const files = new Map<string, Buffer>();
  for (const f of fs.readdirSync(dir)) files.set(f, fs.readFileSync(path.join(dir, f)));
  for (const [f, b] of Object.entries(extra)) files.set(f, b);
  const commit = createHash('sha1').update(commitSeed).digest('hex');
  return { files, refs: { main: commit, v1: commit }, gated };
}

let tmp: string;
let hub: FakeHub;
let gpt2Dir: string;
let shardedDir: string;
let cacheDir: string;
const ENV_KEYS = ['HF_ENDPOINT', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'XDG_CACHE_HOME'];
const savedEnv: Record<string, string | undefined> = {};

function setEnv(vars: Record<string, string | undefined>): void {
  for (const k of ENV_KEYS) delete process.env[k];
  // HF_HOME points into the test folder so no real token file is ever read.
  Object.assign(process.env, { HF_HOME: path.join(tmp, 'hf-home-empty'), HF_HUB_CACHE: cacheDir, HF_ENDPOINT: hub.endpoint });
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

async function rejects(p: Promise<unknown>, re: RegExp, code: EngineError['code'] = 'MODEL'): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isEngineError(e), `an EngineError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.match(e.message, re);
    return e.message;
  }
  assert.fail(`expected an error matching ${re}`);
}

before(async () => {
  for (const k of ENV_KEYS) savedEnv[k] = process.env[k];
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-hub-'));
  gpt2Dir = makeTinyCheckpoint(path.join(tmp, 'src-gpt2'), tinyVariant('gpt2')).dir;
  shardedDir = makeTinyCheckpoint(path.join(tmp, 'src-qwen2'), tinyVariant('qwen2-tied-sharded')).dir;
  hub = new FakeHub();
  await hub.start();
  // A big file the client must not fetch (only what AttnScope reads is downloaded).
  hub.repos.set('tiny-org/gpt2-tiny', repoFromFolder(gpt2Dir, { 'README.md': Buffer.from('# tiny\n'), 'pytorch_model.bin': Buffer.alloc(4096, 7) }));
  hub.repos.set('tiny-org/qwen2-sharded', repoFromFolder(shardedDir));
  hub.repos.set('tiny-org/gated-gpt2', repoFromFolder(gpt2Dir, {}, true, 'gated'));
  hub.repos.set('tiny-org/resume-gpt2', repoFromFolder(gpt2Dir, {}, false, 'resume'));
  hub.repos.set('tiny-org/engine-gpt2', repoFromFolder(gpt2Dir, {}, false, 'engine'));
  hub.repos.set('tiny-org/stall-gpt2', repoFromFolder(gpt2Dir, {}, false, 'stall'));
  const bin = new Map<string, Buffer>([
    ['config.json', Buffer.from('{"model_type":"gpt2"}')],
    ['tokenizer.json', fs.readFileSync(path.join(gpt2Dir, 'tokenizer.json'))],
    ['pytorch_model.bin', Buffer.alloc(100, 1)],
  ]);
  hub.repos.set('tiny-org/bin-only', { files: bin, refs: { main: 'b'.repeat(40) } });
  cacheDir = path.join(tmp, 'hf-cache');
});

afterEach(() => {
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

after(async () => {
  await hub.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('hub ids: parsing, validation messages, folder versus id', async () => {
  assert.deepEqual(parseHubId('HuggingFaceTB/SmolLM2-135M'), { id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main' });
  assert.deepEqual(parseHubId('org/name@refs/pr/1'), { id: 'org/name', revision: 'refs/pr/1' });
  for (const bad of ['gpt2', '/abs/path', './rel/x', 'a/b/c', 'org/-x', 'org/a--b', 'org/x@../../etc', 'org/x@', '~/m/x', 'C:\\m\\x']) {
    assert.equal(parseHubId(bad), undefined, bad);
  }
  assert.equal(hubIdProblem('org/name@v1.0'), undefined);
  assert.match(hubIdProblem('just-a-name')!, /org\/name/);
  assert.match(hubIdProblem('org/na me')!, /letters, digits/);
  // An existing folder wins over the id shape; a missing folder path is left for Model.open to report.
  setEnv({});
  const rel = path.relative(process.cwd(), gpt2Dir);
  assert.equal((await resolveModelSource(gpt2Dir)).dir, gpt2Dir);
  assert.equal((await resolveModelSource(rel)).dir, gpt2Dir);
  assert.equal((await resolveModelSource('/nowhere/model')).dir, '/nowhere/model');
  assert.equal(normalizeEtag('W/"abc"'), 'abc');
  assert.equal(formatProgress({ id: 'o/n', file: 'model.safetensors', doneBytes: 5e6, totalBytes: 2e7 }), 'downloading o/n: 25% 5 MB of 20 MB (model.safetensors)');
});

test('download: exactly the Hugging Face cache layout, only the needed files, progress, and Model.open on the snapshot', async () => {
  setEnv({});
  const progress: SourceProgress[] = [];
  const r = await resolveModelSource('tiny-org/gpt2-tiny', { onProgress: (p) => progress.push(p) });
  const repo = hub.repos.get('tiny-org/gpt2-tiny')!;
  const commit = repo.refs['main']!;
  const repoDir = path.join(cacheDir, 'models--tiny-org--gpt2-tiny');
  assert.equal(r.dir, path.join(repoDir, 'snapshots', commit));
  assert.deepEqual(r.hub, { id: 'tiny-org/gpt2-tiny', revision: 'main', commit, downloaded: true });
  assert.equal(fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8'), commit, 'refs/main holds the commit, no newline');
  // Every snapshot entry is a relative symlink to blobs/<etag>: sha256 for LFS files, git blob sha1 for the others.
  const snap = fs.readdirSync(r.dir).sort();
  assert.deepEqual(snap, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  for (const f of snap) {
    const b = repo.files.get(f)!;
    const etag = isLfs(f) ? sha256(b) : gitSha1(b);
    assert.ok(fs.lstatSync(path.join(r.dir, f)).isSymbolicLink(), `${f} is a symlink`);
    assert.equal(fs.readlinkSync(path.join(r.dir, f)), path.join('..', '..', 'blobs', etag), f);
    assert.deepEqual(fs.readFileSync(path.join(repoDir, 'blobs', etag)), b, `${f} content`);
  }
  assert.equal(fs.readdirSync(path.join(repoDir, 'blobs')).length, 4, 'no README.md, no pytorch_model.bin, no .incomplete left');
  for (const f of ['generation_config.json', 'special_tokens_map.json']) assert.ok(fs.existsSync(path.join(repoDir, '.no_exist', commit, f)), `.no_exist marker for ${f}`);
  assert.ok(!hub.log.some((l) => l.url.endsWith('/pytorch_model.bin') || l.url.endsWith('/README.md')));
  // Progress: bytes of the weights, monotone, ending at the total.
  const weights = repo.files.get('model.safetensors')!.length;
  assert.ok(progress.length >= 2);
  assert.ok(progress.every((p, i) => p.totalBytes === weights && (i === 0 || p.doneBytes >= progress[i - 1]!.doneBytes)));
  assert.equal(progress.at(-1)!.doneBytes, weights);
  // The snapshot is a checkpoint folder.
  const m = await Model.open(r.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'compiled') });
  try {
    assert.equal(m.dims.modelType, 'gpt2');
    assert.equal(m.dims.layers, 2);
    assert.equal(hubIdFromSnapshotDir(m.dir), 'tiny-org/gpt2-tiny');
  } finally {
    await m.release();
  }
  // The picker's listing: id, size on disk (all blobs), model_type, supported.
  const listed = (await listCachedModels(cacheDir)).find((c) => c.id === 'tiny-org/gpt2-tiny')!;
  const blobBytes = snap.reduce((a, f) => a + repo.files.get(f)!.length, 0);
  assert.deepEqual({ ...listed }, { spec: 'tiny-org/gpt2-tiny', id: 'tiny-org/gpt2-tiny', commit, dir: r.dir, sizeOnDisk: blobBytes, modelType: 'gpt2', unsupported: null });
});

test('a sharded checkpoint: the index and exactly its shards', async () => {
  setEnv({});
  const r = await resolveModelSource('tiny-org/qwen2-sharded@v1');
  const repoDir = path.join(cacheDir, 'models--tiny-org--qwen2-sharded');
  assert.equal(fs.readFileSync(path.join(repoDir, 'refs', 'v1'), 'utf8'), r.hub!.commit);
  const index = JSON.parse(fs.readFileSync(path.join(r.dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const shards = [...new Set(Object.values(index.weight_map))].sort();
  assert.equal(shards.length, 2);
  assert.deepEqual(fs.readdirSync(r.dir).filter((f) => f.endsWith('.safetensors')).sort(), shards);
  const m = await Model.open(r.dir, { device: 'cpu', cacheRoot: path.join(tmp, 'compiled') });
  try {
    assert.equal(m.dims.modelType, 'qwen2');
  } finally {
    await m.release();
  }
});

test('a second resolve is served from the cache with the server stopped; HF_HUB_OFFLINE uses the cache only', async () => {
  setEnv({});
  const first = await resolveModelSource('tiny-org/gpt2-tiny');
  const before = hub.log.length;
  // By a tag resolved before (refs/v1).
  const viaTag = await resolveModelSource('tiny-org/qwen2-sharded@v1');
  const again = await resolveModelSource('tiny-org/gpt2-tiny');
  assert.equal(hub.log.length, before, 'no request for a cached model');
  assert.equal(again.dir, first.dir);
  assert.equal(again.hub!.downloaded, false);
  assert.ok(fs.existsSync(path.join(viaTag.dir, 'config.json')));

  // Network gone: an endpoint where nothing listens.
  const dead = new FakeHub();
  await dead.start();
  const deadEndpoint = dead.endpoint;
  await dead.stop();
  setEnv({ HF_ENDPOINT: deadEndpoint });
  assert.equal((await resolveModelSource('tiny-org/gpt2-tiny')).dir, first.dir, 'cached: no network needed');
  assert.equal((await resolveModelSource(`tiny-org/gpt2-tiny@${first.hub!.commit}`)).dir, first.dir, 'by commit hash');
  const msg = await rejects(resolveModelSource('tiny-org/not-cached'), /cannot reach the Hugging Face Hub at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  assert.ok(msg.includes(deadEndpoint), 'names the endpoint');

  setEnv({ HF_HUB_OFFLINE: '1' });
  const n = hub.log.length;
  assert.equal((await resolveModelSource('tiny-org/gpt2-tiny')).dir, first.dir);
  await rejects(resolveModelSource('tiny-org/engine-gpt2'), /not in the Hugging Face cache .*HF_HUB_OFFLINE is set/);
  assert.equal(hub.log.length, n, 'offline: no request at all');

  // A transformers-style cache entry with pytorch_model.bin only: refused with the reason, listed as unsupported.
  const repoDir = path.join(cacheDir, 'models--other--bert-bin');
  const commit = 'c'.repeat(40);
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
  fs.mkdirSync(path.join(repoDir, 'snapshots', commit), { recursive: true });
  fs.writeFileSync(path.join(repoDir, 'refs', 'main'), commit);
  for (const [f, text] of [['config.json', '{"model_type":"bert"}'], ['pytorch_model.bin', 'x']] as const) {
    const b = Buffer.from(text);
    fs.writeFileSync(path.join(repoDir, 'blobs', gitSha1(b)), b);
    fs.symlinkSync(path.join('..', '..', 'blobs', gitSha1(b)), path.join(repoDir, 'snapshots', commit, f));
  }
  await rejects(resolveModelSource('other/bert-bin'), /has no safetensors weights \(only pytorch_model\.bin\); AttnScope reads safetensors only/);
  const listed = (await listCachedModels(cacheDir)).find((c) => c.id === 'other/bert-bin')!;
  assert.equal(listed.unsupported, 'no safetensors (pytorch_model.bin)');
  assert.equal(listed.modelType, 'bert');
});

test('tokens: Bearer from HF_TOKEN and from the token file; gated without a token or without access', async () => {
  setEnv({});
  await rejects(resolveModelSource('tiny-org/gated-gpt2'), /tiny-org\/gated-gpt2 is a gated model: accept its terms on .*, then set HF_TOKEN or run huggingface-cli login$/);

  setEnv({ HF_TOKEN: 'hf_someoneElse' });
  await rejects(resolveModelSource('tiny-org/gated-gpt2'), /gated model and the token from HF_TOKEN has no access yet; request access on/);

  setEnv({ HF_TOKEN: TOKEN });
  let n = hub.log.length;
  await resolveModelSource('tiny-org/gated-gpt2');
  const sent = hub.log.slice(n);
  assert.ok(sent.length >= 4);
  assert.ok(sent.every((l) => l.auth === `Bearer ${TOKEN}`), 'every request carries the token');

  // The file huggingface-cli login writes: $HF_HOME/token.
  const home = path.join(tmp, 'hf-home');
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, 'token'), `${TOKEN}\n`);
  setEnv({ HF_HOME: home });
  n = hub.log.length;
  fs.rmSync(path.join(cacheDir, 'models--tiny-org--gated-gpt2'), { recursive: true });
  const r = await resolveModelSource('tiny-org/gated-gpt2');
  assert.ok(hub.log.slice(n).length >= 4 && hub.log.slice(n).every((l) => l.auth === `Bearer ${TOKEN}`), 'token from the file');
  assert.ok(fs.existsSync(path.join(r.dir, 'model.safetensors')));
});

test('refused: repository not found, revision not found, no safetensors', async () => {
  setEnv({});
  await rejects(resolveModelSource('tiny-org/missing'), /^tiny-org\/missing: not found \(no model repository of that name on http:\/\/127\.0\.0\.1:\d+; a private one needs HF_TOKEN/);
  await rejects(resolveModelSource('tiny-org/gpt2-tiny@nope'), /revision "nope" not found/);
  await rejects(resolveModelSource('tiny-org/bin-only'), /^tiny-org\/bin-only has no safetensors weights \(only pytorch_model\.bin\); AttnScope reads safetensors only/);
  assert.ok(!fs.existsSync(path.join(cacheDir, 'models--tiny-org--missing')), 'nothing written for a missing repository');
});

test('an interrupted download continues with a Range request and is verified', async () => {
  setEnv({});
  const repo = hub.repos.get('tiny-org/resume-gpt2')!;
  const weights = repo.files.get('model.safetensors')!;
  hub.cut = { file: 'model.safetensors', bytes: 3000 };
  await rejects(resolveModelSource('tiny-org/resume-gpt2'), /download of model\.safetensors from http:\/\/127\.0\.0\.1:\d+ was interrupted .*run again to continue it/);
  const part = path.join(cacheDir, 'models--tiny-org--resume-gpt2', 'blobs', `${sha256(weights)}.incomplete`);
  const have = fs.statSync(part).size;
  assert.ok(have > 0 && have <= 3000, `partial file kept (${have} bytes)`);
  const n = hub.log.length;
  const progress: SourceProgress[] = [];
  const r = await resolveModelSource('tiny-org/resume-gpt2', { onProgress: (p) => progress.push(p) });
  const gets = hub.log.slice(n).filter((l) => l.url.endsWith('/model.safetensors'));
  assert.deepEqual(gets.map((g) => g.range), [`bytes=${have}-${weights.length - 1}`], 'one Range request from where it stopped');
  assert.equal(progress[0]!.doneBytes, have, 'progress starts from the bytes already there');
  assert.deepEqual(fs.readFileSync(path.join(r.dir, 'model.safetensors')), weights);
  assert.ok(!fs.existsSync(part));

  // A partial file that does not match (another server's bytes) is caught by the checksum, never used.
  const repoDir = path.join(cacheDir, 'models--tiny-org--engine-gpt2');
  const etag = sha256(hub.repos.get('tiny-org/engine-gpt2')!.files.get('model.safetensors')!);
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.writeFileSync(path.join(repoDir, 'blobs', `${etag}.incomplete`), Buffer.alloc(100, 0xff));
  await rejects(resolveModelSource('tiny-org/engine-gpt2'), /the download of model\.safetensors is corrupt \(checksum .*\); it was deleted, run again/);
  assert.ok(!fs.existsSync(path.join(repoDir, 'blobs', `${etag}.incomplete`)));
  assert.ok(!fs.existsSync(path.join(repoDir, 'blobs', etag)));
});

test('a server that ignores Range: the partial file is started over, never appended to', async () => {
  setEnv({});
  const id = 'tiny-org/norange-gpt2';
  hub.repos.set(id, repoFromFolder(gpt2Dir, {}, false, 'norange'));
  const weights = hub.repos.get(id)!.files.get('model.safetensors')!;
  const blobs = path.join(cacheDir, 'models--tiny-org--norange-gpt2', 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(path.join(blobs, `${sha256(weights)}.incomplete`), weights.subarray(0, 1000));
  hub.ignoreRange = true;
  try {
    const n = hub.log.length;
    const r = await resolveModelSource(id);
    const gets = hub.log.slice(n).filter((l) => l.url.endsWith('/model.safetensors'));
    assert.deepEqual(gets.map((g) => g.range), [`bytes=1000-${weights.length - 1}`, undefined]);
    assert.deepEqual(fs.readFileSync(path.join(r.dir, 'model.safetensors')), weights);
  } finally {
    hub.ignoreRange = false;
  }
});

test('engine process: open takes a Hub id, progress carries the download, stop cancels it', async () => {
  setEnv({});
  const h = new EngineHost({ engineScript: ENGINE, maxHeapMb: 256 });
  try {
    const messages: string[] = [];
    const info = await h.open({ modelDir: 'tiny-org/engine-gpt2', device: 'cpu', cacheRoot: path.join(tmp, 'compiled') }, (m) => messages.push(m));
    assert.equal(info.modelType, 'gpt2');
    assert.equal(hubIdFromSnapshotDir(info.dir), 'tiny-org/engine-gpt2');
    assert.ok(messages.some((m) => /^downloading tiny-org\/engine-gpt2: 100% .* \(model\.safetensors\)$/.test(m)), messages.join(' | '));

    hub.stall = 'model.safetensors';
    const abort = new AbortController();
    const seen: string[] = [];
    const opening = h.open({ modelDir: 'tiny-org/stall-gpt2', device: 'cpu', cacheRoot: path.join(tmp, 'compiled') }, (m) => {
      seen.push(m);
      if (m.startsWith('downloading')) abort.abort();
    }, abort.signal);
    await rejects(opening, /download of tiny-org\/stall-gpt2 cancelled/, 'CANCELLED');
    assert.ok(seen.length > 0);
    // The engine still answers: the cancelled download left the process working.
    const again = await h.open({ modelDir: 'tiny-org/engine-gpt2', device: 'cpu', cacheRoot: path.join(tmp, 'compiled') });
    assert.equal(again.dir, info.dir);
  } finally {
    hub.stall = undefined;
    await h.dispose();
  }
});

test('CLI: --model org/name from the cache offline; a one-line error when it is not cached', () => {
  const prompt = path.join(tmp, 'p.txt');
  fs.writeFileSync(prompt, 'the cat sat');
  const env = { ...process.env, HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: '1', HF_HOME: path.join(tmp, 'hf-home-empty'), ATTNSCOPE_CACHE: path.join(tmp, 'compiled') };
  const run = (model: string) => spawnSync(process.execPath, [path.join(ROOT, 'bin', 'attnscope.js'), 'inspect', prompt, '--model', model, '--device', 'cpu'], { encoding: 'utf8', env, timeout: 120_000 });
  const ok = run('tiny-org/gpt2-tiny');
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).model.arch, 'gpt2');
  const bad = run('tiny-org/never-downloaded');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^attnscope: tiny-org\/never-downloaded is not in the Hugging Face cache \(.*\) and HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE to download it, or name a checkpoint folder\n$/);
});
