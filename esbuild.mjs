// One build script, several bundles. `node esbuild.mjs [--tests] [--tools] [--integration] [--watch]`.
import * as esbuild from 'esbuild';
import { readdirSync, statSync, existsSync, mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

const args = new Set(process.argv.slice(2));
const external = ['vscode', 'onnxruntime-node', 'tokenizers'];
const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', sourcemap: true, external, logLevel: 'warning' };

function walk(dir, pred) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, pred));
    else if (pred(p)) out.push(p);
  }
  return out;
}

const builds = [
  { ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' },
  { ...common, entryPoints: ['src/engine/worker/engineProcess.ts'], outfile: 'dist/engineProcess.js' },
];
if (existsSync('src/extension/extension.ts')) {
  builds.push({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' });
}
if (existsSync('webview/main.ts')) {
  builds.push({ bundle: true, platform: 'browser', format: 'esm', target: 'es2022', sourcemap: true, logLevel: 'warning',
    entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js' });
}
// Compare panel / .attnrun editor and Generation panel (src/extension/runs)
for (const name of ['compare', 'generate']) {
  if (existsSync(`webview/${name}/main.ts`)) {
    builds.push({ bundle: true, platform: 'browser', format: 'esm', target: 'es2022', sourcemap: true, logLevel: 'warning',
      entryPoints: [`webview/${name}/main.ts`], outfile: `dist/${name}.js` });
  }
}
if (args.has('--tests') || args.has('--tools')) {
  builds.push({ ...common, entryPoints: ['tools/gen-bench-model.ts', 'tools/bench-kept.ts'], outdir: 'out/tools', outbase: 'tools' });
}
if (args.has('--integration')) {
  // mocha suite run inside a real extension host (test/integration/index.ts loads out/test/integration/*.itest.js)
  const itests = walk('test/integration', (p) => p.endsWith('.ts'));
  builds.push({ ...common, entryPoints: itests, outdir: 'out/test/integration', outbase: 'test/integration', external: [...external, 'mocha'] });
}
if (args.has('--tests')) {
  const tests = walk('test', (p) => p.endsWith('.test.ts'));
  builds.push({ ...common, entryPoints: tests, outdir: 'out/test', outbase: 'test' });
}

// Codicons for the webview (vscode-elements looks for a link with id vscode-codicon-stylesheet).
mkdirSync('dist', { recursive: true });
for (const f of ['codicon.css', 'codicon.ttf']) {
  const src = join('node_modules', '@vscode', 'codicons', 'dist', f);
  if (existsSync(src)) copyFileSync(src, join('dist', f));
}

if (args.has('--watch')) {
  for (const b of builds) (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
