#!/usr/bin/env bash
# One model, start to end: checkpoint, parity against transformers, timings. Results in $WORK/<name>.*
#   WORK=/tmp/brs ATTNSCOPE_CACHE=/tmp/brs/cache PY=/tmp/hfvenv/bin/python tools/bench-real-shapes/run_one.sh <name> [tokens] [runs]
# PARITY_ONLY=1 skips the timings; LABEL=x names the run (default <name>) and MAKE_ARGS="--set k=v ..."
# goes to make_checkpoint.py (a shrunk variant of the family, or --v4-config).
# Run from the repository root after `node esbuild.mjs`. Each heavy step runs under nice and
# /usr/bin/time -v (peak RSS); `uptime` is logged beside every number.
set -euo pipefail
name=$1; T=${2:-512}; R=${3:-3}
WORK=${WORK:-/tmp/brs}; PY=${PY:-python3}; export ATTNSCOPE_CACHE=${ATTNSCOPE_CACHE:-$WORK/cache}
model=$name; name=${LABEL:-$model}
dir=$WORK/$name; log=$WORK/$name.log; here=tools/bench-real-shapes
mkdir -p "$WORK"
step() { echo "== $1 | $(date -u +%H:%M:%S) | $(uptime | sed 's/.*load average/load average/')" | tee -a "$log"; }
timed() { /usr/bin/time -v -o "$WORK/$name.$1.time" nice -n 10 "${@:2}"; grep -E "Maximum resident|Elapsed" "$WORK/$name.$1.time" | tee -a "$log"; }
[ -f "$dir/model.safetensors" ] || [ -f "$dir/model.safetensors.index.json" ] || { step make; timed make "$PY" $here/make_checkpoint.py "$model" "$dir" ${MAKE_ARGS:-} >/dev/null; cat "$dir/bench-real-shapes.json" >> "$log"; }
step "attnscope inspect (cold: converts weights)"
timed inspect node bin/attnscope.js inspect $here/prompt.txt --model "$dir" --logits --attention all --json "$WORK/$name.as.json"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print('cold', d['timings'])" "$WORK/$name.as.json" | tee -a "$log"
step "hf_compare"
timed hfcmp "$PY" $here/hf_compare.py "$dir" $here/prompt.txt "$WORK/$name.hf.json" 2>/dev/null
step compare
"$PY" $here/compare.py "$WORK/$name.as.json" "$WORK/$name.hf.json" | tee -a "$log" || echo "PARITY FAILED" | tee -a "$log"
[ -n "${PARITY_ONLY:-}" ] && { step done; exit 0; }
step "attnscope bench $T x $R (warm load)"
timed bench node bin/attnscope.js bench --model "$dir" --tokens "$T" --runs "$R" --json "$WORK/$name.bench.json"
cat "$WORK/$name.bench.json" | tee -a "$log"; echo | tee -a "$log"
step "hf eager $T"
timed hfbench "$PY" $here/hf_bench.py "$dir" "$T" "$R" 2>/dev/null | tee -a "$log"
step done
