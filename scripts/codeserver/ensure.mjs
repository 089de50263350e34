#!/usr/bin/env node
// Offline installer + launcher for a real VS Code (code-server) and headless Chromium.
//
//   node scripts/codeserver/ensure.mjs        # install (idempotent, cached), print paths
//
// As a module (plain Node ESM, no dependencies beyond Node built-ins):
//   ensureCodeServer()        -> { codeServerEntry, playwrightCorePath, chromiumPath }
//   startCodeServer(opts)     -> { url, port, pid, logFile, stop() }
//   launchChromium(opts)      -> { context, page, userDataDir, close() }
//   openWorkbench(page, opts) -> the URL it opened (after `.monaco-workbench` is there)
//   runExtensionTests(page, opts) -> { exitCode, logs } (extensionTestsPath through the URL payload)
//
// See scripts/codeserver/README.md for why each install step exists.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import util from 'node:util';

export const CODE_SERVER_VERSION = '4.100.3';
export const PLAYWRIGHT_CORE_VERSION = '1.65.1';
export const APT_PACKAGES = ['libkrb5-dev', 'ripgrep', 'chromium'];
/** Native modules of VS Code's server that must be compiled here (node-pty is left out: only terminals need it). */
const NATIVE_MODULES = ['kerberos', '@parcel/watcher', '@vscode/spdlog', 'native-watchdog', '@vscode/deviceid'];
/** Bump when the install steps change, so existing `.tools/` installs are redone. */
const STAMP_SCHEMA = 1;

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');
export const TOOLS_DIR = process.env.ATTNSCOPE_TOOLS_DIR
  ? path.resolve(process.env.ATTNSCOPE_TOOLS_DIR)
  : path.join(REPO_ROOT, '.tools');
export const LOG_DIR = path.join(TOOLS_DIR, 'logs');
const CS_DIR = path.join(TOOLS_DIR, 'code-server');
const CS_PKG = path.join(CS_DIR, 'node_modules', 'code-server');
const VSCODE_DIR = path.join(CS_PKG, 'lib', 'vscode');
const PW_DIR = path.join(TOOLS_DIR, 'playwright');
const STAMP_FILE = path.join(TOOLS_DIR, 'code-server.stamp.json');
const STEP_DIR = path.join(TOOLS_DIR, '.steps');
const LOCK_DIR = path.join(TOOLS_DIR, '.ensure.lock');
export const CHROMIUM_PATH = process.env.ATTNSCOPE_CHROMIUM || '/usr/bin/chromium';

const RESULT = {
  codeServerEntry: path.join(CS_PKG, 'out', 'node', 'entry.js'),
  playwrightCorePath: path.join(PW_DIR, 'node_modules', 'playwright-core'),
  chromiumPath: CHROMIUM_PATH,
};

export class EnsureError extends Error {
  constructor(message, { step, logFile } = {}) {
    super(message);
    this.name = 'EnsureError';
    this.step = step;
    this.logFile = logFile;
  }
}

// ---------------------------------------------------------------------------------------------
// small helpers

let quiet = false;
function progress(msg) {
  if (!quiet) process.stdout.write(`[codeserver] ${msg}\n`);
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The stamp key: anything whose change invalidates the install. */
function stampKey() {
  return {
    schema: STAMP_SCHEMA,
    codeServer: CODE_SERVER_VERSION,
    playwrightCore: PLAYWRIGHT_CORE_VERSION,
    nodeAbi: process.versions.modules,
    platform: `${process.platform}-${process.arch}`,
  };
}
const keyString = () => JSON.stringify(stampKey());

/** An env for child npm/node-gyp runs: without the npm_* variables of an enclosing `npm run`. */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !/^npm_config_(registry|cache|userconfig|proxy|https_proxy|noproxy|strict_ssl|cafile)$/i.test(k)) continue;
    env[k] = v;
  }
  Object.assign(env, {
    ONNXRUNTIME_NODE_INSTALL: 'skip',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    DEBIAN_FRONTEND: 'noninteractive',
  });
  const nodedir = nodeHeadersDir();
  if (nodedir) env.npm_config_nodedir = nodedir; // node-gyp must not try to download headers
  return Object.assign(env, extra);
}

