#!/bin/sh
# Builds the preview harness into /tmp/wvpreview (or $1). Serve it: cd /tmp/wvpreview && python3 -m http.server 8765
set -e
OUT="${1:-/tmp/wvpreview}"
cd "$(dirname "$0")/../.."
mkdir -p "$OUT"
npx esbuild webview/preview.ts --bundle --format=esm --platform=browser --target=es2022 --outfile="$OUT/preview.js" --log-level=warning
cp webview/preview.html "$OUT/index.html"
cp webview/preview/preview-chrome.css "$OUT/preview-chrome.css"
