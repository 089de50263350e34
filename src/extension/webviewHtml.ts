// The HTML of every AttnScope webview (the panel, the Compare panel and .attnrun editor, the
// Generation panel): one strict CSP with a fresh nonce per page, the codicon stylesheet (vscode-elements
// looks for the link with id vscode-codicon-stylesheet), the bundle's stylesheet and its module
// script, all from dist/.
//
//   CSP: default-src 'none'; style-src ${cspSource}; script-src 'nonce-…'; font-src ${cspSource};
//        img-src ${cspSource} data:
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';

export interface WebviewPage {
  /** the bundle in dist/ without its extension: dist/<script>.js */
  script: string;
  /** the stylesheet in dist/ without its extension (default: the script's name) */
  css?: string;
  title: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function webviewCsp(cspSource: string, nonce: string): string {
  return [`default-src 'none'`, `style-src ${cspSource}`, `script-src 'nonce-${nonce}'`, `font-src ${cspSource}`, `img-src ${cspSource} data:`].join('; ');
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const dist = (f: string) => escapeHtml(webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', f)).toString());
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${webviewCsp(webview.cspSource, nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${dist('codicon.css')}" id="vscode-codicon-stylesheet">
<link rel="stylesheet" href="${dist(`${page.css ?? page.script}.css`)}">
<title>${escapeHtml(page.title)}</title>
</head>
<body>
<div id="app"></div>
<script type="module" nonce="${nonce}" src="${dist(`${page.script}.js`)}"></script>
</body>
</html>`;
}

/** Scripts on, and only dist/ (plus any `extra` folders of the extension) readable by the page. */
export function webviewOptions(extensionUri: vscode.Uri, extra: string[] = []): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return { enableScripts: true, localResourceRoots: ['dist', ...extra].map((d) => vscode.Uri.joinPath(extensionUri, d)) };
}