/** A directory with include/node/node.h for the running Node (so node-gyp works offline). */
function nodeHeadersDir() {
  const candidates = [path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'];
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'include', 'node', 'node.h')) && fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) return dir;
  }
  return null;
}

function npmCommand() {
  // Prefer the npm that ships next to this node; fall back to PATH.
  const cli = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (fs.existsSync(cli)) return [process.execPath, [cli]];
  const npm = which('npm');
  if (!npm) throw new EnsureError('npm not found on PATH', { step: 'npm' });
  return [npm, []];
}

function findNodeGyp() {
  const npmDirs = [
    path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'),
    '/usr/lib/node_modules/npm',
    '/usr/local/lib/node_modules/npm',
    '/usr/share/nodejs/npm',
  ];
  const npmOnPath = which('npm');
  if (npmOnPath) npmDirs.unshift(path.resolve(fs.realpathSync(npmOnPath), '..', '..'));
  for (const dir of npmDirs) {
    const p = path.join(dir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(p)) return p;
  }
  const onPath = which('node-gyp');
  if (onPath) return fs.realpathSync(onPath);
  return null;
}

/** Run a command with its output appended to .tools/logs/<step>.log; throws EnsureError on failure. */
function runLogged(step, cmd, args, { cwd, env } = {}) {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${step}.log`);
  const fd = fs.openSync(logFile, 'a');
  fs.writeSync(fd, `\n$ (cd ${cwd || process.cwd()} && ${[cmd, ...args].join(' ')})   # ${new Date().toISOString()}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env || childEnv(), stdio: ['ignore', fd, fd] });
    child.on('error', (err) => {
      fs.closeSync(fd);
      reject(new EnsureError(`step "${step}" failed: ${err.message}; log: ${logFile}`, { step, logFile }));
    });
    child.on('exit', (code, signal) => {
      fs.closeSync(fd);
      if (code === 0) resolve(logFile);
      else reject(new EnsureError(`step "${step}" failed (${signal || `exit ${code}`}); log: ${logFile}`, { step, logFile }));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Debian packages

function installedDebs(pkgs) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...pkgs], { encoding: 'utf8' });
  if (r.error) return null; // no dpkg: not Debian
  const ok = new Set();
  for (const line of r.stdout.split('\n')) {
    const [name, ...status] = line.trim().split(/\s+/);
    if (name && status.join(' ') === 'install ok installed') ok.add(name.replace(/:.*$/, ''));
  }
  return ok;
}

function missingSystemPackages() {
  const wanted = [...APT_PACKAGES];
  // node-gyp needs a compiler, make and python.
  if (!which('make') || !(which('g++') || which('c++'))) wanted.push('build-essential');
  if (!which('python3')) wanted.push('python3');
  const ok = installedDebs(wanted);
  if (ok === null) {
    // Not a dpkg system: judge by the files that are actually used.
    const missing = [];
    if (!fs.existsSync(CHROMIUM_PATH)) missing.push('chromium');
    if (!which('rg')) missing.push('ripgrep');
    if (!which('krb5-config')) missing.push('libkrb5-dev');
    return missing.concat(wanted.filter((p) => p === 'build-essential' || p === 'python3'));
  }
  return wanted.filter((p) => !ok.has(p));
}

function aptListsPresent() {
  try {
    return fs.readdirSync('/var/lib/apt/lists').some((f) => /_Packages(\.|$)/.test(f));
  } catch {
    return false;
  }
}

