// The inline overlay: a fixed, cached set of decoration types (one per tint level plus the cursor
// token outline), all set whenever an editor's tint changes, so stale ranges always clear.
import * as vscode from 'vscode';
import type { Session } from './session';
import { OVERLAY_LEVELS, paintSpan, quantize } from '../shared/overlay';
import { samePaint, type OverlayPaint } from './viewLogic';

/** per token: the range the tint paints (leading whitespace left out; null: all whitespace) and the token's full range (the cursor outline) */
type TokenRanges = { paint: vscode.Range | null; full: vscode.Range }[];

export class OverlayDecorations implements vscode.Disposable {
  private readonly levels: vscode.TextEditorDecorationType[] = [];
  private readonly cursor: vscode.TextEditorDecorationType;
  private ranges: TokenRanges | undefined;
  private rangesFor: { runId: number; version: number; uri: string } | undefined;
  /** the run whose document was edited after it ran (its overlay no longer matches the text) */
  private staleRun: number | undefined;
  /**
   * What each editor shows now. update() leaves an editor alone when its paint would not change:
   * every setDecorations makes the editor re-render the decorated lines (~0.1 s of the window's
   * CPU for 2,000 tinted tokens), and a re-run's 'interventions' event or a second 'overlay' event
   * would otherwise repaint the same tint while the model runs on the same cores.
   */
  private painted = new WeakMap<vscode.TextEditor, OverlayPaint<TokenRanges>>();
  /** editors repainted since activation (the tests count them) */
  repaints = 0;

  constructor(private readonly session: Session) {
    for (let i = 1; i <= OVERLAY_LEVELS; i++) {
      const a = (0.07 + (0.6 * i) / OVERLAY_LEVELS).toFixed(3);
      // The underline repeats the level in the text layer: VS Code's word/occurrence highlight
      // (editor.wordHighlightBackground, a neutral grey/blue) paints over backgrounds, and it lands on
      // exactly the repeated tokens induction is about; the orange underline stays visible under it.
      const u = Math.min(1, 0.25 + (0.75 * i) / OVERLAY_LEVELS).toFixed(3);
      this.levels.push(
        vscode.window.createTextEditorDecorationType({
          dark: { backgroundColor: `rgba(255, 150, 40, ${a})`, textDecoration: `underline 2px rgba(255, 150, 40, ${u}); text-underline-offset: 3px` },
          light: { backgroundColor: `rgba(235, 110, 0, ${a})`, textDecoration: `underline 2px rgba(235, 110, 0, ${u}); text-underline-offset: 3px` },
          // a hairline in the editor's background color keeps neighbouring tokens apart
          borderWidth: '0 1px 0 0',
          borderStyle: 'solid',
          borderColor: new vscode.ThemeColor('editor.background'),
          borderRadius: '2px',
          rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
        }),
      );
    }
    this.cursor = vscode.window.createTextEditorDecorationType({
      borderWidth: '1px',
      borderStyle: 'solid',
      borderColor: new vscode.ThemeColor('focusBorder'),
      borderRadius: '2px',
    });
  }

  /** Marks the overlay out of date (the document changed since the run) and clears it. */
  markStale(): void {
    this.staleRun = this.session.run?.runId;
    this.update();
  }

  private tokenRanges(doc: vscode.TextDocument): TokenRanges | undefined {
    const run = this.session.run;
    if (!run) return undefined;
    const uri = doc.uri.toString();
    if (this.rangesFor?.runId === run.runId && this.rangesFor.version === doc.version && this.rangesFor.uri === uri && this.ranges) return this.ranges;
    const base = this.session.base;
    this.ranges = run.tokens.map((t) => {
      const full = new vscode.Range(doc.positionAt(base + t.start), doc.positionAt(base + t.end));
      const span = t.special ? null : paintSpan(run.prompt, t);
      return { full, paint: span ? new vscode.Range(doc.positionAt(base + span[0]), doc.positionAt(base + span[1])) : null };
    });
    this.rangesFor = { runId: run.runId, version: doc.version, uri };
    return this.ranges;
  }

  /**
   * Repaints every visible editor of the inspected document whose tint changed (all of them with
   * `force`: when the set of visible editors changed). Returns the number of tinted tokens.
   */
  update(force = false): number {
    if (force) this.painted = new WeakMap();
    const s = this.session;
    let tinted = 0;
    for (const editor of vscode.window.visibleTextEditors) {
      const isDoc = s.doc && editor.document.uri.toString() === s.doc.toString();
      // Paint only an overlay of the run on screen: between a new run and its first overlay the
      // previous overlay (another run, maybe another length) is never mapped onto the new tokens.
      const fresh = s.run && s.overlay && s.overlay.runId === s.run.runId && s.overlay.values.length === s.run.tokens.length;
      // An edit makes the run's overlay stale until the next run (which clears this by its new id).
      const stale = this.staleRun !== undefined && this.staleRun === s.run?.runId;
      let plan: OverlayPaint<TokenRanges> = { ranges: null, levels: null, cursor: -1 };
      if (isDoc && s.run && s.overlay && fresh && !stale && editor.document.version === s.docVersion) {
        const ranges = this.tokenRanges(editor.document)!;
        const settings = s.settings;
        plan = { ranges, levels: quantize(s.overlay.values, s.run.tokens, settings.colorScale, settings.discountSink), cursor: s.overlay.token };
      }
      const { ranges, levels: q } = plan;
      if (ranges && q) for (let i = 0; i < q.length; i++) if (q[i]! > 0 && ranges[i]!.paint && !ranges[i]!.paint!.isEmpty) tinted++;
      if (samePaint(this.painted.get(editor), plan)) continue;
      const buckets: vscode.Range[][] = this.levels.map(() => []);
      const cursor: vscode.Range[] = [];
      if (ranges && q) {
        for (let i = 0; i < q.length; i++) {
          const lvl = q[i]!;
          const paint = ranges[i]!.paint;
          if (lvl > 0 && paint && !paint.isEmpty) buckets[lvl - 1]!.push(paint);
        }
        const c = ranges[plan.cursor]?.full;
        if (c && !c.isEmpty) cursor.push(c);
      }
      this.levels.forEach((type, i) => editor.setDecorations(type, buckets[i]!));
      editor.setDecorations(this.cursor, cursor);
      this.painted.set(editor, plan);
      this.repaints++;
    }
    return tinted;
  }

  clear(): void {
    for (const editor of vscode.window.visibleTextEditors) {
      for (const t of this.levels) editor.setDecorations(t, []);
      editor.setDecorations(this.cursor, []);
    }
    this.painted = new WeakMap();
  }

  dispose(): void {
    for (const t of this.levels) t.dispose();
    this.cursor.dispose();
  }
}
