#!/usr/bin/env python3
"""Markdown rows for BENCHMARKS.md from run_one.sh's files in $WORK (default /tmp/brs).

    python summarize.py <label> [<label> ...]
"""
import json
import os
import re
import sys

WORK = os.environ.get("WORK", "/tmp/brs")


def rss_gb(path):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
    return f"{int(m.group(1)) / 1024 / 1024:.1f} GB"


def load_at(log, step):
    for line in log.splitlines():
        if line.startswith(f"== {step}"):
            return line.split("load average: ")[1].split(",")[0]
    return "?"


def main():
    print("| model | params | dtype | config spelling | cold load | warm load | plain 512 | inspect 512 | HF eager 512: all logits / last logits | peak RSS AttnScope: cold open / bench | peak RSS HF | load avg: bench / HF all / HF last |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for label in sys.argv[1:]:
        p = lambda ext: os.path.join(WORK, f"{label}.{ext}")  # noqa: E731
        info = json.load(open(os.path.join(WORK, label, "bench-real-shapes.json")))
        log = open(p("log")).read()
        cold = json.load(open(p("as.json")))["timings"]["loadMs"]
        b = json.load(open(p("bench.json")))
        hfs = [json.loads(line) for line in log.splitlines() if line.startswith('{"tokens": ') and '"threads"' in line]
        hf_all, hf_last = hfs[0], hfs[-1]  # run_one.sh's first run computed every position's logits; the rerun logits_to_keep=1
        print(f"| {label} | {info['params'] / 1e9:.3f} B | {info['dtype']} | {info['config_spelling']} | {cold / 1000:.1f} s | {b['loadMs'] / 1000:.1f} s "
              f"| {b['plainMs'] / 1000:.2f} s | {b['inspectMs'] / 1000:.2f} s (×{b['ratio']}) | {hf_all['inspectMs'] / 1000:.2f} s / {hf_last['inspectMs'] / 1000:.2f} s "
              f"| {rss_gb(p('inspect.time'))} / {rss_gb(p('bench.time'))} | {rss_gb(p('hfbench.time'))} "
              f"| {load_at(log, 'attnscope bench')} / {load_at(log, 'hf eager 512 |')} / {load_at(log, 'hf eager 512 (logits_to_keep=1)')} |")


if __name__ == "__main__":
    main()