async function ensureSystemPackages() {
  const missing = missingSystemPackages();
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new EnsureError(
      `missing Debian packages: ${missing.join(' ')} — install them first: sudo apt-get install -y --no-install-recommends ${missing.join(' ')}`,
      { step: 'apt' },
    );
  }
  progress(`apt: installing ${missing.join(' ')}`);
  const install = () => runLogged('apt', 'apt-get', ['install', '-y', '--no-install-recommends', ...missing]);
  if (!aptListsPresent()) {
    progress('apt: no package lists yet, running apt-get update');
    await runLogged('apt', 'apt-get', ['update']);
    await install();
  } else {
    try {
      await install();
    } catch {
      progress('apt: install failed with the current lists; running apt-get update and retrying');
      await runLogged('apt', 'apt-get', ['update']);
      await install();
    }
  }
  const still = missingSystemPackages();
  if (still.length) throw new EnsureError(`apt: still missing after install: ${still.join(' ')}; log: ${path.join(LOG_DIR, 'apt.log')}`, { step: 'apt' });
  progress('apt: ok');
}

// ---------------------------------------------------------------------------------------------
// install steps (each records a marker; a run redoes the first step without a valid marker and all after it)

function writeJson(file, obj) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(obj, null, 2) + '\n');
}

function forceSymlink(target, linkPath) {
  fs.mkdirSync(path.dirname(linkPath), { recursive: true });
  try {
    fs.rmSync(linkPath, { recursive: true, force: true });
  } catch {
    /* ignore */
  }
  fs.symlinkSync(target, linkPath);
}

