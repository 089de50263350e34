// The numbers of a run as tables: the metrics CSV (every head, every metric, roles, importance when
// present), the ablation CSV, and TSV for the clipboard (one head's row, the grid of one metric).
// Numbers are written as JavaScript prints them (the shortest text that reads back to the same
// double: the model's float32 values exactly), never rounded; n/a is an empty field.
import { headLabel, METRICS, type HeadRef, type HeadSummary } from '../heads';
import { headRoles } from '../headLabels';
import { harm, importanceIndex, rankImportance, type ImportanceView } from '../importance';
import { rankPatching, type PatchingView } from '../patching';
import { gridColoring, type FigureMetric, type FigureModel } from './gridFigure';

type Head = HeadSummary & { scale: number };

/** A number exactly (shortest round-trip text); null / non-finite → empty. */
export function num(v: number | null | undefined): string {
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : '';
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF; a text field starting
 * with = + - @ (a spreadsheet formula) gets a leading apostrophe so opening the file runs nothing.
 */
export function csvField(v: string, text = true): string {
  let s = v;
  if (text && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvRow(fields: { v: string; text?: boolean }[]): string {
  return fields.map((f) => csvField(f.v, f.text ?? false)).join(',');
}

export const METRICS_CSV_COLUMNS = ['layer', 'head', 'label', 'scale', ...METRICS, 'roles', 'importance_metric', 'importance_value', 'importance_delta', 'importance_rank'] as const;

/** Every head of an L×H model, layer-major, with every metric, its roles and its ablation result when present. */
export function metricsCsv(model: FigureModel, heads: readonly Head[], tokens: number, importance: ImportanceView | null): string {
  const L = model.layers;
  const H = model.heads;
  const byKey = new Map(heads.map((h) => [`${h.layer}.${h.head}`, h]));
  const imp = importanceIndex(importance, L, H);
  const rank = new Map<string, number>();
  if (importance) rankImportance(importance).forEach((h, i) => rank.set(`${h.layer}.${h.head}`, i + 1));
  const lines = [METRICS_CSV_COLUMNS.join(',')];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const key = `${l}.${h}`;
      const s = byKey.get(key);
      const i = imp[l * H + h];
      lines.push(
        csvRow([
          { v: String(l) },
          { v: String(h) },
          { v: headLabel({ layer: l, head: h }) },
          { v: num(s?.scale ?? 1) },
          ...METRICS.map((m) => ({ v: num(s ? s[m] : null) })),
          { v: s ? headRoles(s, tokens).join(';') : '', text: true },
          { v: importance ? importance.metric : '' },
          { v: num(i?.value) },
          { v: num(i?.delta) },
          { v: i ? String(rank.get(key) ?? '') : '' },
        ]),
      );
    }
  }
  return lines.join('\r\n') + '\r\n';
}

/** The ablation ranking: most important first, with the measured value, Δ and harm (sign conventions in importance.ts). */
export function importanceCsv(v: ImportanceView): string {
  const lines = [
    `# importance by ablation (Michel et al. 2019); metric ${v.metric}; baseline ${num(v.baseline)}${v.targetText !== null ? `; target ${JSON.stringify(v.targetText)}` : ''}`.replace(/[\r\n]/g, ' '),
    'rank,layer,head,label,metric,value,delta,harm',
  ];
  rankImportance(v).forEach((h, i) =>
    lines.push(csvRow([{ v: String(i + 1) }, { v: String(h.layer) }, { v: String(h.head) }, { v: headLabel(h) }, { v: v.metric }, { v: num(h.value) }, { v: num(h.delta) }, { v: num(harm(v.metric, h.delta)) }])),
  );
  return lines.join('\r\n') + '\r\n';
}

/** The activation-patching effects: largest restoration first; value = log p(target) of the patched corrupt run. */
export function patchingCsv(v: PatchingView): string {
  const lines = [
    `# activation patching clean -> corrupt per head (hook_z); target ${JSON.stringify(v.targetText)} (id ${v.targetId}); clean ${num(v.clean)}; corrupt ${num(v.corrupt)}; clean prompt: ${v.cleanLabel}; effect = (value - corrupt) / (clean - corrupt)`.replace(/[\r\n]/g, ' '),
    'rank,layer,head,label,value,effect',
  ];
  rankPatching(v).forEach((h, i) => lines.push(csvRow([{ v: String(i + 1) }, { v: String(h.layer) }, { v: String(h.head) }, { v: headLabel(h) }, { v: num(h.value) }, { v: num(h.effect) }])));
  return lines.join('\r\n') + '\r\n';
}

/** One TSV field: tabs and newlines replaced by spaces (TSV has no quoting everyone agrees on). */
function tsv(v: string): string {
  return v.replace(/[\t\r\n]+/g, ' ');
}

/** A header line and one head's row: label, scale, every metric (exact), roles, importance Δ when present. */
export function headMetricsTsv(h: HeadRef, heads: readonly Head[], tokens: number, importance: ImportanceView | null): string {
  const s = heads.find((x) => x.layer === h.layer && x.head === h.head);
  if (!s) throw new Error(`head ${headLabel(h)} is not in the run`);
  const d = importance?.heads.find((x) => x.layer === h.layer && x.head === h.head);
  const head = ['head', 'scale', ...METRICS, 'roles', ...(importance ? [`importance_${importance.metric}_delta`] : [])];
  const row = [headLabel(h), num(s.scale), ...METRICS.map((m) => num(s[m])), headRoles(s, tokens).join(';'), ...(importance ? [num(d?.delta)] : [])];
  return `${head.map(tsv).join('\t')}\n${row.map(tsv).join('\t')}\n`;
}

/** The grid of one metric as TSV: a header of H0.., one row per layer L0.., exact values (empty = n/a). */
export function gridTsv(model: FigureModel, heads: readonly Head[], metric: FigureMetric, importance: ImportanceView | null): string {
  const col = gridColoring({ model, heads, metric, importance });
  const H = model.heads;
  const lines = [[metric === 'importance' ? `${importance!.metric} delta` : metric, ...Array.from({ length: H }, (_, h) => `H${h}`)].join('\t')];
  for (let l = 0; l < model.layers; l++) lines.push([`L${l}`, ...col.cells.slice(l * H, (l + 1) * H).map((c) => num(c.value))].join('\t'));
  return lines.join('\n') + '\n';
}
