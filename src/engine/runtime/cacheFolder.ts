// The cache folder as a whole: where it is, how big it may grow, what it holds, least-recently-used
// eviction, removal of leftovers from crashed builds, and "clear". One entry per compiled model:
// `<content key>-g<graph version>/` with weights.bin, meta.json, graphs and a `last-used` marker whose
// mtime is touched on every open. Builds happen in `.tmp-*` folders; removals first rename an entry
// to `.trash-*` (atomic, so no other process ever sees half an entry) and then delete it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EngineError } from '../errors';

export const DEFAULT_MAX_GB = 20;
const GB = 1e9;
export const TMP_PREFIX = '.tmp-';
export const TRASH_PREFIX = '.trash-';
export const LAST_USED_FILE = 'last-used';
export const CONTENT_INDEX_FILE = 'content-index.json';
const ENTRY_NAME = /^[0-9a-f]{16,64}-g\d+$/;
/** A build folder untouched this long belongs to a crashed process (a live build writes every few seconds). */
export const STALE_TEMP_MS = 60 * 60 * 1000;
/** An entry used this recently may be open in another process: eviction leaves it (this process's are never evicted). */
export const RECENT_USE_MS = 30 * 60 * 1000;

/** Where to change the cache folder, for error messages. */
export const CACHE_SETTING_HINT = 'set the attnscope.cacheRoot setting (VS Code) or ATTNSCOPE_CACHE (CLI) to another folder';

export function defaultCacheRoot(): string {
  const env = process.env['ATTNSCOPE_CACHE'];
  if (env) return path.resolve(env);
  const xdg = process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'attnscope');
}

/** The size cap in bytes: `gb` when given, else ATTNSCOPE_CACHE_MAX_GB, else DEFAULT_MAX_GB. */
export function cacheMaxBytes(gb?: number): number {
  if (gb !== undefined) {
    if (!Number.isFinite(gb) || gb < 0) throw new EngineError('RUNTIME', `model cache size limit ${gb} GB is not a size; use a number of gigabytes such as ${DEFAULT_MAX_GB}`);
    return gb * GB;
  }
  const env = process.env['ATTNSCOPE_CACHE_MAX_GB'];
  if (env === undefined || env.trim() === '') return DEFAULT_MAX_GB * GB;
  const v = Number(env);
  if (!Number.isFinite(v) || v < 0) throw new EngineError('RUNTIME', `ATTNSCOPE_CACHE_MAX_GB="${env}" is not a size; set it to a number of gigabytes such as ${DEFAULT_MAX_GB}`);
  return v * GB;
}

export function formatBytes(n: number): string {
  if (n >= GB) return `${(n / GB).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${Math.round(n / 1e3)} kB`;
}

/** Entries opened by this process and not yet released: dir -> open count. */
const inUse = new Map<string, number>();

