// The one host of every AttnScope webview (the panel, the Compare panel and .attnrun editor, the
// Generation panel). It owns what they have in common, so that a page keeps only its own `switch`:
//
// - the HTML under a strict CSP with a nonce (webviewHtml.ts) and the webview options;
// - the envelope {messageId, inReplyTo?, body} (src/shared/messenger.ts);
// - the ready gate: the page posts `ready` first and the host sends nothing before it; a page of
//   another protocol version gets a clear error reply (reload the window) and nothing else;
// - validated dispatch: every message is checked by the page's parser (src/shared/validate.ts);
//   an invalid one is logged and answered with an error reply, never thrown into the host; an
//   error thrown by the page's handler becomes the error reply to its message;
// - single-instance show / revive of a panel (SinglePanel, used by the panels' serializers).
import * as vscode from 'vscode';
import { isEngineError } from '../engine/errors';
import { Messenger } from '../shared/messenger';
import type { ParsedMessage } from '../shared/validate';
import { webviewHtml, webviewOptions } from './webviewHtml';

/** Where a host writes what went wrong (the AttnScope log channel). */
export type HostLog = Pick<vscode.LogOutputChannel, 'info' | 'warn'>;

/** What a page tells its host. */
export interface PageSpec<In> {
  /** the bundle in dist/: dist/<script>.js and dist/<script>.css */
  script: string;
  /** the HTML title (and the name the log uses) */
  title: string;
  /** the protocol version the page's `ready` must carry */
  version: number;
  /** checks a raw message from the page (the shared combinators) */
  parse(raw: unknown): ParsedMessage<In>;
  /** extension folders the page may read besides dist/ */
  roots?: string[];
}

type Ready = { type: 'ready'; version: number };

/** The first line of an error's message. */
export function errorLine(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}

/**
 * A webview (a panel's or a custom editor's) speaking one page's protocol. `In` is what the page
 * sends (with `{type: 'ready', version}`), `Out` what the host sends (with `{type: 'error', message}`).
 */
export abstract class WebviewHost<In extends { type: string }, Out extends { type: string }> implements vscode.Disposable {
  /** whether the page has posted a `ready` of the right version; nothing is sent before */
  ready = false;
  /** messages received from the page (tests, the log) */
  received = 0;
  readonly webview: vscode.Webview;
  /** the panel, when the host owns one (disposing either disposes both) */
  readonly panel: vscode.WebviewPanel | undefined;
  protected readonly subs: vscode.Disposable[] = [];
  private readonly messenger: Messenger<never, Out>;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  private disposed = false;

  constructor(
    target: vscode.WebviewPanel | vscode.Webview,
    extensionUri: vscode.Uri,
    private readonly page: PageSpec<In>,
    protected readonly log: HostLog,
  ) {
    this.panel = 'webview' in target ? target : undefined;
    const webview = (this.webview = 'webview' in target ? target.webview : target);
    webview.options = webviewOptions(extensionUri, page.roots);
    webview.html = webviewHtml(webview, extensionUri, { script: page.script, title: page.title });
    this.messenger = new Messenger<never, Out>((env) => void webview.postMessage(env));
    this.subs.push(webview.onDidReceiveMessage((m) => void this.receive(m)));
    if (this.panel) this.subs.push(this.panel.onDidDispose(() => this.dispose()));
  }

  /** Answers the page's `ready` (message `messageId`): the full state, as its reply. */
  protected abstract onReady(messageId: number): void;

  /** Handles a checked message other than `ready`; what it throws becomes the error reply. */
  protected abstract handle(body: Exclude<In, Ready>, messageId: number): Promise<void> | void;

  /** Posts an event; dropped until the page is ready (its `ready` is answered with the full state). */
  protected post(body: Out): void {
    if (this.ready) this.messenger.sendEvent(body);
  }

  /** Posts the reply to the page's message `inReplyTo`; dropped until the page is ready. */
  protected reply(inReplyTo: number, body: Out): void {
    if (this.ready) this.messenger.reply(inReplyTo, body);
  }

  /** Answers a message of the page with an error (also before `ready`: the page asked something). */
  private replyError(message: string, inReplyTo: number | undefined): void {
    // every page's protocol has { type: 'error', message } among the host's messages
    const body = { type: 'error', message } as unknown as Out;
    if (inReplyTo === undefined) this.messenger.sendEvent(body);
    else this.messenger.reply(inReplyTo, body);
  }

  /** Every message from the page enters here (webview.onDidReceiveMessage); never throws. */
  async receive(raw: unknown): Promise<void> {
    if (this.disposed) return;
    this.received++;
    const parsed = this.page.parse(raw);
    if (!parsed.ok) {
      this.log.warn(`${this.page.title}: ignored a message from the page: ${parsed.error}`);
      this.replyError(parsed.error, parsed.messageId);
      return;
    }
    const { messageId, body } = parsed.value;
    if (body.type === 'ready') {
      const { version } = body as unknown as Ready;
      if (version !== this.page.version) {
        const message = `the page speaks protocol version ${version} but the extension speaks ${this.page.version}; reload the window (Developer: Reload Window)`;
        this.log.warn(`${this.page.title}: ${message}`);
        this.ready = false;
        this.replyError(message, messageId);
        return;
      }
      this.ready = true;
      this.onReady(messageId);
      return;
    }
    if (!this.ready) {
      const message = `${body.type} before ready: the page must post ready first`;
      this.log.warn(`${this.page.title}: ${message}`);
      this.replyError(message, messageId);
      return;
    }
    try {
      await this.handle(body as Exclude<In, Ready>, messageId);
    } catch (e) {
      if (isEngineError(e) && e.code === 'CANCELLED') return;
      const message = errorLine(e);
      this.log.info(`${this.page.title}: ${body.type}: ${message}`);
      if (!this.disposed) this.replyError(message, messageId);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.messenger.dispose();
    for (const d of this.subs) d.dispose();
    this.panel?.dispose();
    this.disposeEmitter.fire();
    this.disposeEmitter.dispose();
  }
}

/** What SinglePanel keeps: a host of a panel. */
export interface PanelOwner extends vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  readonly onDidDispose: vscode.Event<void>;
}

/**
 * One panel of a view type at a time: `show` reveals the open one or opens a new one beside the
 * editor; `revive` adopts the panel VS Code restored after a window reload (from the view type's
 * serializer), replacing the open one.
 */
export class SinglePanel<H extends PanelOwner> {
  current: H | undefined;

  constructor(
    readonly viewType: string,
    /** extension folders the page may read besides dist/ */
    private readonly roots: string[] = [],
  ) {}

  show(ctx: vscode.ExtensionContext, title: string, create: (panel: vscode.WebviewPanel) => H): H {
    if (this.current) {
      this.current.panel.reveal(vscode.ViewColumn.Beside, true);
      return this.current;
    }
    const panel = vscode.window.createWebviewPanel(this.viewType, title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, webviewOptions(ctx.extensionUri, this.roots));
    return this.adopt(ctx, panel, create);
  }

  revive(ctx: vscode.ExtensionContext, panel: vscode.WebviewPanel, create: (panel: vscode.WebviewPanel) => H): H {
    this.current?.dispose();
    return this.adopt(ctx, panel, create);
  }

  private adopt(ctx: vscode.ExtensionContext, panel: vscode.WebviewPanel, create: (panel: vscode.WebviewPanel) => H): H {
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'attnscope.svg');
    const host = create(panel);
    this.current = host;
    host.onDidDispose(() => {
      if (this.current === host) this.current = undefined;
    });
    return host;
  }
}
