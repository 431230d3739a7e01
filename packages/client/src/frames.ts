import type { ClientFrame, ServerFrame } from '@parley/protocol';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A client request without its `id` (the connection assigns one). */
export type ClientRequest = DistributiveOmit<ClientFrame, 'id'>;

/** The server frame of one type, e.g. `ServerFrameOf<'hello'>`. */
export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;
/** The first frame on a socket. */
export type HelloFrame = ServerFrameOf<'hello'>;
/** A reply to a request: `ack` (or `pong` for `ping`). */
export type ReplyFrame = ServerFrameOf<'ack'> | ServerFrameOf<'pong'>;

const KNOWN = new Set<string>([
  'hello',
  'ack',
  'error',
  'pong',
  'message',
  'message.updated',
  'read',
  'typing',
  'presence',
  'membership',
  'contact',
  'resync',
]);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isMessage = (value: unknown): boolean =>
  isObject(value) &&
  typeof value['conversationId'] === 'string' &&
  Number.isSafeInteger(value['seq']) &&
  Number.isSafeInteger(value['rev']);

/**
 * Parses one server frame. Returns `null` for what is not JSON, not an object, or a type
 * this SDK does not know (a newer server may add types; they are ignored, not fatal).
 * The server is trusted to follow its schema; only what the SDK's bookkeeping relies on
 * (message seq and rev, request ids) is checked, so a bad frame cannot corrupt it.
 * The full schemas are `ServerFrame` in `@parley/protocol`; no schema compiler is used
 * here, so the SDK runs under a strict Content-Security-Policy.
 */
export function parseServerFrame(data: unknown): ServerFrame | null {
  if (typeof data !== 'string') return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(value) || typeof value['type'] !== 'string' || !KNOWN.has(value['type'])) return null;
  switch (value['type']) {
    case 'message':
    case 'message.updated':
      if (!isMessage(value['message'])) return null;
      break;
    case 'ack':
    case 'pong':
      if (typeof value['id'] !== 'string') return null;
      if (value['message'] !== undefined && !isMessage(value['message'])) return null;
      break;
    case 'error':
      if (typeof value['code'] !== 'string') return null;
      break;
    case 'hello':
      if (typeof value['userId'] !== 'string') return null;
      break;
    case 'read':
      if (typeof value['conversationId'] !== 'string' || !Number.isSafeInteger(value['lastReadSeq'])) return null;
      break;
  }
  return value as ServerFrame;
}
