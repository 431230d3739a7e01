// @ts-check
/**
 * Parley's wire protocol as the k6 scripts speak it: the REST requests they make, the
 * WebSocket frames they send, and the reading of what comes back.
 *
 * This file imports nothing, so the same code runs inside k6 and under jest:
 * tests/load/k6-protocol.test.ts validates every builder here against the schemas the
 * gateway and the message service enforce (packages/protocol), checks every route against
 * the service's OpenAPI document, and drives a real gateway with these frames. A protocol
 * change that would break the load scripts therefore breaks that test first.
 *
 * The syntax stays within what k6 v0.45's JavaScript runtime parses (no optional
 * chaining, `??`, logical assignment, object spread or class fields); the same test
 * rejects those constructs in every file under tests/load/k6.
 */

/** Path of the gateway's WebSocket endpoint (nginx routes it to a gateway). */
export const WS_PATH = '/ws';
/** Offered on every upgrade: it names the protocol version (docs/protocol.md, Connecting). */
export const WS_SUBPROTOCOL = 'parley.v1';
/** The SDK's deadline for a request's reply; a reply can be lost with its socket. */
export const REQUEST_TIMEOUT_MS = 15000;
/** Protocol limits the builders check early, so a bad setting fails at start, not as server errors. */
export const BODY_MAX_LENGTH = 4000;
export const ID_MAX_LENGTH = 64;
export const GROUP_MEMBERS_PER_REQUEST = 1000;
export const SYNC_LIMIT_MAX = 1000;
export const CONVERSATION_PAGE_MAX = 200;

/**
 * Every REST route the scripts call, as the OpenAPI document names it. `name` doubles as
 * the k6 `name` tag, so samples of one route aggregate whatever the ids in its URL.
 * @typedef {{ method: 'GET' | 'POST', route: string }} Route
 * @type {{ [key: string]: Route }}
 */
export const ROUTES = {
  register: { method: 'POST', route: '/v1/auth/register' },
  login: { method: 'POST', route: '/v1/auth/login' },
  refresh: { method: 'POST', route: '/v1/auth/refresh' },
  listConversations: { method: 'GET', route: '/v1/conversations' },
  openDirect: { method: 'POST', route: '/v1/conversations/direct' },
  createGroup: { method: 'POST', route: '/v1/conversations/groups' },
  addMembers: { method: 'POST', route: '/v1/conversations/{conversationId}/members' },
  sendMessage: { method: 'POST', route: '/v1/conversations/{conversationId}/messages' },
  sync: { method: 'POST', route: '/v1/sync' },
};

/**
 * One REST call, independent of the HTTP client that makes it.
 * @typedef {object} RestRequest
 * @property {string} name    `METHOD /route/{param}`: the route, for tagging
 * @property {'GET' | 'POST'} method
 * @property {string} path    the concrete path (and query), to append to the base URL
 * @property {object | null} body  the JSON body, or null
 * @property {string | null} token the access token to send as a bearer, or null
 */

/**
 * @param {Route} route
 * @param {{ [param: string]: string }} params
 * @param {object | null} body
 * @param {string | null} token
 * @param {string} [query]
 * @returns {RestRequest}
 */
function restRequest(route, params, body, token, query) {
  const path = route.route.replace(/\{([A-Za-z]+)\}/g, (_whole, /** @type {string} */ name) => {
    const value = params[name];
    if (typeof value !== 'string' || value.length === 0) throw new Error(`${route.route}: missing ${name}`);
    return encodeURIComponent(value);
  });
  return {
    name: `${route.method} ${route.route}`,
    method: route.method,
    path: query ? `${path}?${query}` : path,
    body,
    token,
  };
}

