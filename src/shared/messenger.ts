// The envelope layer of the host ↔ webview protocol: numbered messages, requests answered by a
// reply whose `inReplyTo` names them, and error replies that reject the pending request.
// DOM-free: `post` is injected (vscode.postMessage in the panel, a stub in tests).
import type { Envelope } from './protocol';

export class RequestError extends Error {
  constructor(message: string, readonly code: 'error' | 'timeout' | 'disposed') {
    super(message);
    this.name = 'RequestError';
  }
}

interface Pending<In> {
  resolve(body: In): void;
  reject(err: RequestError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface MessengerOptions<In> {
  /** the error text when a reply is an error reply (e.g. body.type === 'error'), else undefined */
  errorOf?: (body: In) => string | undefined;
  /** reject requests not answered within this many ms; 0 = never (default 30 s) */
  timeoutMs?: number;
}

export class Messenger<In, Out> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<In>>();
  private disposed = false;

  constructor(
    private readonly post: (env: Envelope<Out>) => void,
    private readonly opts: MessengerOptions<In> = {},
  ) {}

  /** Posts a message that expects no reply; returns its messageId. */
  sendEvent(body: Out): number {
    const messageId = this.nextId++;
    if (!this.disposed) this.post({ messageId, body });
    return messageId;
  }

  /** Posts the reply to the other side's message `inReplyTo` (e.g. an error reply); returns its messageId. */
  reply(inReplyTo: number, body: Out): number {
    const messageId = this.nextId++;
    if (!this.disposed) this.post({ messageId, inReplyTo, body });
    return messageId;
  }

  /** Posts a request; resolves with the reply's body, rejects on an error reply or timeout. */
  sendRequest(body: Out): Promise<In> {
    if (this.disposed) return Promise.reject(new RequestError('messenger disposed', 'disposed'));
    const messageId = this.nextId++;
    return new Promise<In>((resolve, reject) => {
      const ms = this.opts.timeoutMs ?? 30_000;
      const timer =
        ms > 0
          ? setTimeout(() => {
              if (this.pending.delete(messageId)) reject(new RequestError(`no reply to request ${messageId} within ${ms} ms`, 'timeout'));
            }, ms)
          : undefined;
      this.pending.set(messageId, { resolve, reject, timer });
      this.post({ messageId, body });
    });
  }

  /**
   * Routes an incoming envelope. Returns true when it was the reply to a pending request (which is
   * now settled); false when the caller should handle it as an event (including replies to
   * requests that are no longer pending).
   */
  receive(env: Envelope<In>): boolean {
    if (env.inReplyTo === undefined) return false;
    const p = this.pending.get(env.inReplyTo);
    if (!p) return false;
    this.pending.delete(env.inReplyTo);
    if (p.timer !== undefined) clearTimeout(p.timer);
    const err = this.opts.errorOf?.(env.body);
    if (err !== undefined) p.reject(new RequestError(err, 'error'));
    else p.resolve(env.body);
    return true;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Rejects every pending request; later sends are dropped. */
  dispose(): void {
    this.disposed = true;
    for (const [, p] of this.pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(new RequestError('messenger disposed', 'disposed'));
    }
    this.pending.clear();
  }
}
