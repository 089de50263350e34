#!/usr/bin/env node
// Installs the project's npm dependencies when they are missing or older than package-lock.json, so
// `npm test` and `npm run demo` work on a fresh clone with nothing installed before.
//
//   node scripts/ensure-deps.mjs     exit 0 when node_modules is in step with package-lock.json
//
// "In step": node_modules/.package-lock.json (the record npm writes after every install) exists and
// is at least as new as package-lock.json. Otherwise `npm ci` runs. onnxruntime-node's install step
// fetches its CUDA add-on from NuGet; where NuGet cannot be reached that step fails, so a failed
// install is retried once with ONNXRUNTIME_NODE_INSTALL=skip (the CPU runtime is in the npm package).
// Plain Node, no dependencies.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lock = path.join(REPO, 'package-lock.json');
const record = path.join(REPO, 'node_modules', '.package-lock.json');
const say = (m) => process.stdout.write(`[deps] ${m}\n`);

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/** Why an install is needed, or '' when node_modules is in step. */
function staleReason() {
  if (!fs.existsSync(path.join(REPO, 'node_modules'))) return 'node_modules is missing';
  const r = mtime(record);
  if (r < 0) return 'node_modules has no install record';
  if (r < mtime(lock)) return 'package-lock.json is newer than node_modules';
  for (const bin of ['tsc', 'esbuild']) {
    if (!fs.existsSync(path.join(REPO, 'node_modules', '.bin', bin))) return `node_modules/.bin/${bin} is missing`;
  }
  return '';
}

function npmCi(env) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: REPO, env, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status === 0;
}

const why = staleReason();
if (!why) process.exit(0);
say(`${why}: installing the project's dependencies (npm ci)`);
let ok = npmCi(process.env);
if (!ok && process.env.ONNXRUNTIME_NODE_INSTALL !== 'skip') {
  say('npm ci failed; retrying with ONNXRUNTIME_NODE_INSTALL=skip (onnxruntime-node fetches its CUDA add-on from NuGet, which may be unreachable)');
  ok = npmCi({ ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' });
}
if (!ok) {
  process.stderr.write('[deps] npm ci failed; see the npm output above (Node 20 and access to the npm registry are needed)\n');
  process.exit(1);
}
const still = staleReason();
if (still) {
  process.stderr.write(`[deps] after npm ci: ${still}\n`);
  process.exit(1);
}
say('dependencies installed');