/** Request headers for a REST call: JSON, and the bearer token when there is one. */
export function restHeaders(/** @type {string | null} */ token) {
  /** @type {{ [name: string]: string }} */
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

/** `POST /v1/auth/register`: creates the account and its first session. */
export function registerRequest(/** @type {string} */ username, /** @type {string} */ password) {
  return restRequest(ROUTES.register, {}, { username, password }, null);
}

/** `POST /v1/auth/login`: one session per device; each VU logs in as its own device. */
export function loginRequest(/** @type {string} */ username, /** @type {string} */ password, /** @type {string} */ deviceName) {
  return restRequest(ROUTES.login, {}, { username, password, deviceName }, null);
}

/** `POST /v1/auth/refresh`: authenticated by the (single-use) refresh token in the body. */
export function refreshRequest(/** @type {string} */ refreshToken) {
  return restRequest(ROUTES.refresh, {}, { refreshToken }, null);
}

/** `GET /v1/conversations`: the largest page, which holds every conversation of a load-test user. */
export function listConversationsRequest(/** @type {string} */ token) {
  return restRequest(ROUTES.listConversations, {}, null, token, `limit=${CONVERSATION_PAGE_MAX}`);
}

/** `POST /v1/conversations/direct`: opens (or returns) the direct conversation with a user. */
export function openDirectRequest(/** @type {string} */ token, /** @type {string} */ userId) {
  return restRequest(ROUTES.openDirect, {}, { userId }, token);
}

/** `POST /v1/conversations/groups`: the caller becomes owner; at most 1,000 other members per request. */
export function createGroupRequest(/** @type {string} */ token, /** @type {string} */ title, /** @type {string[]} */ memberIds) {
  if (memberIds.length > GROUP_MEMBERS_PER_REQUEST) throw new Error(`a group starts with at most ${GROUP_MEMBERS_PER_REQUEST} members`);
  return restRequest(ROUTES.createGroup, {}, { title, memberIds }, token);
}

/** `POST /v1/conversations/{id}/members`: adds 1 to 1,000 members. */
export function addMembersRequest(/** @type {string} */ token, /** @type {string} */ conversationId, /** @type {string[]} */ userIds) {
  if (userIds.length < 1 || userIds.length > GROUP_MEMBERS_PER_REQUEST) {
    throw new Error(`members are added 1 to ${GROUP_MEMBERS_PER_REQUEST} at a time`);
  }
  return restRequest(ROUTES.addMembers, { conversationId }, { userIds }, token);
}

/** `POST /v1/conversations/{id}/messages`: the REST send, same idempotency as the socket's. */
export function sendMessageRequest(
  /** @type {string} */ token,
  /** @type {string} */ conversationId,
  /** @type {string} */ clientMessageId,
  /** @type {string} */ body,
) {
  return restRequest(ROUTES.sendMessage, { conversationId }, { clientMessageId, body }, token);
}

/**
 * `POST /v1/sync`: one page of what changed since the cursors.
 * @param {string} token
 * @param {SyncCursor[]} cursors
 * @param {number} limit messages per page, 1 to 1,000
 */
export function syncRequest(token, cursors, limit) {
  if (!(limit >= 1 && limit <= SYNC_LIMIT_MAX)) throw new Error(`a sync page holds 1 to ${SYNC_LIMIT_MAX} messages`);
  return restRequest(ROUTES.sync, {}, { cursors, limit: Math.floor(limit) }, token);
}

// ---------------------------------------------------------------------------------------
// Reading REST answers. The service is trusted to follow its schemas; these check only
// what the scripts rely on, and say what was wrong when an answer does not fit.

/** @param {unknown} value @returns {value is { [key: string]: unknown }} */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** @param {unknown} value @param {string} what @returns {string} */
function needString(value, what) {
  if (typeof value !== 'string' || value.length === 0) throw new Error(`unexpected answer: ${what} is not a string`);
  return value;
}

/** @param {unknown} value @param {string} what @returns {number} */
function needInteger(value, what) {
  if (typeof value !== 'number' || Math.floor(value) !== value) throw new Error(`unexpected answer: ${what} is not an integer`);
  return value;
}

/**
 * A logged-in session as the scripts keep it.
 * @typedef {object} Tokens
 * @property {string} userId
 * @property {string} accessToken
 * @property {string} refreshToken
 * @property {number} accessTokenExpiresAt milliseconds since the epoch
 */

/**
 * Reads the `{user, tokens}` answer of register and login, or the `Tokens` of refresh
 * (which does not repeat the user: pass the one already known).
 * @param {unknown} json
 * @param {string} [knownUserId]
 * @returns {Tokens}
 */
export function readTokens(json, knownUserId) {
  if (!isObject(json)) throw new Error('unexpected answer: not an object');
  const tokens = isObject(json.tokens) ? json.tokens : json;
  const userId = isObject(json.user) ? needString(json.user.id, 'user.id') : needString(knownUserId, 'the user id');
  const expiresAt = Date.parse(needString(tokens.accessTokenExpiresAt, 'tokens.accessTokenExpiresAt'));
  if (!(expiresAt > 0)) throw new Error('unexpected answer: tokens.accessTokenExpiresAt is not a date');
  return {
    userId,
    accessToken: needString(tokens.accessToken, 'tokens.accessToken'),
    refreshToken: needString(tokens.refreshToken, 'tokens.refreshToken'),
    accessTokenExpiresAt: expiresAt,
  };
}

/**
 * What the scripts need of a conversation summary.
 * @typedef {{ id: string, kind: string, lastSeq: number, lastRev: number, lastReadSeq: number }} ConversationState
 */

/** @param {unknown} json @returns {ConversationState} */
export function readConversation(json) {
  if (!isObject(json)) throw new Error('unexpected answer: a conversation is not an object');
  return {
    id: needString(json.id, 'conversation id'),
    kind: needString(json.kind, 'conversation kind'),
    lastSeq: needInteger(json.lastSeq, 'lastSeq'),
    lastRev: needInteger(json.lastRev, 'lastRev'),
    lastReadSeq: needInteger(json.lastReadSeq, 'lastReadSeq'),
  };
}

/** Reads a `GET /v1/conversations` page. @param {unknown} json @returns {ConversationState[]} */
export function readConversationPage(json) {
  if (!isObject(json) || !Array.isArray(json.conversations)) throw new Error('unexpected answer: no conversations array');
  return json.conversations.map(readConversation);
}

// ---------------------------------------------------------------------------------------
// Sync, as docs/protocol.md "Recovering with sync" prescribes.

/** @typedef {{ conversationId: string, rev: number, lastReadSeq?: number }} SyncCursor */
/** @typedef {{ conversationId: string, seq: number, rev: number, senderId: string, body: string | null }} SyncedMessage */

/**
 * A client's sync position: one cursor per known conversation.
 */
export class SyncState {
  constructor() {
    /** @type {{ [conversationId: string]: { rev: number, lastReadSeq: number | undefined } }} */
    this.known = {};
  }

  /** The cursors to send in the next `POST /v1/sync`. @returns {SyncCursor[]} */
  cursors() {
    /** @type {SyncCursor[]} */
    const cursors = [];
    for (const conversationId of Object.keys(this.known)) {
      const entry = this.known[conversationId];
      /** @type {SyncCursor} */
      const cursor = { conversationId, rev: entry.rev };
      if (entry.lastReadSeq !== undefined) cursor.lastReadSeq = entry.lastReadSeq;
      cursors.push(cursor);
    }
    return cursors;
  }

  /**
   * Applies one page: drops removed conversations, takes each summary's read marker (a
   * stale one keeps the conversation "changed" and `hasMore` would never end), advances
   * the cursors. Returns the page's messages and whether to call again.
   * @param {unknown} json
   * @returns {{ messages: SyncedMessage[], hasMore: boolean }}
   */
  apply(json) {
    if (!isObject(json) || !Array.isArray(json.messages) || !Array.isArray(json.cursors)) {
      throw new Error('unexpected answer: not a sync page');
    }
    const removed = Array.isArray(json.removed) ? json.removed : [];
    for (const id of removed) delete this.known[needString(id, 'removed id')];
    const conversations = Array.isArray(json.conversations) ? json.conversations : [];
    for (const summary of conversations.map(readConversation)) {
      const entry = this.known[summary.id];
      if (entry) entry.lastReadSeq = summary.lastReadSeq;
      else this.known[summary.id] = { rev: 0, lastReadSeq: summary.lastReadSeq };
    }
    for (const cursor of json.cursors) {
      if (!isObject(cursor)) throw new Error('unexpected answer: a cursor is not an object');
      const id = needString(cursor.conversationId, 'cursor conversationId');
      const entry = this.known[id];
      const rev = needInteger(cursor.rev, 'cursor rev');
      if (entry) entry.rev = rev;
      else this.known[id] = { rev, lastReadSeq: undefined };
    }
    /** @type {SyncedMessage[]} */
    const messages = json.messages.map((/** @type {unknown} */ value) => {
      if (!isObject(value)) throw new Error('unexpected answer: a message is not an object');
      return {
        conversationId: needString(value.conversationId, 'message conversationId'),
        seq: needInteger(value.seq, 'message seq'),
        rev: needInteger(value.rev, 'message rev'),
        senderId: needString(value.senderId, 'message senderId'),
        body: typeof value.body === 'string' ? value.body : null,
      };
    });
    return { messages, hasMore: json.hasMore === true };
  }
}

// ---------------------------------------------------------------------------------------
// The WebSocket.

/** `https://host:port` → `wss://host:port/ws` (and http → ws). */
export function wsUrlFor(/** @type {string} */ baseUrl) {
  const trimmed = baseUrl.replace(/\/+$/, '');
  const match = /^(https?):\/\/(.+)$/.exec(trimmed);
  if (!match) throw new Error(`BASE_URL must start with http:// or https://, got ${baseUrl}`);
  return `${match[1] === 'https' ? 'wss' : 'ws'}://${match[2]}${WS_PATH}`;
}

/**
 * Upgrade headers: the token in `Authorization` (never in the URL), and the protocol
 * version offered as a subprotocol, which the gateway selects.
 */
export function upgradeHeaders(/** @type {string} */ accessToken) {
  return { Authorization: `Bearer ${accessToken}`, 'Sec-WebSocket-Protocol': WS_SUBPROTOCOL };
}

/** Request ids as the SDK makes them: `r1`, `r2`, … unique on their socket. */
export function createRequestIds() {
  let next = 0;
  return function nextRequestId() {
    next += 1;
    return `r${next}`;
  };
}

/**
 * @typedef {{ type: 'send', id: string, conversationId: string, clientMessageId: string, body: string }} SendFrame
 * @typedef {{ type: 'read', id: string, conversationId: string, seq: number }} ReadFrame
 * @typedef {{ type: 'ping', id: string }} PingFrame
 * @typedef {{ type: 'auth', id: string, token: string }} AuthFrame
 * @typedef {SendFrame | ReadFrame | PingFrame | AuthFrame} ClientFrame
 */

/** @returns {SendFrame} */
export function sendFrame(
  /** @type {string} */ id,
  /** @type {string} */ conversationId,
  /** @type {string} */ clientMessageId,
  /** @type {string} */ body,
) {
  return { type: 'send', id, conversationId, clientMessageId, body };
}

/** @returns {ReadFrame} */
export function readFrame(/** @type {string} */ id, /** @type {string} */ conversationId, /** @type {number} */ seq) {
  return { type: 'read', id, conversationId, seq };
}

/** @returns {PingFrame} */
export function pingFrame(/** @type {string} */ id) {
  return { type: 'ping', id };
}

/** Replaces the socket's access token without reconnecting (same user and session). @returns {AuthFrame} */
export function authFrame(/** @type {string} */ id, /** @type {string} */ token) {
  return { type: 'auth', id, token };
}

/** Every frame is one JSON object in a text frame. */
export function encodeFrame(/** @type {ClientFrame} */ frame) {
  return JSON.stringify(frame);
}

/**
 * A server frame, loosely typed: the fields the scripts read, all optional.
 * @typedef {object} ServerFrame
 * @property {string} type
 * @property {string} [id]
 * @property {string} [code]
 * @property {string} [message]  (`error` frames)
 * @property {boolean} [retryable]
 * @property {string} [userId]
 * @property {string} [conversationId]
 * @property {number} [heartbeatMs]
 * @property {number} [tokenExpiresAt]
 * @property {{ conversationId: string, seq: number, rev: number, senderId: string, body: string | null }} [stored]
 *   the message of a `message` push or a send's `ack` (the wire field is `message`)
 */

/**
 * Parses one server frame. Null for what is not a JSON object with a `type`; unknown
 * types and fields are kept for the caller to ignore (the server may add them).
 * @param {string} text
 * @returns {ServerFrame | null}
 */
export function parseServerFrame(text) {
  /** @type {unknown} */
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
  if (!isObject(value) || typeof value.type !== 'string') return null;
  /** @type {ServerFrame} */
  const frame = { type: value.type };
  if (typeof value.id === 'string') frame.id = value.id;
  if (typeof value.code === 'string') frame.code = value.code;
  if (typeof value.retryable === 'boolean') frame.retryable = value.retryable;
  if (typeof value.userId === 'string') frame.userId = value.userId;
  if (typeof value.conversationId === 'string') frame.conversationId = value.conversationId;
  if (typeof value.heartbeatMs === 'number') frame.heartbeatMs = value.heartbeatMs;
  if (typeof value.tokenExpiresAt === 'number') frame.tokenExpiresAt = value.tokenExpiresAt;
  if (typeof value.message === 'string') frame.message = value.message;
  const stored = value.message;
  if (isObject(stored) && typeof stored.conversationId === 'string' && typeof stored.seq === 'number' && typeof stored.rev === 'number') {
    frame.stored = {
      conversationId: stored.conversationId,
      seq: stored.seq,
      rev: stored.rev,
      senderId: typeof stored.senderId === 'string' ? stored.senderId : '',
      body: typeof stored.body === 'string' ? stored.body : null,
    };
  }
  return frame;
}

// ---------------------------------------------------------------------------------------
// Load-test message bodies and ids.

const BODY_PREFIX = 'k6|';

/**
 * A message body that carries its send time, so any receiver computes send→deliver
 * (against its own clock: run the receivers on the same host as the senders, or on
 * hosts with synchronised clocks). Padded with `x` to `length` characters.
 * @param {string} runId
 * @param {number} sentAtMs
 * @param {number} length
 */
export function loadBody(runId, sentAtMs, length) {
  const head = `${BODY_PREFIX}${runId}|${Math.round(sentAtMs)}|`;
  const target = Math.min(Math.max(Math.floor(length), head.length), BODY_MAX_LENGTH);
  let body = head;
  while (body.length < target) body += 'x'.repeat(Math.min(target - body.length, 512));
  return body;
}

/**
 * The run and send time of a body made by `loadBody`; null for any other body, so a
 * run never counts messages of another run or of real users.
 * @param {string | null} body
 * @returns {{ runId: string, sentAtMs: number } | null}
 */
export function readLoadBody(body) {
  if (typeof body !== 'string' || body.indexOf(BODY_PREFIX) !== 0) return null;
  const match = /^k6\|([A-Za-z0-9]+)\|(\d+)\|/.exec(body);
  if (!match) return null;
  return { runId: match[1], sentAtMs: Number(match[2]) };
}

/** A random run id (8 base-36 characters): usernames and client message ids of one run share it. */
export function newRunId() {
  let id = '';
  while (id.length < 8) id += Math.floor(Math.random() * 36).toString(36);
  return id;
}

/** Username of user `index` of a run: `k6_<run>_<index>` (3–32 of `A-Z a-z 0-9 _ . -`). */
export function usernameFor(/** @type {string} */ runId, /** @type {number} */ index) {
  const name = `k6_${runId}_${index}`;
  if (name.length > 32) throw new Error(`username ${name} is longer than 32 characters`);
  return name;
}

/**
 * A client message id unique per sender: the run, the sending VU and its own counter.
 * The server stores a message once per (sender, conversation, id), so a retry with the
 * same id is safe and a fresh id is a fresh message.
 * @param {string} runId
 * @param {number | string} sender
 * @param {number} n
 */
export function clientMessageIdFor(runId, sender, n) {
  const id = `k6.${runId}.${sender}.${n}`;
  if (id.length > ID_MAX_LENGTH) throw new Error(`client message id ${id} is longer than ${ID_MAX_LENGTH} characters`);
  return id;
}

// ---------------------------------------------------------------------------------------
// Bookkeeping on one socket.

/**
 * @typedef {object} PendingRequest
 * @property {string} id
 * @property {string} kind      the frame type: send, read, ping, auth
 * @property {number} sentAtMs
 * @property {string} [conversationId]
 */

/** Requests waiting for their one reply (`ack`, `pong` or `error` with the same id). */
export class PendingRequests {
  constructor() {
    /** @type {{ [id: string]: PendingRequest }} */
    this.byId = {};
    this.size = 0;
  }

  /** @param {PendingRequest} request */
  add(request) {
    if (this.byId[request.id]) throw new Error(`request id ${request.id} is already waiting`);
    this.byId[request.id] = request;
    this.size += 1;
  }

  /** The request a reply answers, removed from the waiting set; null if none waits. @returns {PendingRequest | null} */
  settle(/** @type {string} */ id) {
    const request = this.byId[id];
    if (!request) return null;
    delete this.byId[id];
    this.size -= 1;
    return request;
  }

  /** Removes and returns the requests sent before `deadlineMs`. @returns {PendingRequest[]} */
  expire(/** @type {number} */ deadlineMs) {
    /** @type {PendingRequest[]} */
    const expired = [];
    for (const id of Object.keys(this.byId)) {
      const request = this.byId[id];
      if (request.sentAtMs < deadlineMs) {
        this.settle(id);
        expired.push(request);
      }
    }
    return expired;
  }

  /** Removes and returns everything still waiting (the socket is gone). @returns {PendingRequest[]} */
  drain() {
    return this.expire(Infinity);
  }
}

/**
 * Counts deliveries per conversation on one user's sockets. Within a conversation the
 * gateway pushes messages in seq order, every member's own included, so a socket that
 * was open from `open(…, lastSeq)` to `close(…, lastSeq)` should have seen every seq in
 * between: the ones it did not see are lost deliveries.
 */
export class DeliveryTracker {
  constructor() {
    /** @type {{ [conversationId: string]: { base: number, highest: number, open: boolean } }} */
    this.segments = {};
    this.expected = 0;
    this.delivered = 0;
    this.duplicates = 0;
  }

  /** A socket starts listening; `lastSeq` is the conversation's seq when it did. */
  open(/** @type {string} */ conversationId, /** @type {number} */ lastSeq) {
    this.close(conversationId, null);
    this.segments[conversationId] = { base: lastSeq, highest: lastSeq, open: true };
  }

  /**
   * A pushed message. True when it is new on this socket (counted as delivered); false
   * for a seq at or below one already seen, or one stored before the socket listened.
   */
  observe(/** @type {string} */ conversationId, /** @type {number} */ seq) {
    const segment = this.segments[conversationId];
    if (!segment || !segment.open) return false;
    if (seq <= segment.highest) {
      if (seq > segment.base) this.duplicates += 1;
      return false;
    }
    segment.highest = seq;
    this.delivered += 1;
    return true;
  }

  /**
   * The socket stopped listening. With the conversation's `lastSeq` at that moment
   * everything stored in between is expected; without it (the socket dropped) only up
   * to the highest seq seen, since later ones were never due on this socket.
   * @param {string} conversationId
   * @param {number | null} lastSeq
   */
  close(conversationId, lastSeq) {
    const segment = this.segments[conversationId];
    if (!segment || !segment.open) return;
    segment.open = false;
    const end = lastSeq === null ? segment.highest : Math.max(lastSeq, segment.highest);
    this.expected += end - segment.base;
  }

  /** Closes every open segment as dropped (see `close`). */
  closeAll() {
    for (const conversationId of Object.keys(this.segments)) this.close(conversationId, null);
  }

  /** Expected deliveries not seen so far (meaningful once every segment is closed). */
  missing() {
    return Math.max(0, this.expected - this.delivered);
  }
}
