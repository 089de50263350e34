// The vocabulary of heads and head metrics that every side speaks (engine, extension, CLI,
// webviews). Plain types and tiny pure functions; no runtime dependencies.
//
// Naming follows TransformerLens: zero-based `layer` and `head`, labels `L{l}H{h}`. The compact
// key "l.h" is what maps and sets are keyed by and what users type on the command line.

export interface HeadRef {
  layer: number;
  head: number;
}

/** "l.h": the key of a head in maps and sets, and its spelling in engine messages and the CLI. */
export function headKey(h: HeadRef): string {
  return `${h.layer}.${h.head}`;
}

/** The inverse of headKey; undefined for anything that is not two non-negative integers "l.h". */
export function parseHeadKey(key: string): HeadRef | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(key);
  if (!m) return undefined;
  const layer = Number(m[1]);
  const head = Number(m[2]);
  return Number.isSafeInteger(layer) && Number.isSafeInteger(head) ? { layer, head } : undefined;
}

/** "L{l}H{h}", the label researchers use. */
export function headLabel(h: HeadRef): string {
  return `L${h.layer}H${h.head}`;
}

export function sameHead(a: HeadRef | null | undefined, b: HeadRef | null | undefined): boolean {
  return !!a && !!b && a.layer === b.layer && a.head === b.head;
}

/** Every head of an L×H model in layer-major order. */
export function allHeads(layers: number, heads: number): HeadRef[] {
  const out: HeadRef[] = [];
  for (let layer = 0; layer < layers; layer++) for (let head = 0; head < heads; head++) out.push({ layer, head });
  return out;
}

export interface MetricInfo {
  /** name for menus, legends and tooltips ("Previous token") */
  label: string;
  /** a few letters for dense places (grid cells, compare info lines) */
  short: string;
  /** one sentence: what the number is */
  description: string;
  /** 'fraction': a share of attention in [0, 1]; 'nats': an entropy */
  unit: 'fraction' | 'nats';
  /** the range of values; [0, null] = unbounded above */
  range: readonly [number, number | null];
  /** where the metric comes from */
  cite: string;
}

/**
 * The head metrics, in the order the inspection graph computes them (the last axis of its
 * `head_metrics [L, H, M]` output). Each is a mean over query rows q = 1..T−1 of one head's
 * attention pattern p (row 0 can only attend to itself). Adding a metric: one entry here plus its
 * computation in the inspection graph (src/engine/graph/inspectionGraph.ts) and the float64
 * reference (test/reference/metrics.ts).
 */
export const METRIC_INFO = {
  entropy: {
    label: 'Entropy',
    short: 'ent',
    description: 'mean entropy of a query row, −Σ p·ln p, in nats: high = broad, low = sharp',
    unit: 'nats',
    range: [0, null],
    cite: 'Clark et al. 2019, What Does BERT Look At?',
  },
  sink: {
    label: 'Attention sink',
    short: 'sink',
    description: 'mean attention to the first token',
    unit: 'fraction',
    range: [0, 1],
    cite: 'Xiao et al. 2023, Efficient Streaming Language Models with Attention Sinks',
  },
  prevToken: {
    label: 'Previous token',
    short: 'prev',
    description: 'mean attention to the previous token',
    unit: 'fraction',
    range: [0, 1],
    cite: 'Olsson et al. 2022, In-context Learning and Induction Heads',
  },
  selfAttn: {
    label: 'Self',
    short: 'self',
    description: 'mean attention of a token to itself',
    unit: 'fraction',
    range: [0, 1],
    cite: 'Clark et al. 2019, What Does BERT Look At?',
  },
  induction: {
    label: 'Induction',
    short: 'ind',
    description: 'attention to the token after an earlier occurrence of the current token (rows with an earlier occurrence only)',
    unit: 'fraction',
    range: [0, 1],
    cite: 'Olsson et al. 2022, In-context Learning and Induction Heads',
  },
  duplicateToken: {
    label: 'Duplicate token',
    short: 'dup',
    description: 'attention to earlier occurrences of the current token (rows whose token occurred before only)',
    unit: 'fraction',
    range: [0, 1],
    cite: 'Wang et al. 2022, Interpretability in the Wild: a Circuit for Indirect Object Identification in GPT-2 small',
  },
} as const satisfies Record<string, MetricInfo>;

export type MetricName = keyof typeof METRIC_INFO;

/** The metric names in graph order. */
export const METRICS = Object.keys(METRIC_INFO) as MetricName[];

export function isMetricName(v: unknown): v is MetricName {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(METRIC_INFO, v);
}

/** One head's metrics; null = not defined for this prompt (e.g. induction without a repeat). */
export type HeadMetrics = Record<MetricName, number | null>;

/** A head with its metrics (a run's summary of one head). */
export type HeadSummary = HeadRef & HeadMetrics;

export function metricLabel(m: MetricName): string {
  return METRIC_INFO[m].label;
}

/** A metric value with its unit, as the views show it: "85.1%", "2.31 nats", "n/a". */
export function formatMetricValue(m: MetricName, v: number | null, short = false): string {
  if (v === null) return 'n/a';
  if (METRIC_INFO[m].unit === 'fraction') return `${(v * 100).toFixed(short ? 0 : 1)}%`;
  return `${v.toFixed(short ? 1 : 2)} nats`;
}

/** Metrics as a display string: two decimals, '–' for null. */
export function formatMetric(v: number | null): string {
  return v === null ? '–' : v.toFixed(2);
}

/** Indexes per-head records by layer · H + head (undefined where a head has none or is out of range). */
export function indexByHead<T extends HeadRef>(heads: readonly T[] | null | undefined, L: number, H: number): (T | undefined)[] {
  const out = new Array<T | undefined>(L * H).fill(undefined);
  if (heads) for (const h of heads) if (h.layer >= 0 && h.layer < L && h.head >= 0 && h.head < H) out[h.layer * H + h.head] = h;
  return out;
}
