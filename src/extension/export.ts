// Exports of the current run: the head grid and the selected head's pattern as SVG (vector markup
// from src/shared/figures) or PNG (the same scene drawn on the panel's canvas, bytes checked), the
// metrics and ablation tables as CSV, the whole run as one self-contained HTML report, and values
// copied to the clipboard as TSV. A save dialog picks the file (VS Code's own dialog asks before it
// overwrites); a caller may pass {target} instead (tests).
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError } from '../engine/errors';
import { headLabel, type HeadRef } from '../shared/heads';
import { describeInterventions, scaleOf } from '../shared/interventions';
import { fileStem, formatOfPath, parseExportArg, type ExportOptions, type FigureFormat } from '../shared/figures/exportArgs';
import { gridFigure, type FigureMetric, type FigureModel } from '../shared/figures/gridFigure';
import { defaultThemeColors, PAPER, themePalette, type Palette, type PaletteName } from '../shared/figures/palette';
import { patternFigure } from '../shared/figures/patternFigure';
import { reportHtml } from '../shared/figures/report';
import { sceneToSvg, type Scene } from '../shared/figures/scene';
import { gridTsv, headMetricsTsv, importanceCsv, patchingCsv, metricsCsv } from '../shared/figures/tables';
import { PanelHost } from './panel';
import type { Session } from './session';

type Reg = (id: string, fn: (...args: unknown[]) => unknown) => void;

/** PNG pixels per CSS px of a figure (print quality on a 2× screen). */
const PNG_SCALE = 2;

