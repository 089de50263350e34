// `npm run package`: a platform-specific VSIX (the native modules of onnxruntime-node and
// tokenizers for this platform only), built with @vscode/vsce.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const platform = process.env.ATTNSCOPE_TARGET_PLATFORM || process.platform;
const arch = process.env.ATTNSCOPE_TARGET_ARCH || process.arch;
const target = `${platform === 'win32' ? 'win32' : platform}-${arch}`;
const tokenizerSuffix = { 'linux-x64': 'linux-x64-gnu', 'linux-arm64': 'linux-arm64-gnu', 'darwin-x64': 'darwin-x64', 'darwin-arm64': 'darwin-arm64', 'win32-x64': 'win32-x64-msvc', 'win32-arm64': 'win32-arm64-msvc' }[target];
if (!tokenizerSuffix) {
  console.error(`attnscope package: unsupported target ${target}`);
  process.exit(2);
}

const base = readFileSync(join(root, '.vscodeignore'), 'utf8');
const extra = [
  '# other platforms\' native binaries',
  `node_modules/onnxruntime-node/bin/napi-v6/**`,
  `!node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}/**`,
  'node_modules/tokenizers/*.node',
  `!node_modules/tokenizers/tokenizers.${tokenizerSuffix}.node`,
].join('\n');
const ignoreFile = join(root, '.vscodeignore.package');
writeFileSync(ignoreFile, `${base}\n${extra}\n`);
try {
  execFileSync(process.execPath, [join(root, 'esbuild.mjs')], { cwd: root, stdio: 'inherit' });
  const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  const out = join(root, `attnscope-${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}-${target}.vsix`);
  execFileSync(process.execPath, [vsce, 'package', '--target', target, '--ignoreFile', ignoreFile, '--out', out, '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links'], { cwd: root, stdio: 'inherit' });
  console.log(`attnscope package: wrote ${out}`);
} catch (e) {
  console.error(`attnscope package: failed (${e.message.split('\n')[0]})`);
  process.exitCode = 1;
} finally {
  rmSync(ignoreFile, { force: true });
}
