// Validation of everything the webview sends: a malformed message is answered with an error reply
// and never reaches the session. Pure, so unit tests cover it.
import { METRICS, type Envelope, type FromWebview, type HeadRef, type ViewSettings } from '../shared/protocol';

type Parsed = { ok: true; envelope: Envelope<FromWebview> } | { ok: false; error: string; messageId?: number };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 1e6;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function head(v: unknown): HeadRef | undefined {
  return isObj(v) && isInt(v['layer']) && isInt(v['head']) ? { layer: v['layer'], head: v['head'] } : undefined;
}

function heads(v: unknown): HeadRef[] | undefined {
  if (!Array.isArray(v) || v.length > 4096) return undefined;
  const out = v.map(head);
  return out.every((h): h is HeadRef => !!h) ? out : undefined;
}

function settings(v: unknown): Partial<ViewSettings> | undefined {
  if (!isObj(v)) return undefined;
  const out: Partial<ViewSettings> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'aggregation' && (x === 'mean' || x === 'head' || x === 'layer')) out.aggregation = x;
    else if (k === 'direction' && (x === 'from' || x === 'to')) out.direction = x;
    else if (k === 'metric' && METRICS.includes(x as never)) out.metric = x as ViewSettings['metric'];
    else if (k === 'discountSink' && typeof x === 'boolean') out.discountSink = x;
    else return undefined;
  }
  return out;
}

export function parseFromWebview(raw: unknown): Parsed {
  if (!isObj(raw) || !isInt(raw['messageId'])) return { ok: false, error: 'message without a messageId' };
  const messageId = raw['messageId'];
  const b = raw['body'];
  const bad = (what: string): Parsed => ({ ok: false, error: `malformed ${what} message`, messageId });
  if (!isObj(b) || typeof b['type'] !== 'string') return bad('webview');
  const env = (body: FromWebview): Parsed => ({ ok: true, envelope: { messageId, body } });
  switch (b['type']) {
    case 'ready':
      return isInt(b['version']) ? env({ type: 'ready', version: b['version'] }) : bad('ready');
    case 'selectHead':
    case 'toggleMask':
    case 'requestPattern': {
      const h = head(b['head']);
      return h ? env({ type: b['type'], head: h }) : bad(b['type']);
    }
    case 'setScale': {
      const hs = heads(b['heads']);
      return hs && isNum(b['value']) && b['value'] >= 0 && b['value'] <= 100 ? env({ type: 'setScale', heads: hs, value: b['value'] }) : bad('setScale');
    }
    case 'emphasizeSelection': {
      const hs = b['heads'] === 'all' ? 'all' : heads(b['heads']);
      return hs && isNum(b['alpha']) && b['alpha'] > 0 ? env({ type: 'emphasizeSelection', alpha: b['alpha'], heads: hs }) : bad('emphasizeSelection');
    }
    case 'setSink': {
      const hs = heads(b['heads']);
      return hs && isNum(b['value']) && b['value'] > 0 && b['value'] <= 100 ? env({ type: 'setSink', heads: hs, value: b['value'] }) : bad('setSink');
    }
    case 'clearEmphasis':
    case 'reset':
      return env({ type: b['type'] });
    case 'setSettings': {
      const s = settings(b['settings']);
      return s ? env({ type: 'setSettings', settings: s }) : bad('setSettings');
    }
    case 'revealToken':
      return isInt(b['index']) ? env({ type: 'revealToken', index: b['index'] }) : bad('revealToken');
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(String(b['type']).slice(0, 40))}`, messageId };
  }
}