export function markInUse(dir: string): () => void {
  inUse.set(dir, (inUse.get(dir) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (inUse.get(dir) ?? 1) - 1;
    if (n > 0) inUse.set(dir, n);
    else inUse.delete(dir);
  };
}

/** Touches the entry's last-used marker (best effort: a read-only cache still serves). */
export function touchLastUsed(dir: string): void {
  const marker = path.join(dir, LAST_USED_FILE);
  const now = new Date();
  try {
    fs.utimesSync(marker, now, now);
  } catch {
    try {
      fs.writeFileSync(marker, '');
    } catch {
      // read-only cache
    }
  }
}

/** Removes a folder by first renaming it aside, so other processes see it whole or not at all. */
export function removeDir(root: string, dir: string): boolean {
  const trash = path.join(root, `${TRASH_PREFIX}${path.basename(dir)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    fs.renameSync(dir, trash);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
  try {
    fs.rmSync(trash, { recursive: true, force: true });
  } catch {
    // left for the next cleanup
  }
  return true;
}

export interface CacheEntryUsage {
  key: string;
  dir: string;
  bytes: number;
  /** ms since the epoch */
  lastUsed: number;
  /** open in this process */
  inUse: boolean;
}

export interface CacheUsage {
  root: string;
  /** most recently used first */
  entries: CacheEntryUsage[];
  /** entries plus leftovers */
  bytes: number;
  /** bytes in unfinished builds and leftovers */
  tempBytes: number;
}

function treeBytes(p: string): { bytes: number; newest: number } {
  let bytes = 0;
  let newest = 0;
  const walk = (q: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(q);
    } catch {
      return;
    }
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(q);
      } catch {
        // unreadable: count what we can
      }
      for (const n of names) walk(path.join(q, n));
    } else bytes += st.size;
  };
  walk(p);
  return { bytes, newest };
}

function listRoot(root: string): string[] {
  try {
    return fs.readdirSync(root);
  } catch {
    return [];
  }
}

/** What the cache folder holds. */
export function cacheUsage(root = defaultCacheRoot()): CacheUsage {
  const entries: CacheEntryUsage[] = [];
  let tempBytes = 0;
  for (const name of listRoot(root)) {
    const dir = path.join(root, name);
    if (name.startsWith(TMP_PREFIX) || name.startsWith(TRASH_PREFIX)) {
      tempBytes += treeBytes(dir).bytes;
      continue;
    }
    if (!ENTRY_NAME.test(name)) continue;
    const { bytes, newest } = treeBytes(dir);
    let lastUsed = newest;
    try {
      lastUsed = fs.statSync(path.join(dir, LAST_USED_FILE)).mtimeMs;
    } catch {
      // no marker (an older cache): its newest file stands in
    }
    entries.push({ key: name, dir, bytes, lastUsed, inUse: inUse.has(dir) });
  }
  entries.sort((a, b) => b.lastUsed - a.lastUsed);
  return { root, entries, bytes: entries.reduce((a, e) => a + e.bytes, tempBytes), tempBytes };
}

/** Deletes leftovers: trash, build folders idle for STALE_TEMP_MS, and stale graph temp files in entries. */
export function removeLeftovers(root: string, now = Date.now()): void {
  for (const name of listRoot(root)) {
    const p = path.join(root, name);
    try {
      if (name.startsWith(TRASH_PREFIX)) fs.rmSync(p, { recursive: true, force: true });
      else if (name.startsWith(TMP_PREFIX)) {
        if (treeBytes(p).newest < now - STALE_TEMP_MS) fs.rmSync(p, { recursive: true, force: true });
      } else if (name.endsWith('.tmp')) {
        if (fs.statSync(p).mtimeMs < now - STALE_TEMP_MS) fs.rmSync(p, { force: true });
      } else if (ENTRY_NAME.test(name)) {
        for (const f of fs.readdirSync(p)) {
          if (!f.endsWith('.tmp')) continue;
          const q = path.join(p, f);
          if (fs.statSync(q).mtimeMs < now - STALE_TEMP_MS) fs.rmSync(q, { force: true });
        }
      }
    } catch {
      // another process got there first, or the folder is read-only
    }
  }
}

/**
 * Evicts least-recently-used entries until the cache fits in `maxBytes`. Never evicts an entry open
 * in this process, nor one used within RECENT_USE_MS (it may be open elsewhere), so the cache can
 * stay above the cap while everything in it is in use. Returns the evicted entries' folders.
 */
export function evictLeastRecentlyUsed(root: string, maxBytes: number, now = Date.now()): string[] {
  const usage = cacheUsage(root);
  let total = usage.bytes;
  const evicted: string[] = [];
  for (const e of [...usage.entries].reverse()) {
    if (total <= maxBytes) break;
    if (e.inUse || e.lastUsed > now - RECENT_USE_MS) continue;
    if (removeDir(root, e.dir)) {
      total -= e.bytes;
      evicted.push(e.dir);
    }
  }
  return evicted;
}

export interface ClearResult {
  removed: number;
  bytes: number;
  /** entries left because this process has them open */
  keptInUse: number;
}

/** Removes every entry not open in this process, every leftover and the content-hash index. */
export function clearCache(root = defaultCacheRoot()): ClearResult {
  const usage = cacheUsage(root);
  let removed = 0;
  let bytes = 0;
  let keptInUse = 0;
  const failed: string[] = [];
  for (const e of usage.entries) {
    if (e.inUse) {
      keptInUse++;
      continue;
    }
    if (removeDir(root, e.dir)) {
      removed++;
      bytes += e.bytes;
    } else failed.push(e.dir);
  }
  for (const name of listRoot(root)) {
    if (!name.startsWith(TMP_PREFIX) && !name.startsWith(TRASH_PREFIX) && name !== CONTENT_INDEX_FILE) continue;
    try {
      fs.rmSync(path.join(root, name), { recursive: true, force: true });
    } catch {
      failed.push(path.join(root, name));
    }
  }
  bytes += usage.tempBytes;
  if (failed.length) {
    throw new EngineError('RUNTIME', `${failed[0]}: cannot be removed${failed.length > 1 ? ` (nor ${failed.length - 1} more)` : ''}; check the permissions of ${root} or close the programs using it`);
  }
  return { removed, bytes, keptInUse };
}

/** One line for a file-system failure in the cache folder: what, where, and which setting to change. */
export function cacheFolderError(root: string, e: unknown, doing: string, needBytes?: number): EngineError {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  const need = needBytes ? ` (about ${formatBytes(needBytes)} needed)` : '';
  switch (code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new EngineError('RUNTIME', `${root}: the model cache folder is not writable (${code}) while ${doing}; ${CACHE_SETTING_HINT}`);
    case 'ENOTDIR':
    case 'EEXIST':
      return new EngineError('RUNTIME', `${root}: cannot be the model cache folder, part of that path is a file (${code}); ${CACHE_SETTING_HINT}`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new EngineError('RUNTIME', `${root}: no space left on the disk (${code}) while ${doing}${need}; free some space or ${CACHE_SETTING_HINT} on another disk`);
    default:
      return new EngineError('RUNTIME', `${root}: the model cache failed (${code}) while ${doing}; ${CACHE_SETTING_HINT}`);
  }
}
