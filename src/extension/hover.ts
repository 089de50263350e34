// Hover on a token of the inspected document: its most-attended tokens (or, in "to" mode, the
// tokens attending to it most) and the heads most responsible.
import * as vscode from 'vscode';
import type { Session } from './session';
import { escapeMd, legendFor } from './statusBar';

function show(text: string): string {
  const t = text.replace(/\n/g, '⏎').replace(/\t/g, '⇥');
  return '`' + (t.trim() === '' ? t.replace(/ /g, '·') : t).replace(/`/g, "'") + '`';
}

export class TokenHover implements vscode.HoverProvider {
  constructor(private readonly session: Session) {}

  async provideHover(doc: vscode.TextDocument, pos: vscode.Position): Promise<vscode.Hover | undefined> {
    const s = this.session;
    if (!s.run || !s.doc || doc.uri.toString() !== s.doc.toString() || doc.version !== s.docVersion) return undefined;
    const offset = doc.offsetAt(pos);
    const q = s.tokenAt(offset);
    if (q === undefined) return undefined;
    const tok = s.run.tokens[q]!;
    if (offset < s.base + tok.start || offset > s.base + tok.end) return undefined;
    const detail = await s.tokenDetail(q);
    if (!detail) return undefined;
    const md = new vscode.MarkdownString();
    const settings = s.settings;
    const tokenCell = (i: number) => {
      const t = s.run!.tokens[i]!;
      return `${i} ${show(t.special ? t.text : t.text || s.prompt.slice(t.start, t.end))}`;
    };
    if (settings.aggregation === 'rollout') {
      md.appendMarkdown(`**AttnScope** — attention rollout: token ${q} ${show(tok.text)} draws most on:\n\n`);
      md.appendMarkdown('| token | rollout share |\n|---|---:|\n');
      for (const it of detail.items) md.appendMarkdown(`| ${tokenCell(it.token)} | ${it.value.toFixed(3)} |\n`);
      md.appendMarkdown(
        `\n_rollout over all layers (mean of enabled heads, residual mixed in; Abnar & Zuidema 2020); row sums to 1.${settings.direction === 'to' ? ' Rollout is a from-row (where this token\'s representation came from), so the "to" direction does not apply to it.' : ''}_`,
      );
      return new vscode.Hover(md, new vscode.Range(doc.positionAt(s.base + tok.start), doc.positionAt(s.base + tok.end)));
    }
    const dir = detail.direction === 'from' ? 'attends most to' : 'is attended most by';
    md.appendMarkdown(`**AttnScope** — token ${q} ${show(tok.text)} ${dir}:\n\n`);
    md.appendMarkdown('| token | attention | top heads |\n|---|---:|---|\n');
    for (const it of detail.items) {
      const heads = it.heads.map((h) => `L${h.layer}H${h.head} ${h.value.toFixed(2)}`).join(', ');
      md.appendMarkdown(`| ${tokenCell(it.token)} | ${it.value.toFixed(3)} | ${heads} |\n`);
    }
    md.appendMarkdown(`\n_${settings.aggregation === 'mean' ? 'mean over enabled heads' : settings.aggregation === 'layer' ? 'selected layer' : 'selected head'}; toggle direction with Ctrl+Alt+D_`);
    // The tint on screen is the cursor token's row/column, which may be another token than the hovered one.
    const legend = legendFor(s);
    if (legend.length) md.appendMarkdown(`\n\n---\n**Overlay tint:** ${legend.map(escapeMd).join('  \n')}`);
    return new vscode.Hover(md, new vscode.Range(doc.positionAt(s.base + tok.start), doc.positionAt(s.base + tok.end)));
  }
}
