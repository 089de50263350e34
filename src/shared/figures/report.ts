// A whole run as ONE self-contained HTML file: no network, no script, inline CSS under a strict
// CSP (default-src 'none'; the one <style> allowed by its hash), inline SVG figures. The prompt with
// the overlay tint for the cursor token, the head grid, the selected head's pattern, the top next
// tokens, the interventions, the model and the metric definitions with citations. Every text from
// the prompt, the tokenizer or the model is escaped. Pure: the caller passes the style hash function.
import { formatMetricValue, headLabel, METRIC_INFO, METRICS, type HeadRef, type HeadSummary } from '../heads';
import { ROLE_INFO, ROLE_THRESHOLDS } from '../headLabels';
import { formatImportance, IMPORTANCE_CITE, rankImportance, type ImportanceView } from '../importance';
import { OVERLAY_LEVELS, overlayLegend, paintSpan, quantize, scaleMax, type ColorScale } from '../overlay';
import type { Aggregation, TokenView } from '../protocol';
import type { FigureModel } from './gridFigure';
import { escapeXml as esc, promptExcerpt } from './scene';

export interface ReportInput {
  model: FigureModel & { device: string; kvHeads: number };
  prompt: string;
  tokens: readonly TokenView[];
  heads: readonly (HeadSummary & { scale: number })[];
  next: readonly { id: number; text: string; prob: number }[];
  timings: { runMs: number; loadMs: number };
  truncated: number;
  /** the overlay as the editor shows it, or null */
  overlay: { token: number; direction: 'from' | 'to'; values: Float32Array; aggregation: Aggregation; scale: ColorScale; discountSink: boolean; enabled: number } | null;
  selected: HeadRef | null;
  interventions: readonly string[];
  importance: ImportanceView | null;
  /** the head grid and (optional) the selected head's pattern, as SVG markup without an XML declaration */
  gridSvg: string;
  patternSvg: string | null;
  generatedAt: string;
  version: string;
}

export const REPORT_CSS = `
body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#1a1a1a;background:#fff;margin:24px auto;max-width:1000px;padding:0 16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.prompt{font:13px/1.7 Menlo,Consolas,"DejaVu Sans Mono",monospace;white-space:pre-wrap;word-break:break-word;border:1px solid #ddd;padding:10px;border-radius:4px}
.prompt span.t{box-shadow:inset -1px 0 0 #fff;border-radius:2px}
.prompt .cur{outline:2px solid #0060c0;outline-offset:0}
.prompt .sp{color:#888}
${Array.from({ length: OVERLAY_LEVELS }, (_, i) => `.prompt .l${i + 1}{background:rgba(235,110,0,${(0.07 + (0.6 * (i + 1)) / OVERLAY_LEVELS).toFixed(3)})}`).join('\n')}
.legend span{display:inline-block;width:18px;height:12px;vertical-align:middle;margin-right:1px}
${Array.from({ length: OVERLAY_LEVELS }, (_, i) => `.legend .l${i + 1}{background:rgba(235,110,0,${(0.07 + (0.6 * (i + 1)) / OVERLAY_LEVELS).toFixed(3)})}`).join('\n')}
figure{margin:8px 0}svg{max-width:100%;height:auto}.note{color:#555;font-size:12px}
`.trim();

/** The prompt as HTML: each token's paintable part in a span of its tint level; the cursor token outlined. */
export function promptHtml(prompt: string, tokens: readonly TokenView[], levels: Uint8Array | null, cursor: number | null): string {
  const out: string[] = [];
  let at = 0;
  tokens.forEach((t, i) => {
    if (t.special || t.end <= t.start || t.start < at) {
      if (t.special && t.end === t.start) out.push(`<span class="sp" title="special token ${i}">${esc(t.text)}</span>`);
      return;
    }
    if (t.start > at) out.push(esc(prompt.slice(at, t.start)));
    const span = paintSpan(prompt, t);
    const lvl = levels?.[i] ?? 0;
    const cls = ['t', ...(lvl > 0 && span ? [`l${lvl}`] : []), ...(i === cursor ? ['cur'] : [])].join(' ');
    const title = `token ${i} ${JSON.stringify(t.text)}${levels ? ` · level ${lvl}` : ''}`;
    if (span && span[0] > t.start && i !== cursor) {
      // leading whitespace stays unpainted
      out.push(esc(prompt.slice(t.start, span[0])));
      out.push(`<span class="${cls}" title="${esc(title)}">${esc(prompt.slice(span[0], t.end))}</span>`);
    } else out.push(`<span class="${cls}" title="${esc(title)}">${esc(prompt.slice(t.start, t.end))}</span>`);
    at = t.end;
  });
  if (at < prompt.length) out.push(esc(prompt.slice(at)));
  return out.join('');
}

