#!/usr/bin/env node
'use strict';
// Entry point of the `attnscope` CLI. Builds the bundle on first use when `prepare` did not run.
const path = require('node:path');
const fs = require('node:fs');
const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
if (!fs.existsSync(cli)) {
  const { execFileSync } = require('node:child_process');
  try {
    execFileSync(process.execPath, [path.join(root, 'esbuild.mjs')], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    process.stderr.write('attnscope: the CLI is not built and building it failed; run `npm install` in ' + root + '\n');
    process.exit(1);
  }
}
require(cli).main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
