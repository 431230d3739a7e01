// The socket's constants, in a module of their own that imports nothing: clients that
// need only these (the SDK, the web client) then bundle no schema code.

export const WS_SUBPROTOCOL = 'parley.v1';
/** Browsers cannot set headers on a WebSocket: they offer `parley.auth.<access token>` as a second subprotocol. */
export const WS_AUTH_SUBPROTOCOL_PREFIX = 'parley.auth.';

/**
 * Close codes. 1000–1015 are the standard ones the gateway uses; 4000–4999 are Parley's.
 * `reconnect` tells a client what to do (docs/protocol.md).
 */
export const CloseCodes = {
  NORMAL: { code: 1000, reconnect: 'no', meaning: 'Closed by the client or server on purpose.' },
  POLICY_VIOLATION: { code: 1008, reconnect: 'no', meaning: 'Forbidden Origin or a protocol abuse.' },
  TOO_LARGE: { code: 1009, reconnect: 'backoff', meaning: 'A frame exceeded the size limit.' },
  INTERNAL_ERROR: { code: 1011, reconnect: 'backoff', meaning: 'The gateway failed unexpectedly.' },
  SERVER_DRAINING: { code: 1012, reconnect: 'immediately', meaning: 'The node is restarting; reconnect (to another).' },
  AUTH_EXPIRED: { code: 4001, reconnect: 'after-refresh', meaning: 'The access token expired and was not refreshed.' },
  AUTH_INVALID: { code: 4002, reconnect: 'after-login', meaning: 'The token was refused when checked again.' },
  SESSION_REVOKED: { code: 4003, reconnect: 'after-login', meaning: 'The session was revoked (logout, token theft).' },
  RATE_LIMITED: { code: 4008, reconnect: 'backoff', meaning: 'Sustained flood beyond the per-connection rate.' },
  SLOW_CONSUMER: { code: 4009, reconnect: 'backoff', meaning: 'The client read too slowly; its send buffer filled.' },
  HEARTBEAT_TIMEOUT: { code: 4010, reconnect: 'backoff', meaning: 'No pong to the server ping in time.' },
} as const;
export type CloseCodeName = keyof typeof CloseCodes;