export function reportHtml(r: ReportInput, styleHash: (css: string) => string): string {
  const m = r.model;
  const o = r.overlay;
  const levels = o && o.values.length === r.tokens.length ? quantize(o.values, r.tokens, o.scale, o.discountSink) : null;
  const legend = o
    ? overlayLegend({
        direction: o.direction,
        aggregation: o.aggregation,
        selected: r.selected,
        enabled: o.enabled,
        total: m.layers * m.heads,
        token: { index: o.token, text: r.tokens[o.token]?.text ?? '' },
        scale: o.scale,
        discountSink: o.discountSink,
        max: scaleMax(o.values, r.tokens, o.discountSink),
      })
    : ['No overlay: move the cursor in the inspected file to choose a query token.'];
  const csp = `default-src 'none'; style-src '${styleHash(REPORT_CSS)}'; img-src 'none'; base-uri 'none'; form-action 'none'`;
  const nextRows = r.next.map((n, i) => `<tr><td class="n">${i + 1}</td><td><code>${esc(JSON.stringify(n.text))}</code></td><td class="n">${n.id}</td><td class="n">${n.prob.toFixed(4)}</td></tr>`).join('\n');
  const metricRows = METRICS.map((k) => {
    const i = METRIC_INFO[k];
    return `<tr><td>${esc(i.label)}</td><td><code>${k}</code></td><td>${esc(i.description)}</td><td>${esc(i.unit)}</td><td>${esc(i.cite)}</td></tr>`;
  }).join('\n');
  const roleRows = Object.values(ROLE_INFO)
    .map((v) => `<tr><td>${esc(v.label)}</td><td>${esc(v.description)}</td><td>${esc(v.cite)}</td></tr>`)
    .join('\n');
  const sel = r.selected ? r.heads.find((h) => h.layer === r.selected!.layer && h.head === r.selected!.head) : undefined;
  const selRow = sel ? `<p>Selected head <b>${headLabel(sel)}</b>: ${METRICS.map((k) => `${esc(METRIC_INFO[k].label)} ${esc(formatMetricValue(k, sel[k]))}`).join(' · ')}</p>` : '';
  const imp = r.importance;
  const impHtml = imp
    ? `<h2>Importance by ablation</h2><p class="note">${esc(imp.metric)}; baseline ${imp.baseline.toPrecision(6)} nats${imp.targetText !== null ? `; target ${esc(JSON.stringify(imp.targetText))}` : ''}. ${esc(IMPORTANCE_CITE)}.</p>
<table><tr><th>rank</th><th>head</th><th>change when masked</th></tr>
${rankImportance(imp)
  .slice(0, 10)
  .map((h, i) => `<tr><td class="n">${i + 1}</td><td>${headLabel(h)}</td><td class="n">${esc(formatImportance(imp.metric, h.delta))}</td></tr>`)
  .join('\n')}</table>`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="AttnScope ${esc(r.version)}">
<title>AttnScope report · ${esc(m.name)} · ${esc(promptExcerpt(r.prompt, 60))}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<h1>AttnScope report</h1>
<p class="meta">${esc(m.name)} (${esc(m.arch)}, ${m.layers} layers × ${m.heads} heads${m.kvHeads !== m.heads ? `, ${m.kvHeads} KV heads` : ''}) · device ${esc(m.device)} · ${r.tokens.length} tokens${r.truncated ? ` (${r.truncated} cut by the token limit)` : ''} · run ${r.timings.runMs.toFixed(1)} ms · generated ${esc(r.generatedAt)} by AttnScope ${esc(r.version)}</p>
<h2>Interventions</h2>
${r.interventions.length ? `<ul>${r.interventions.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>` : '<p>None: the model as loaded.</p>'}
<h2>Prompt</h2>
<p class="note legend">${legend.map(esc).join('<br>')}<br>Scale: ${Array.from({ length: OVERLAY_LEVELS }, (_, i) => `<span class="l${i + 1}" title="level ${i + 1}"></span>`).join('')} (level 1 … ${OVERLAY_LEVELS})</p>
<div class="prompt">${promptHtml(r.prompt, r.tokens, levels, o ? o.token : null)}</div>
<h2>Top next tokens</h2>
<table><tr><th>#</th><th>token</th><th>id</th><th>probability</th></tr>
${nextRows}</table>
<h2>Heads</h2>
<figure>${r.gridSvg}</figure>
${selRow}
${r.patternSvg ? `<h2>Pattern${sel ? ` of ${headLabel(sel)}` : ''}</h2><figure>${r.patternSvg}</figure>` : ''}
${impHtml}
<h2>Definitions</h2>
<p class="note">Each metric is a mean over query rows q = 1..T−1 of one head's attention pattern (row 0 can only attend to itself).</p>
<table><tr><th>metric</th><th>key</th><th>definition</th><th>unit</th><th>source</th></tr>
${metricRows}</table>
<p class="note">Roles are read off the metrics on this prompt (thresholds: sink ≥ ${ROLE_THRESHOLDS.sink}, previous token ≥ ${ROLE_THRESHOLDS.prevToken}, induction ≥ ${ROLE_THRESHOLDS.induction}, duplicate token ≥ ${ROLE_THRESHOLDS.duplicateToken}, self ≥ ${ROLE_THRESHOLDS.selfAttn}, broad: entropy ≥ ${ROLE_THRESHOLDS.broadEntropy} × uniform).</p>
<table><tr><th>role</th><th>meaning</th><th>source</th></tr>
${roleRows}</table>
<p class="note">Attention rollout: Abnar &amp; Zuidema 2020, Quantifying Attention Flow in Transformers. Steering by attention emphasis (PASTA): Zhang et al. 2023, Tell Your Model Where to Attend.</p>
</body>
</html>
`;
}
