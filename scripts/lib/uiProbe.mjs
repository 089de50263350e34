// What the UI measurement scripts (scripts/ui-timings.mjs, scripts/ui-8k.mjs) and the e2e test share:
// their flags, bench's prompt, and the page-side probe of the prompt editor's overlay tint.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './testenv.mjs';
import { workbench } from './workbench.mjs';

/** `--name value` from the command line, or `def`. */
export function opt(name, def) {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// bench's prompt (src/cli/bench.ts promptOfTokens), with the engine's tokenizer

export function benchPrompt(modelDir, tokens) {
  const entry = `
    import { loadTokenizer } from ${JSON.stringify(path.join(REPO, 'src/engine/sources/tokenizer.ts'))};
    const WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'then', 'it', 'saw', 'river', 'stone', 'light', 'house', 'green', 'bird', 'over', 'when', 'music', 'paper'];
    const [dir, n] = [process.argv[2], Number(process.argv[3])];
    const tok = await loadTokenizer(dir);
    let words = n;
    for (;;) {
      const text = Array.from({ length: words }, (_, i) => WORDS[(i * 7 + (i >> 3)) % WORDS.length]).join(' ');
      if ((await tok.encode(text)).length >= n) {
        let w = words;
        while (w > 1 && (await tok.encode(text.split(' ').slice(0, w - 1).join(' '))).length >= n) w--;
        process.stdout.write(text.split(' ').slice(0, w).join(' '));
        break;
      }
      words = Math.ceil(words * 1.3);
    }`;
  const out = path.join(REPO, 'out', `ui-prompt-${process.pid}.mjs`); // next to node_modules (tokenizers resolves)
  const b = spawnSync(path.join(REPO, 'node_modules/esbuild/bin/esbuild'), ['--bundle', '--platform=node', '--format=esm', `--outfile=${out}`, '--external:tokenizers', '--log-level=error', '--banner:js=import{createRequire as __cr}from"module";const require=__cr(import.meta.url);'], { input: entry, cwd: REPO, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`bundling the prompt maker failed: ${b.stderr}`);
  const r = spawnSync(process.execPath, [out, modelDir, String(tokens)], { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') } });
  fs.rmSync(out, { force: true });
  if (r.status !== 0) throw new Error(`making the prompt failed: ${r.stderr}`);
  return r.stdout;
}

// the tint of OverlayDecorations (src/extension/decorations.ts): dark and light theme variants
export const TINT = /rgba\((255, 150, 40|235, 110, 0), 0?\.\d+\)/.source;

/**
 * A page-side function (source text) of a Monaco editor element: its overlay tint, the decoration
 * elements in the view overlays painted with the tint colour. Adjacent tokens of the same level
 * render as one element, so besides the element count it gives the tinted width in pixels and a
 * signature of (line, left, width, level).
 */
export const TINT_OF = `((ed) => {
  const re = new RegExp(${JSON.stringify(TINT)});
  let elements = 0, width = 0; const sig = [];
  if (!ed) return { elements, width, sig: '' };
  for (const el of ed.querySelectorAll('.view-overlays [class*="ced-"]')) {
    if (!re.test(getComputedStyle(el).backgroundColor)) continue;
    const w = el.getBoundingClientRect().width;
    if (w <= 0) continue;
    elements++; width += w;
    sig.push(el.parentElement.style.top + '/' + el.style.left + '/' + Math.round(w) + '/' + el.className);
  }
  return { elements, width: Math.round(width), sig: sig.join(';') };
})`;

/**
 * Installs in the workbench page: window.__tint() (the .prompt editor's tint, TINT_OF),
 * window.__status() (the AttnScope status bar text) and window.__arm(oldSig), a waiter set off by
 * the next mousedown/keydown whose window.__done resolves at the first frame after the tint changed.
 */
export const INSTALL = `(() => {
  const editorEl = () => [...document.querySelectorAll('.editor-group-container .monaco-editor')].find((e) => e.querySelector('.view-lines') && e.closest('.editor-group-container').querySelector('.tab.active')?.textContent.includes('.prompt'));
  const tintOf = ${TINT_OF};
  window.__tint = () => tintOf(editorEl());
  const status = () => [...document.querySelectorAll('.statusbar-item')].map((e) => e.textContent).find((t) => /tok|Running/.test(t)) ?? '';
  window.__status = status;
  // Arms a waiter: the next mousedown/keydown's timeStamp is t0; resolves at the first frame after a
  // mutation of the editor's overlays that leaves a tint (width > 0) different from \`oldSig\`.
  window.__arm = (oldSig) => {
    let t0 = null, mutations = 0;
    const onInput = (e) => { if (t0 === null) t0 = e.timeStamp; };
    document.addEventListener('mousedown', onInput, true);
    document.addEventListener('keydown', onInput, true);
    window.__done = new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error('the tint did not change within 120 s')), 120000);
      const ed = editorEl();
      const mo = new MutationObserver(() => {
        mutations++;
        if (t0 === null) return;
        const s = window.__tint();
        if (s.width === 0 || s.sig === oldSig) return;
        const tMut = performance.now();
        const running = /Running/.test(status());
        mo.disconnect();
        document.removeEventListener('mousedown', onInput, true);
        document.removeEventListener('keydown', onInput, true);
        requestAnimationFrame((tFrame) => resolve({ ms: Math.round(tFrame - t0), mutMs: Math.round(tMut - t0), running, mutations, sig: s.sig, width: s.width, wallT0: performance.timeOrigin + t0, wallMut: performance.timeOrigin + tMut }));
      });
      mo.observe(ed.querySelector('.view-overlays'), { childList: true, subtree: true, attributes: true, characterData: true });
    });
    return true;
  };
})()`;

/**
 * In the opened workbench: Dark Modern, the workspace's long.prompt (holding `prompt`) in the editor,
 * INSTALL, a first Inspect Attention (its time said), then the cursor on the last visible line (the
 * richest overlay on screen) once the tint shows. Returns the palette helpers, the status bar's idle
 * and Running items and the editor.
 */
export async function openPromptAndInspect(page, prompt, say) {
  const { input, palette, setTheme } = workbench(page);
  const statusIdle = page.locator('.statusbar-item', { hasText: / tok · \d+ ms/ });
  const running = page.locator('.statusbar-item', { hasText: /Running/ });
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'long.prompt' }).first().waitFor();
  await setTheme('Default Dark Modern', 'vs-dark');
  await page.keyboard.press('F1');
  await input.waitFor();
  await input.fill('long.prompt');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'long.prompt' }).first().waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: 'long.prompt' }).waitFor();
  const editor = page.locator('.editor-group-container .monaco-editor').first();
  await editor.locator('.view-lines', { hasText: prompt.slice(0, 12) }).waitFor();
  await page.evaluate(INSTALL);
  const t = Date.now();
  await palette('AttnScope: Inspect Attention');
  await statusIdle.waitFor();
  say(`first inspection: ${(Date.now() - t) / 1000} s (status "${(await statusIdle.first().textContent()).trim()}")`);
  await editor.locator('.view-lines').click();
  await page.keyboard.press('Control+End');
  await page.waitForFunction('window.__tint().width > 50');
  return { input, palette, setTheme, statusIdle, running, editor };
}