export function registerExportCommands(ctx: vscode.ExtensionContext, session: Session, reg: Reg): void {
  // the ablation CSV entries show only while a ranking holds for the current run
  let hadImportance = false;
  ctx.subscriptions.push(
    session.onDidChange(() => {
      const has = !!session.importance;
      if (has !== hadImportance) void vscode.commands.executeCommand('setContext', 'attnscope.hasImportance', (hadImportance = has));
    }),
  );
  const run = () => {
    const r = session.run;
    const m = session.modelView();
    if (!r || !m) throw new EngineError('PROMPT', 'nothing to export; inspect a prompt first');
    return { run: r, model: m, figModel: { name: m.name, arch: m.arch, layers: m.layers, heads: m.heads } satisfies FigureModel };
  };
  const ivLines = () => describeInterventions(session.interventions, session.prompt);
  const metricOf = (o: ExportOptions): FigureMetric => {
    const m = o.metric ?? PanelHost.current?.gridMetric ?? 'induction';
    if (m === 'importance' && !session.importance) {
      if (o.metric) throw new EngineError('PROMPT', 'no ablation result for this run; run "Rank Heads by Ablation" first');
      return 'induction';
    }
    if (m === 'patching') throw new EngineError('BAD_ARGUMENT', 'figures do not draw patching effects yet; choose another metric in the panel\'s grid to export');
    return m;
  };
  const headOf = (o: ExportOptions): HeadRef => {
    const h = o.head ?? session.selected;
    if (!h) throw new EngineError('PROMPT', 'select a head first (click it in the panel grid or the Heads view)');
    session.checkHead(h);
    return h;
  };

  const paletteFor = (name: PaletteName): Palette => {
    if (name === 'paper') return PAPER;
    const k = vscode.window.activeColorTheme.kind;
    const kind = k === vscode.ColorThemeKind.Light ? 'light' : k === vscode.ColorThemeKind.HighContrast ? 'hc' : k === vscode.ColorThemeKind.HighContrastLight ? 'hc-light' : 'dark';
    return themePalette(PanelHost.current?.themeColors ?? defaultThemeColors(kind));
  };

  const pickPalette = async (o: ExportOptions): Promise<PaletteName | undefined> => {
    if (o.palette) return o.palette;
    if (o.target) return 'paper';
    const last = ctx.workspaceState.get<PaletteName>('attnscope.exportPalette', 'paper');
    const items: (vscode.QuickPickItem & { value: PaletteName })[] = [
      { label: 'Paper', description: 'white background, viridis / RdBu: for papers and slides', value: 'paper' },
      { label: 'Current theme', description: 'the panel’s colors in the current VS Code theme', value: 'theme' },
    ];
    items.sort((a, b) => (a.value === last ? -1 : b.value === last ? 1 : 0));
    const pick = await vscode.window.showQuickPick(items, { title: 'AttnScope: figure colors' });
    if (pick) await ctx.workspaceState.update('attnscope.exportPalette', pick.value);
    return pick?.value;
  };

  /** The file to write: the caller's target, or the save dialog's answer (undefined: cancelled). */
  const target = async (o: ExportOptions, name: string, filters: Record<string, string[]>, label: string): Promise<vscode.Uri | undefined> => {
    if (o.target) return vscode.Uri.file(o.target);
    const dir = session.doc && session.doc.scheme === 'file' ? path.dirname(session.doc.fsPath) : vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    return vscode.window.showSaveDialog({ filters, saveLabel: label, title: `AttnScope: ${label}`, defaultUri: dir ? vscode.Uri.file(path.join(dir, name)) : undefined });
  };

  const write = async (uri: vscode.Uri, data: Uint8Array | string, what: string, quiet: boolean): Promise<vscode.Uri> => {
    await vscode.workspace.fs.writeFile(uri, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    session.log.info(`exported ${what} to ${uri.fsPath}`);
    if (!quiet) {
      void vscode.window.showInformationMessage(`AttnScope: exported ${what} to ${path.basename(uri.fsPath)}`, 'Open').then((pick) => {
        if (pick) void vscode.commands.executeCommand('vscode.open', uri);
      });
    }
    return uri;
  };

  /** PNG through the panel's canvas: the panel is opened when it is not (and waited for). */
  const png = async (scene: Scene): Promise<Uint8Array> => {
    let host = PanelHost.current;
    if (!host) host = PanelHost.show(ctx, session);
    for (let i = 0; i < 150 && !host.ready; i++) await new Promise((r) => setTimeout(r, 100));
    if (!host.ready) throw new EngineError('RUNTIME', 'the AttnScope panel did not open to draw the PNG; open it (AttnScope: Open Panel) and export again, or export SVG');
    return host.rasterize(scene, PNG_SCALE);
  };

  const figure = async (o: ExportOptions, scene: (p: Palette) => Scene, name: string, what: string): Promise<vscode.Uri | undefined> => {
    const palette = await pickPalette(o);
    if (!palette) return undefined;
    const uri = await target(o, `${name}.${o.format ?? 'png'}`, o.format === 'svg' ? { 'SVG image': ['svg'], 'PNG image': ['png'] } : { 'PNG image': ['png'], 'SVG image': ['svg'] }, `Export ${what}`);
    if (!uri) return undefined;
    const format: FigureFormat = formatOfPath(uri.fsPath) ?? o.format ?? 'png';
    const s = scene(paletteFor(palette));
    const file = formatOfPath(uri.fsPath) ? uri : uri.with({ path: `${uri.path}.${format}` });
    return write(file, format === 'svg' ? sceneToSvg(s) + '\n' : await png(s), `${what} (${format.toUpperCase()})`, !!o.target);
  };

  const gridScene = (o: ExportOptions, p: Palette): Scene => {
    const { run: r, figModel } = run();
    return gridFigure({ model: figModel, prompt: r.prompt, heads: r.heads, tokens: r.tokens.length, metric: metricOf(o), importance: session.importance ?? null, interventions: ivLines(), selected: session.selected, palette: p });
  };

  const patternScene = async (head: HeadRef): Promise<(p: Palette) => Scene> => {
    const { run: r, figModel } = run();
    const pattern = await session.pattern(head);
    if (!pattern) throw new EngineError('PROMPT', 'no run to export; inspect a prompt first');
    const metrics = r.heads.find((h) => h.layer === head.layer && h.head === head.head) ?? null;
    return (pal) => patternFigure({ model: figModel, prompt: r.prompt, tokens: r.tokens, head, pattern, metrics, interventions: ivLines(), palette: pal });
  };

  reg('attnscope.exportGrid', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    run();
    const metric = metricOf(o);
    return figure(o, (p) => gridScene(o, p), `${fileStem(session.doc?.fsPath)}-heads-${metric === 'importance' ? `importance-${session.importance!.metric}` : metric}`, 'head grid');
  });

  reg('attnscope.exportPattern', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    run();
    const head = headOf(o);
    const draw = await patternScene(head);
    return figure(o, draw, `${fileStem(session.doc?.fsPath)}-${headLabel(head)}-pattern`, `${headLabel(head)} pattern`);
  });

  reg('attnscope.exportMetricsCsv', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    const { run: r, figModel } = run();
    const uri = await target(o, `${fileStem(session.doc?.fsPath)}-head-metrics.csv`, { CSV: ['csv'] }, 'Export metrics table');
    if (!uri) return undefined;
    return write(uri, metricsCsv(figModel, r.heads, r.tokens.length, session.importance ?? null), 'the metrics table', !!o.target);
  });

  reg('attnscope.exportAblationCsv', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    run();
    const imp = session.importance;
    if (!imp) throw new EngineError('PROMPT', 'no ablation result for this run; run "Rank Heads by Ablation" first');
    const uri = await target(o, `${fileStem(session.doc?.fsPath)}-ablation-${imp.metric}.csv`, { CSV: ['csv'] }, 'Export ablation ranking');
    if (!uri) return undefined;
    return write(uri, importanceCsv(imp), 'the ablation ranking', !!o.target);
  });

  reg('attnscope.exportPatchingCsv', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    run();
    const pv = session.patching;
    if (!pv) throw new EngineError('PROMPT', 'no patching result for this run; run "Patch Heads from a Clean Prompt" first');
    const uri = await target(o, `${fileStem(session.doc?.fsPath)}-patching.csv`, { CSV: ['csv'] }, 'Export patching effects');
    if (!uri) return undefined;
    return write(uri, patchingCsv(pv), 'the patching effects', !!o.target);
  });

  reg('attnscope.exportReport', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    const { run: r, model, figModel } = run();
    const uri = await target(o, `${fileStem(session.doc?.fsPath)}-report.html`, { HTML: ['html'] }, 'Export report');
    if (!uri) return undefined;
    const noDecl = { xmlDeclaration: false };
    const gridSvg = sceneToSvg(gridScene(o, PAPER), noDecl);
    const sel = session.selected;
    const patternSvg = sel ? sceneToSvg((await patternScene(sel))(PAPER), noDecl) : null;
    const s = session.settings;
    const ov = session.overlay && session.overlay.runId === r.runId && session.overlay.values.length === r.tokens.length ? session.overlay : null;
    const enabled = r.heads.filter((h) => scaleOf(session.interventions, h) !== 0).length;
    const html = reportHtml(
      {
        model: { ...figModel, device: model.device, kvHeads: model.kvHeads },
        prompt: r.prompt,
        tokens: r.tokens,
        heads: r.heads,
        next: r.next,
        timings: r.timings,
        truncated: r.truncated,
        overlay: ov ? { token: ov.token, direction: ov.direction, values: ov.values, aggregation: s.aggregation, scale: s.colorScale, discountSink: s.discountSink, enabled } : null,
        selected: sel,
        interventions: ivLines(),
        importance: session.importance ?? null,
        gridSvg,
        patternSvg,
        generatedAt: new Date().toISOString(),
        version: String((ctx.extension.packageJSON as { version?: unknown }).version ?? ''),
      },
      (css) => `sha256-${crypto.createHash('sha256').update(css, 'utf8').digest('base64')}`,
    );
    return write(uri, html, 'the report', !!o.target);
  });

  reg('attnscope.copyMetrics', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    const { run: r } = run();
    const head = headOf(o);
    const text = headMetricsTsv(head, r.heads, r.tokens.length, session.importance ?? null);
    await vscode.env.clipboard.writeText(text);
    if (!o.target) void vscode.window.setStatusBarMessage(`AttnScope: copied the metrics of ${headLabel(head)}`, 3000);
    return text;
  });

  reg('attnscope.copyGrid', async (arg?: unknown) => {
    const o = parseExportArg(arg);
    const { run: r, figModel } = run();
    const metric = metricOf(o);
    const text = gridTsv(figModel, r.heads, metric, session.importance ?? null);
    await vscode.env.clipboard.writeText(text);
    if (!o.target) void vscode.window.setStatusBarMessage(`AttnScope: copied the ${metric} grid (${figModel.layers}×${figModel.heads}) as TSV`, 3000);
    return text;
  });
}