const STEPS = [
  {
    name: 'code-server-npm',
    title: `npm install code-server@${CODE_SERVER_VERSION} --ignore-scripts (.tools/code-server)`,
    async run() {
      writeJson(path.join(CS_DIR, 'package.json'), {
        name: 'attnscope-tools-code-server',
        private: true,
        description: 'Installed by scripts/codeserver/ensure.mjs; do not edit.',
        dependencies: { 'code-server': CODE_SERVER_VERSION },
      });
      const [npm, pre] = npmCommand();
      await runLogged('code-server-npm', npm, [...pre, 'install', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: CS_DIR });
    },
  },
  {
    name: 'vscode-npm',
    title: 'npm install --omit=dev --ignore-scripts (code-server/lib/vscode and lib/vscode/extensions)',
    async run() {
      const [npm, pre] = npmCommand();
      await runLogged('vscode-npm', npm, [...pre, 'install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: VSCODE_DIR });
      // Dependencies shared by the built-in extensions (typescript, for the TS/JS language features).
      await runLogged('vscode-npm', npm, [...pre, 'install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: path.join(VSCODE_DIR, 'extensions') });
    },
  },
  {
    name: 'vscode-native',
    title: `npm rebuild ${NATIVE_MODULES.join(' ')} (compiles; slow on 2 cores)`,
    async run() {
      const [npm, pre] = npmCommand();
      const gyp = findNodeGyp();
      await runLogged('vscode-native', npm, [...pre, 'rebuild', ...NATIVE_MODULES], {
        cwd: VSCODE_DIR,
        env: childEnv(gyp ? { npm_config_node_gyp: gyp } : {}),
      });
      // npm 11 warns that dependency install scripts will need an allowScripts approval; should a
      // later npm skip them, build what still does not load with node-gyp directly.
      const nodedir = nodeHeadersDir();
      for (const m of NATIVE_MODULES) {
        const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(m)})`], { cwd: VSCODE_DIR, encoding: 'utf8' });
        if (probe.status === 0) continue;
        const dir = path.join(VSCODE_DIR, 'node_modules', ...m.split('/'));
        if (!gyp || !fs.existsSync(path.join(dir, 'binding.gyp'))) continue; // the verify step will report it
        progress(`vscode-native: ${m} does not load after npm rebuild; building it with node-gyp`);
        await runLogged('vscode-native', process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: dir });
      }
    },
  },
  {
    name: 'vscode-links',
    title: 'symlink ripgrep and node_modules.asar',
    async run() {
      const rg = which('rg');
      if (!rg) throw new EnsureError('step "vscode-links" failed: rg (ripgrep) not on PATH', { step: 'vscode-links' });
      forceSymlink(fs.realpathSync(rg), path.join(VSCODE_DIR, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'));
      forceSymlink('node_modules', path.join(VSCODE_DIR, 'node_modules.asar'));
      // What code-server's postinstall.sh also links: the `code` CLI for the integrated terminal, the browser helper.
      forceSymlink('code-linux.sh', path.join(VSCODE_DIR, 'bin', 'remote-cli', 'code-server'));
      forceSymlink('browser-linux.sh', path.join(VSCODE_DIR, 'bin', 'helpers', 'browser.sh'));
    },
  },
  {
    name: 'argon2',
    title: 'build argon2 with node-gyp',
    async run() {
      const argonDir = [path.join(CS_PKG, 'node_modules', 'argon2'), path.join(CS_DIR, 'node_modules', 'argon2')].find((d) =>
        fs.existsSync(path.join(d, 'package.json')),
      );
      if (!argonDir) throw new EnsureError('step "argon2" failed: argon2 is not installed under .tools/code-server', { step: 'argon2' });
      const pkg = JSON.parse(fs.readFileSync(path.join(argonDir, 'package.json'), 'utf8'));
      const napi = String((pkg.binary && pkg.binary.napi_versions && pkg.binary.napi_versions[0]) || 3);
      const modulePath = ((pkg.binary && pkg.binary.module_path) || './lib/binding/napi-v{napi_build_version}')
        .replace('{napi_build_version}', napi)
        .replace(/^\.\//, '');
      const moduleName = (pkg.binary && pkg.binary.module_name) || 'argon2';
      const gyp = findNodeGyp();
      if (!gyp) throw new EnsureError('step "argon2" failed: node-gyp not found (looked next to npm and on PATH)', { step: 'argon2' });
      const nodedir = nodeHeadersDir();
      const args = [gyp, 'rebuild', `--module_name=${moduleName}`, `--module_path=${modulePath}`, `--napi_build_version=${napi}`];
      if (nodedir) args.push(`--nodedir=${nodedir}`);
      await runLogged('argon2', process.execPath, args, { cwd: argonDir });
      const built = path.join(argonDir, 'build', 'Release', `${moduleName}.node`);
      fs.mkdirSync(path.join(argonDir, modulePath), { recursive: true });
      fs.copyFileSync(built, path.join(argonDir, modulePath, `${moduleName}.node`));
    },
  },
  {
    name: 'playwright-npm',
    title: `npm install playwright-core@${PLAYWRIGHT_CORE_VERSION} (.tools/playwright)`,
    async run() {
      writeJson(path.join(PW_DIR, 'package.json'), {
        name: 'attnscope-tools-playwright',
        private: true,
        description: 'Installed by scripts/codeserver/ensure.mjs; do not edit.',
        dependencies: { 'playwright-core': PLAYWRIGHT_CORE_VERSION },
      });
      const [npm, pre] = npmCommand();
      await runLogged('playwright-npm', npm, [...pre, 'install', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: PW_DIR });
    },
  },
  {
    name: 'verify',
    title: 'check code-server starts (--version) and native modules load',
    async run() {
      const config = path.join(CS_DIR, 'config.yaml'); // else code-server writes ~/.config/code-server/config.yaml
      fs.writeFileSync(config, 'auth: none\ncert: false\n');
      const v = spawnSync(process.execPath, [RESULT.codeServerEntry, '--config', config, '--version'], { cwd: CS_DIR, encoding: 'utf8', env: childEnv(), timeout: 60_000 });
      const out = `${v.stdout || ''}${v.stderr || ''}`;
      fs.mkdirSync(LOG_DIR, { recursive: true });
      fs.appendFileSync(path.join(LOG_DIR, 'verify.log'), `\n$ code-server --version\n${out}`);
      if (v.status !== 0 || !out.includes(CODE_SERVER_VERSION)) {
        throw new EnsureError(`step "verify" failed: code-server --version did not print ${CODE_SERVER_VERSION}; log: ${path.join(LOG_DIR, 'verify.log')}`, { step: 'verify' });
      }
      const probe = `
        const path = require('path');
        const vs = ${JSON.stringify(VSCODE_DIR)};
        const r = require('module').createRequire(path.join(vs, 'package.json'));
        for (const m of ${JSON.stringify(NATIVE_MODULES)}) { r(m); console.log('loaded', m); }
        require('module').createRequire(${JSON.stringify(path.join(CS_PKG, 'package.json'))})('argon2'); console.log('loaded argon2');
        require(${JSON.stringify(RESULT.playwrightCorePath)}); console.log('loaded playwright-core');`;
      await runLogged('verify', process.execPath, ['-e', probe], { cwd: CS_DIR });
    },
  },
];

function stepMarker(name) {
  return path.join(STEP_DIR, `${name}.done`);
}
function stepDone(name) {
  try {
    return fs.readFileSync(stepMarker(name), 'utf8') === keyString();
  } catch {
    return false;
  }
}

function fastPathOk() {
  try {
    const stamp = JSON.parse(fs.readFileSync(STAMP_FILE, 'utf8'));
    if (JSON.stringify(stamp.key) !== keyString()) return false;
  } catch {
    return false;
  }
  return (
    fs.existsSync(RESULT.codeServerEntry) &&
    fs.existsSync(path.join(RESULT.playwrightCorePath, 'package.json')) &&
    fs.existsSync(RESULT.chromiumPath) &&
    fs.existsSync(path.join(VSCODE_DIR, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg')) // dangling link -> false
  );
}

// A lock so that two concurrent runs (e.g. two test scripts) don't install into the same folder.
async function withLock(fn) {
  fs.mkdirSync(TOOLS_DIR, { recursive: true });
  const deadline = Date.now() + 45 * 60 * 1000;
  let announced = false;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let pid = NaN;
      try {
        pid = Number(fs.readFileSync(path.join(LOCK_DIR, 'pid'), 'utf8'));
      } catch {
        /* being written */
      }
      let alive = false;
      if (pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (e) {
          alive = e.code === 'EPERM';
        }
      }
      let age = 0;
      try {
        age = Date.now() - fs.statSync(LOCK_DIR).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if ((pid > 0 && !alive) || (!(pid > 0) && age > 30_000)) {
        fs.rmSync(LOCK_DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new EnsureError(`another install holds ${LOCK_DIR} (pid ${pid}); remove it if stale`, { step: 'lock' });
      if (!announced) progress(`waiting for another install (pid ${pid || '?'}) to finish`);
      announced = true;
      await delay(1000);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

/**
 * Install (once) code-server, its native modules, playwright-core, and the Debian packages.
 * Idempotent; a run after a complete install only reads the stamp file.
 * @param {{quiet?: boolean}} [opts]
 * @returns {Promise<{codeServerEntry: string, playwrightCorePath: string, chromiumPath: string}>}
 */
export async function ensureCodeServer(opts = {}) {
  quiet = !!opts.quiet;
  if (fastPathOk()) return { ...RESULT };
  return withLock(async () => {
    if (fastPathOk()) return { ...RESULT };
    const t0 = Date.now();
    const major = Number(process.versions.node.split('.')[0]);
    if (major !== 20 && !process.env.ATTNSCOPE_FORCE_NODE) {
      throw new EnsureError(`code-server ${CODE_SERVER_VERSION} (VS Code 1.100) needs Node 20, this is Node ${process.versions.node} (set ATTNSCOPE_FORCE_NODE=1 to try anyway)`, { step: 'node' });
    }
    await ensureSystemPackages();
    progress(`installing into ${TOOLS_DIR} (logs: ${LOG_DIR})`);
    fs.mkdirSync(STEP_DIR, { recursive: true });
    let redo = false;
    for (const step of STEPS) {
      if (!redo && stepDone(step.name)) {
        progress(`${step.name}: done before, skipping`);
        continue;
      }
      redo = true; // every step after one that runs is redone too
      try {
        fs.rmSync(stepMarker(step.name), { force: true });
      } catch {
        /* ignore */
      }
      const s0 = Date.now();
      progress(`${step.name}: ${step.title} ...`);
      try {
        await step.run();
      } catch (err) {
        if (err instanceof EnsureError) throw err;
        const logFile = path.join(LOG_DIR, `${step.name}.log`);
        throw new EnsureError(`step "${step.name}" failed: ${err.message}; log: ${logFile}`, { step: step.name, logFile });
      }
      fs.writeFileSync(stepMarker(step.name), keyString());
      progress(`${step.name}: ok (${((Date.now() - s0) / 1000).toFixed(1)} s)`);
    }
    writeJson(STAMP_FILE, { key: stampKey(), installedAt: new Date().toISOString(), ...RESULT });
    progress(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { ...RESULT };
  });
}

// ---------------------------------------------------------------------------------------------
// running code-server

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const DEFAULT_USER_SETTINGS = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'workbench.enableExperiments': false,
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'chat.commandCenter.enabled': false,
  'window.commandCenter': false,
  'git.enabled': false,
};

function readJsonSafe(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/** Pids of all descendants of `pid` (Linux /proc walk; empty elsewhere). */
function descendants(pid) {
  let entries;
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const children = new Map();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(e));
    } catch {
      /* gone */
    }
  }
  const out = [];
  const stack = [pid];
  while (stack.length) {
    for (const c of children.get(stack.pop()) || []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

function killTree(pid, signal) {
  const kids = descendants(pid);
  try {
    process.kill(-pid, signal); // the process group (spawned detached, so pid is the group id)
  } catch {
    /* already gone */
  }
  for (const k of kids) {
    try {
      process.kill(k, signal); // children that left the group
    } catch {
      /* gone */
    }
  }
}

/** Keep the 30 newest .tools/logs/code-server-PORT.log files. */
function pruneServerLogs() {
  try {
    const logs = fs
      .readdirSync(LOG_DIR)
      .filter((f) => /^code-server-\d+\.log$/.test(f))
      .map((f) => ({ f, t: fs.statSync(path.join(LOG_DIR, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    for (const { f } of logs.slice(30)) fs.rmSync(path.join(LOG_DIR, f), { force: true });
  } catch {
    /* no logs yet */
  }
}

/**
 * Start code-server on 127.0.0.1:<free port> and wait until it answers HTTP.
 * @param {{workspace: string, extensionsDir: string, userDataDir: string, port?: number,
 *          extensionDevelopmentPath?: string, settings?: object, env?: object,
 *          logFile?: string, timeoutMs?: number}} opts
 * `extensionDevelopmentPath` is not a server flag: code-server loads an extension under development
 * per window, from the workbench URL's payload (see openWorkbench); it is kept on the result for `open()`.
 * @returns {Promise<{url: string, port: number, pid: number, logFile: string,
 *          extensionDevelopmentPath?: string, workspace: string,
 *          open: (page: any, more?: object) => Promise<string>, stop: () => Promise<void>}>}
 */
export async function startCodeServer(opts) {
  const { workspace, extensionsDir, userDataDir } = opts;
  if (!workspace || !extensionsDir || !userDataDir) throw new Error('startCodeServer: workspace, extensionsDir and userDataDir are required');
  const { codeServerEntry } = await ensureCodeServer({ quiet: true });
  const timeoutMs = opts.timeoutMs ?? 90_000;

  fs.mkdirSync(extensionsDir, { recursive: true });
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  writeJson(settingsFile, { ...readJsonSafe(settingsFile), ...DEFAULT_USER_SETTINGS, ...(opts.settings || {}) });
  // Our own config file, so code-server never writes ~/.config/code-server/config.yaml (with a password).
  const configFile = path.join(userDataDir, 'code-server-config.yaml');
  fs.writeFileSync(configFile, 'auth: none\ncert: false\n');

  pruneServerLogs();
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? (await freePort());
    const logFile = opts.logFile ?? path.join(LOG_DIR, `code-server-${port}.log`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const fd = fs.openSync(logFile, 'a');
    const args = [
      codeServerEntry,
      '--config', configFile,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
      '--extensions-dir', extensionsDir,
      '--user-data-dir', userDataDir,
      workspace,
    ];
    const child = spawn(process.execPath, args, {
      cwd: workspace,
      detached: true, // own process group, so stop() takes the extension hosts too
      stdio: ['ignore', fd, fd],
      env: {
        ...childEnv(),
        // code-server defaults to the open-vsx.org gallery; offline that is only failed lookups, so turn it off.
        EXTENSIONS_GALLERY: process.env.EXTENSIONS_GALLERY || '{}',
        ...(opts.env || {}),
      },
    });
    fs.closeSync(fd);
    let exited = null;
    const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => resolve((exited = { code, signal }))));
    const onExit = () => killTree(child.pid, 'SIGKILL');
    process.on('exit', onExit);

    const url = `http://127.0.0.1:${port}`;
    let stopping;
    const stop = () =>
      (stopping ??= (async () => {
        process.off('exit', onExit);
        if (!exited) {
          killTree(child.pid, 'SIGTERM');
          const t = setTimeout(() => killTree(child.pid, 'SIGKILL'), 5000);
          await exitPromise;
          clearTimeout(t);
        }
        // make sure nothing of the group lingers (extension hosts exit on their own, but don't wait for that)
        killTree(child.pid, 'SIGKILL');
      })());

    const deadline = Date.now() + timeoutMs;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) {
          ready = true;
          break;
        }
      } catch {
        /* not listening yet */
      }
      await Promise.race([delay(200), exitPromise]);
    }
    if (ready) {
      const extensionDevelopmentPath = opts.extensionDevelopmentPath;
      return {
        url,
        port,
        pid: child.pid,
        logFile,
        workspace,
        extensionDevelopmentPath,
        /** openWorkbench() on this server's workspace, with its extensionDevelopmentPath (override via `more`). */
        open: (page, more = {}) => openWorkbench(page, { url, folder: workspace, extensionDevelopmentPath, ...more }),
        stop,
      };
    }
    await stop();
    const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    lastErr = new Error(
      exited
        ? `code-server exited (${exited.signal || exited.code}) before answering on ${url}; log: ${logFile}\n${tail}`
        : `code-server did not answer on ${url} within ${timeoutMs / 1000} s; log: ${logFile}\n${tail}`,
    );
    if (opts.port || !/EADDRINUSE/.test(tail)) break; // only a lost port race is worth another try
  }
  throw lastErr;
}

// ---------------------------------------------------------------------------------------------
// Chromium + the workbench

function loadPlaywright() {
  const req = createRequire(path.join(PW_DIR, 'package.json'));
  return req('playwright-core');
}

/**
 * Headless Debian Chromium through playwright-core, with a fresh profile.
 * Only loopback host names resolve (pass allowExternal: true to lift that).
 * @param {{headless?: boolean, args?: string[], viewport?: {width:number,height:number}, timeoutMs?: number, allowExternal?: boolean}} [opts]
 */
export async function launchChromium(opts = {}) {
  const { chromiumPath } = await ensureCodeServer({ quiet: true });
  const { chromium } = loadPlaywright();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attnscope-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: opts.headless ?? true,
      args: [
        ...CHROMIUM_FLAGS,
        // resolve nothing but loopback: the workbench must not reach out (and offline it can't anyway)
        ...(opts.allowExternal ? [] : ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost']),
        ...(opts.args || []),
      ],
      viewport: opts.viewport ?? { width: 1440, height: 900 },
      timeout: opts.timeoutMs ?? 60_000,
    });
  } catch (err) {
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] || (await context.newPage());
  // playwright kills the browser on SIGINT/SIGTERM/exit by itself (and exits 130 on SIGINT); drop the profile then too
  const onExit = () => fs.rmSync(userDataDir, { recursive: true, force: true });
  process.on('exit', onExit);
  let closing;
  const close = () =>
    (closing ??= (async () => {
      await context.close().catch(() => {});
      process.off('exit', onExit);
      onExit();
    })());
  return { context, page, userDataDir, close };
}

