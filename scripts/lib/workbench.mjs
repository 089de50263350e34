// Driving the VS Code workbench (code-server in Chromium) like a user, for the e2e tests: the
// command palette and the color theme picker. Every step waits for a condition, never a fixed time.

/** Palette helpers bound to a playwright page. */
export function workbench(page) {
  const input = page.locator('.quick-input-widget input.input');
  /** Runs a command from the command palette (F1), waiting until its entry is focused. */
  const palette = async (title) => {
    await page.keyboard.press('F1');
    await input.waitFor();
    await input.fill(`>${title}`);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: title }).waitFor();
    await page.keyboard.press('Enter');
  };
  /** Picks a color theme as a user would and waits for the workbench class (vs-dark, vs, hc-black). */
  const setTheme = async (theme, workbenchClass) => {
    await page.keyboard.press('F1');
    await input.waitFor();
    await input.fill('>Preferences: Color Theme');
    // "Browse Color Themes in Marketplace" may be ranked first: click the exact entry
    await page.locator('.quick-input-list .monaco-list-row', { hasText: /^\s*Preferences: Color Theme/ }).first().click();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: theme }).first().waitFor();
    await input.fill(theme);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: theme }).waitFor();
    await page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden' });
    await page.locator(`.monaco-workbench.${workbenchClass}`).waitFor();
  };
  return { input, palette, setTheme };
}
