// Shared setup of the integration tests, the e2e test and the demo: build what is missing, pick the
// model (the embedded models/default when it exists, else a small generated GPT-2-shaped checkpoint
// cached in .cache/), and write a workspace with prompt files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCodeServer } from '../codeserver/ensure.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS_DIR = path.join(REPO, 'test-results');
const GEN_ARGS = ['--layers', '2', '--heads', '4', '--width', '64', '--vocab', '400', '--positions', '512'];
const GEN_DIR = path.join(REPO, '.cache', `test-model-${GEN_ARGS.filter((_, i) => i % 2).join('-')}`);

/** The sample prompt the tests use: repeated words, so induction-like heads have something to do. */
export const SAMPLE_PROMPT =
  'The cat sat on the mat. The cat sat on the mat.\nThe dog ran to the park, and the cat sat on the mat again.\n';

function node(args, what) {
  const r = spawnSync(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

/** Runs `node esbuild.mjs <flags>` (always: it is quick and keeps dist/ in step with the sources). */
export function build(flags = []) {
  node(['esbuild.mjs', ...flags], `node esbuild.mjs ${flags.join(' ')}`);
  for (const f of ['dist/extension.js', 'dist/engineProcess.js']) {
    if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing after the build`);
  }
}

/**
 * The model to use: `{ setting: '' , dir: models/default }` when the embedded default model exists,
 * else a generated tiny checkpoint (`setting` = its folder), generated once into .cache/.
 */
export function testModel() {
  const def = path.join(REPO, 'models', 'default');
  if (fs.existsSync(path.join(def, 'config.json'))) return { setting: '', dir: def, kind: 'models/default' };
  if (!fs.existsSync(path.join(GEN_DIR, 'tokenizer.json'))) {
    if (!fs.existsSync(path.join(REPO, 'out', 'tools', 'gen-bench-model.js'))) node(['esbuild.mjs', '--tools'], 'node esbuild.mjs --tools');
    const tmp = `${GEN_DIR}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    node([path.join('out', 'tools', 'gen-bench-model.js'), tmp, ...GEN_ARGS], 'generating the test model');
    fs.rmSync(GEN_DIR, { recursive: true, force: true });
    fs.renameSync(tmp, GEN_DIR);
  }
  return { setting: GEN_DIR, dir: GEN_DIR, kind: `generated (${GEN_ARGS.join(' ')})` };
}

/** Writes the workspace's .vscode/settings.json (attnscope.model when a generated model is used). */
export function writeWorkspaceSettings(workspace, model, more = {}) {
  const settings = { ...(model.setting ? { 'attnscope.model': model.setting } : {}), ...more };
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2) + '\n');
}

/** A fresh temporary folder (for cleanupFor) holding an empty `workspace/` folder. */
export function tempWorkspace(prefix) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(workspace, { recursive: true });
  return { tmp, workspace };
}

/** code-server on `workspace` with this repository as the extension under development; its
 *  extensions and user data live in `tmp`. `more`: settings, env (see startCodeServer). */
export function startDevServer(tmp, workspace, more = {}) {
  return startCodeServer({
    workspace,
    extensionsDir: path.join(tmp, 'extensions'),
    userDataDir: path.join(tmp, 'user-data'),
    extensionDevelopmentPath: REPO,
    ...more,
  });
}

/** The example prompts of the repository (examples/*.prompt), if any. */
export function examplePrompts() {
  const dir = path.join(REPO, 'examples');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.prompt'))
    .sort()
    .map((f) => path.join(dir, f));
}

export function elapsed(t0) {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

/**
 * The idempotent cleanup of a script that starts code-server and Chromium: closes the browser,
 * stops the server and removes the temporary folder (kept when the environment variable named
 * `keepEnv` is set). `current` returns the script's resources as they are when cleanup runs.
 */
export function cleanupFor(current, keepEnv) {
  let cleaning;
  return () =>
    (cleaning ??= (async () => {
      const { browser, server, tmp } = current();
      if (browser) await browser.close().catch(() => {});
      if (server) await server.stop().catch(() => {});
      if (tmp && !(keepEnv && process.env[keepEnv])) fs.rmSync(tmp, { recursive: true, force: true });
    })());
}

/** Runs `cleanup` and exits 130 on Ctrl+C or SIGTERM. */
export function cleanupOnSignals(cleanup) {
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => cleanup().finally(() => process.exit(130)));
}