/** `vscode-remote://127.0.0.1:PORT/abs/path` for a path on the code-server machine. */
export function remoteUri(serverUrl, p) {
  const { host } = new URL(serverUrl);
  const abs = path.resolve(p).split(path.sep).join('/');
  return `vscode-remote://${host}${abs.startsWith('/') ? '' : '/'}${abs}`;
}

/** The workbench URL: ?folder=...&payload=[["extensionDevelopmentPath", ...], ["extensionTestsPath", ...]] */
export function workbenchUrl({ url, folder, extensionDevelopmentPath, extensionTestsPath }) {
  const base = new URL(url);
  const params = [];
  if (folder) params.push(`folder=${encodeURIComponent(path.resolve(folder))}`);
  const payload = [];
  for (const p of [].concat(extensionDevelopmentPath || [])) payload.push(['extensionDevelopmentPath', remoteUri(url, p)]);
  if (extensionTestsPath) payload.push(['extensionTestsPath', remoteUri(url, extensionTestsPath)]);
  if (payload.length) params.push(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
  return `${base.origin}/${params.length ? `?${params.join('&')}` : ''}`;
}

/**
 * Open the workbench in `page` and wait for `.monaco-workbench`.
 * @param {import('playwright-core').Page} page
 * @param {{url: string, folder: string, extensionDevelopmentPath?: string|string[], extensionTestsPath?: string, timeoutMs?: number}} opts
 * @returns {Promise<string>} the URL opened
 */
export async function openWorkbench(page, opts) {
  const timeout = opts.timeoutMs ?? 90_000;
  const target = workbenchUrl(opts);
  await page.goto(target, { waitUntil: 'domcontentloaded', timeout });
  await page.waitForSelector('.monaco-workbench', { timeout });
  return target;
}

/**
 * Run an extension-tests module (exports `run(): Promise<void>`) in the remote extension host, the
 * way @vscode/test-web does: VS Code calls `window.codeAutomationExit(code)` in the page when the
 * module's run() settles (0: resolved, 1: rejected). Extension-host console output is forwarded
 * to the page console and collected in `logs`.
 * @param {import('playwright-core').Page} page a fresh page (the function exposes bindings on it)
 * @param {{url: string, folder: string, extensionDevelopmentPath: string, extensionTestsPath: string,
 *          timeoutMs?: number, onLog?: (line: string) => void}} opts
 * @returns {Promise<{exitCode: number, logs: string[]}>}
 */
export async function runExtensionTests(page, opts) {
  const timeout = opts.timeoutMs ?? 120_000;
  const logs = [];
  const log = (line) => {
    logs.push(line);
    if (opts.onLog) opts.onLog(line);
  };
  let resolveExit;
  const exited = new Promise((r) => (resolveExit = r));
  await page.exposeFunction('codeAutomationExit', (code) => resolveExit(Number(code)));
  // VS Code forwards the extension host's console here as (type, argsArray); the args are console-style (format string first).
  await page.exposeFunction('codeAutomationLog', (type, args) => log(`[${type}] ${util.format(...[].concat(args))}`));
  page.on('console', (msg) => log(`[console.${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => log(`[pageerror] ${err.message}`));
  await openWorkbench(page, { ...opts, timeoutMs: timeout });
  let timer;
  const exitCode = await Promise.race([
    exited,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`extension tests did not finish within ${timeout / 1000} s`)), timeout);
    }),
  ]).finally(() => clearTimeout(timer));
  return { exitCode, logs };
}

// ---------------------------------------------------------------------------------------------
// CLI

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const t0 = Date.now();
  ensureCodeServer()
    .then((r) => {
      const show = (p) => (path.relative(process.cwd(), p).startsWith('..') ? p : path.relative(process.cwd(), p));
      progress(`code-server ${CODE_SERVER_VERSION}: ${show(r.codeServerEntry)}`);
      progress(`playwright-core ${PLAYWRIGHT_CORE_VERSION}: ${show(r.playwrightCorePath)}`);
      progress(`chromium: ${r.chromiumPath}  (${((Date.now() - t0) / 1000).toFixed(2)} s)`);
    })
    .catch((err) => {
      process.stderr.write(`[codeserver] FAILED: ${err instanceof EnsureError ? err.message : err.stack || err}\n`);
      process.exit(1);
    });
}
