// @ts-check
/**
 * What the four k6 scenarios share: configuration from the environment, the custom
 * metrics, the REST calls of the setup stage and of each VU, and one socket driver that
 * speaks the protocol of ./frames.js over `k6/ws`.
 *
 * `k6/ws` is the WebSocket module present in every k6 release since long before v0.45,
 * and still in current ones, so the scripts run unchanged on all of them. It holds one
 * socket per VU (`ws.connect` returns when the socket closes), which is why each VU here
 * is one user with one socket.
 *
 * Every scenario follows the same timeline, measured from the end of `setup()`:
 *   [0, RAMP)                    each VU logs in (spread over the first half) and connects
 *   [RAMP, RAMP+DURATION)        the measured window: the scenario's load is offered
 *   [.., +DRAIN)                 no new load; in-flight messages arrive; then sockets close
 */
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import ws from 'k6/ws';
import * as P from './frames.js';

// ---------------------------------------------------------------------------------------
// Configuration

/**
 * @typedef {object} Config
 * @property {string} baseUrl         BASE_URL: nginx's front door (REST and /ws)
 * @property {string} wsUrl           WS_URL: derived from BASE_URL unless set
 * @property {number} users           USERS: VUs, one user and one socket each
 * @property {number} rate            RATE: the scenario's offered rate, per second
 * @property {number} durationS       DURATION: the measured window
 * @property {number} rampS           RAMP: logins and connections before the window
 * @property {number} drainS          DRAIN: after the window, before sockets close
 * @property {number} groupSize       GROUP_SIZE
 * @property {number} senders         SENDERS
 * @property {number} backlog         BACKLOG
 * @property {number} messageLength   MESSAGE_LENGTH: body length in characters
 * @property {number} readEvery       READ_EVERY
 * @property {number} syncLimit       SYNC_LIMIT
 * @property {number} framesPerSecond FRAMES_PER_SECOND: the gateways' per-socket frame limit
 * @property {number} ackTimeoutMs    ACK_TIMEOUT
 * @property {string} password        PASSWORD of every load-test user
 * @property {boolean} insecureTls    INSECURE_TLS: accept a self-signed certificate
 * @property {number} setupConcurrency SETUP_CONCURRENCY: parallel requests in setup()
 * @property {number} setupTimeoutS   SETUP_TIMEOUT
 */

/** @param {string} name @returns {string | undefined} */
function env(name) {
  const value = __ENV[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** @param {string} name @param {number} fallback @param {number} min @returns {number} */
function numberEnv(name, fallback, min) {
  const raw = env(name);
  const value = raw === undefined ? fallback : Number(raw);
  if (!(value >= min) || !isFinite(value)) throw new Error(`${name} must be a number of at least ${min}, got ${raw}`);
  return value;
}

/** @param {string} name @param {number} fallback @param {number} min */
function integerEnv(name, fallback, min) {
  const value = numberEnv(name, fallback, min);
  if (Math.floor(value) !== value) throw new Error(`${name} must be an integer, got ${value}`);
  return value;
}

/**
 * A duration in seconds: `90`, `90s`, `500ms`, `5m`, `1h` (k6's own spellings).
 * @param {string} name @param {string | number} fallback @returns {number}
 */
function secondsEnv(name, fallback) {
  const raw = env(name);
  const text = String(raw === undefined ? fallback : raw);
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (!match) throw new Error(`${name} must be a duration such as 30s, 5m or 500ms, got ${text}`);
  const unit = match[2] || 's';
  const scale = unit === 'ms' ? 0.001 : unit === 'm' ? 60 : unit === 'h' ? 3600 : 1;
  return Number(match[1]) * scale;
}

/** @param {string} name @param {boolean} fallback */
function booleanEnv(name, fallback) {
  const raw = env(name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got ${raw}`);
}

/** A loopback front door is the local stack with its self-signed certificate. */
function isLoopback(/** @type {string} */ baseUrl) {
  return /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(baseUrl);
}

/**
 * Reads the configuration, with a scenario's own defaults for what it is about.
 * @param {{ USERS: number, RATE: number, DURATION: string, GROUP_SIZE?: number, SENDERS?: number, BACKLOG?: number }} defaults
 * @returns {Config}
 */
export function loadConfig(defaults) {
  const baseUrl = (env('BASE_URL') || 'https://127.0.0.1:8443').replace(/\/+$/, '');
  const users = integerEnv('USERS', defaults.USERS, 1);
  const rate = numberEnv('RATE', defaults.RATE, 0.001);
  return {
    baseUrl,
    wsUrl: env('WS_URL') || P.wsUrlFor(baseUrl),
    users,
    rate,
    durationS: secondsEnv('DURATION', defaults.DURATION),
    // Logins cost an argon2 hash each (4 at a time per message service process): allow
    // about 40 a second, plus time to connect.
    rampS: secondsEnv('RAMP', Math.ceil(10 + users / 40)),
    drainS: secondsEnv('DRAIN', 5),
    groupSize: integerEnv('GROUP_SIZE', defaults.GROUP_SIZE || 100, 2),
    senders: integerEnv('SENDERS', defaults.SENDERS || 1, 1),
    backlog: integerEnv('BACKLOG', defaults.BACKLOG || 50, 1),
    messageLength: integerEnv('MESSAGE_LENGTH', 64, 1),
    readEvery: integerEnv('READ_EVERY', 0, 0),
    syncLimit: integerEnv('SYNC_LIMIT', 200, 1),
    framesPerSecond: numberEnv('FRAMES_PER_SECOND', 20, 1),
    ackTimeoutMs: secondsEnv('ACK_TIMEOUT', `${P.REQUEST_TIMEOUT_MS}ms`) * 1000,
    password: env('PASSWORD') || 'k6-load-test-password',
    insecureTls: booleanEnv('INSECURE_TLS', isLoopback(baseUrl)),
    setupConcurrency: integerEnv('SETUP_CONCURRENCY', 8, 1),
    // Registration hashes a password per user too; the backlog of offline-catchup adds sends.
    setupTimeoutS: secondsEnv('SETUP_TIMEOUT', Math.ceil(120 + users / 10)),
  };
}

/** Fails at start, with the reason, rather than measuring a misconfigured run. */
export function requireThat(/** @type {boolean} */ condition, /** @type {string} */ message) {
  if (!condition) throw new Error(message);
}

/**
 * k6 options for a scenario of `cfg.users` VUs running one iteration each (the whole
 * timeline). Thresholds come from the scenario; `k6 run --no-thresholds` ignores them.
 * @param {Config} cfg
 * @param {string} name
 * @param {{ [metric: string]: string[] }} thresholds
 * @returns {import('k6/options').Options}
 */
export function scenarioOptions(cfg, name, thresholds) {
  const lifetimeS = Math.ceil(cfg.rampS + cfg.durationS + cfg.drainS + 30);
  return {
    insecureSkipTLSVerify: cfg.insecureTls,
    // http.batch runs at most `batchPerHost` requests at once (6 by default).
    batch: Math.max(20, cfg.setupConcurrency),
    batchPerHost: cfg.setupConcurrency,
    setupTimeout: `${Math.ceil(cfg.setupTimeoutS)}s`,
    summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
    scenarios: {
      [name]: {
        executor: 'per-vu-iterations',
        vus: cfg.users,
        iterations: 1,
        maxDuration: `${lifetimeS}s`,
        gracefulStop: '30s',
      },
    },
    thresholds,
  };
}

// ---------------------------------------------------------------------------------------
// Metrics (created at import, in the init context, as k6 requires)

export const metrics = {
  /** `send` frame written → its `ack` (the message is committed in PostgreSQL). */
  sendAck: new Trend('parley_send_ack_ms', true),
  /** Send time carried in the body → the `message` push on another member's socket. */
  sendDeliver: new Trend('parley_send_deliver_ms', true),
  /** `ws.connect` called → `hello` received: upgrade, token check, subscriptions. */
  connectHello: new Trend('parley_connect_hello_ms', true),
  /** `ping` frame → `pong`: the gateway's responsiveness on an open socket. */
  ping: new Trend('parley_ping_ms', true),
  /** `read` frame → its `ack`. */
  readAck: new Trend('parley_read_ack_ms', true),
  /** Offline user coming back: `ws.connect` called → hello → every sync page applied. */
  catchup: new Trend('parley_catchup_ms', true),
  /** Sockets that reached `hello`, of those attempted. */
  connectOk: new Rate('parley_connect_ok'),
  messagesSent: new Counter('parley_messages_sent'),
  messagesAcked: new Counter('parley_messages_acked'),
  /** `message` pushes of a new seq, on every member's socket (the sender's own included). */
  deliveries: new Counter('parley_deliveries'),
  /** Deliveries due: per socket, every seq stored while it listened. */
  deliveriesExpected: new Counter('parley_deliveries_expected'),
  /** Expected deliveries never seen (lost, or still in flight when the socket closed). */
  deliveriesMissing: new Counter('parley_deliveries_missing'),
  /** Messages recovered through `POST /v1/sync` (offline catch-up). */
  synced: new Counter('parley_synced_messages'),
  /** Every failure, tagged `kind` (and `code`, `frame` or `status` where they apply). */
  errors: new Counter('parley_errors'),
};

/** @param {string} kind @param {{ [tag: string]: string }} [tags] */
export function recordError(kind, tags) {
  /** @type {{ [tag: string]: string }} */
  const all = { kind };
  if (tags) for (const key of Object.keys(tags)) all[key] = tags[key];
  metrics.errors.add(1, all);
}

// ---------------------------------------------------------------------------------------
// REST

/** @typedef {{ status: number, json: unknown, code: string }} RestResult */

/** @param {string | ArrayBuffer | null} body @returns {unknown} */
function parseJson(body) {
  if (typeof body !== 'string' || body === '') return null;
  try {
    return JSON.parse(body);
  } catch (error) {
    return { unparsable: String(error) };
  }
}

/** The `error.code` of an error body, or the HTTP status when there is none. @param {number} status @param {unknown} json */
function errorCode(status, json) {
  if (typeof json === 'object' && json !== null && 'error' in json) {
    const error = /** @type {{ error: unknown }} */ (json).error;
    if (typeof error === 'object' && error !== null && 'code' in error) return String(/** @type {{ code: unknown }} */ (error).code);
  }
  return status === 0 ? 'NETWORK' : `HTTP_${status}`;
}

/** @param {Config} cfg @param {P.RestRequest} request @returns {[string, string, string | null, import('k6/http').Params]} */
function toK6(cfg, request) {
  return [
    request.method,
    cfg.baseUrl + request.path,
    request.body === null ? null : JSON.stringify(request.body),
    { headers: P.restHeaders(request.token), tags: { name: request.name }, timeout: '60s' },
  ];
}

/** @param {import('k6/http').Response} response @returns {RestResult} */
function toResult(response) {
  const json = parseJson(response.body);
  return { status: response.status, json, code: response.status >= 400 || response.status === 0 ? errorCode(response.status, json) : '' };
}

/** Answers worth retrying: the network, a busy hashing queue (503), nginx without an upstream. */
function retryable(/** @type {RestResult} */ result) {
  return result.status === 0 || result.status === 502 || result.status === 503 || result.status === 504;
}

/** What to do about a refusal that retrying will not cure. */
function hint(/** @type {P.RestRequest} */ request, /** @type {RestResult} */ result) {
  if (result.status === 429 && request.name === `POST ${P.ROUTES.register.route}`) {
    return ' (registrations per address are limited: start the message service with a larger REGISTER_RATE_LIMIT_MAX)';
  }
  if (result.status === 429 && request.name === `POST ${P.ROUTES.login.route}`) {
    return ' (logins per address are limited: start the message service with a larger LOGIN_RATE_LIMIT_PER_IP_MAX)';
  }
  if (result.status === 429) return ' (nginx allows --max-conns-per-ip connections per client address)';
  return '';
}

/**
 * Makes one REST call, retrying transient failures with backoff for up to `patienceS`.
 * Throws unless the status is one of `ok`.
 * @param {Config} cfg
 * @param {P.RestRequest} request
 * @param {number[]} ok
 * @param {number} [patienceS]
 * @returns {RestResult}
 */
export function call(cfg, request, ok, patienceS) {
  return callAll(cfg, [request], ok, patienceS)[0];
}

/**
 * Makes REST calls in parallel (`http.batch`), retrying transient failures with backoff.
 * @param {Config} cfg
 * @param {P.RestRequest[]} requests
 * @param {number[]} ok
 * @param {number} [patienceS]
 * @returns {RestResult[]}
 */
export function callAll(cfg, requests, ok, patienceS) {
  const deadline = Date.now() + (patienceS === undefined ? 60 : patienceS) * 1000;
  /** @type {RestResult[]} */
  const results = new Array(requests.length);
  let todo = requests.map((_request, index) => index);
  for (let attempt = 0; todo.length > 0; attempt += 1) {
    const responses = http.batch(todo.map((index) => toK6(cfg, requests[index])));
    /** @type {number[]} */
    const again = [];
    todo.forEach((index, position) => {
      const result = toResult(responses[position]);
      results[index] = result;
      if (ok.indexOf(result.status) >= 0) return;
      if (retryable(result) && Date.now() < deadline) {
        again.push(index);
        return;
      }
      const request = requests[index];
      recordError('http', { status: String(result.status), code: result.code, route: request.name });
      throw new Error(`${request.name} answered ${result.status} ${result.code}${hint(request, result)}`);
    });
    todo = again;
    if (todo.length > 0) sleep(Math.min(5, 0.25 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2));
  }
  return results;
}

/** Splits `items` into slices of at most `size`. @template T @param {T[]} items @param {number} size @returns {T[][]} */
export function chunks(items, size) {
  /** @type {T[][]} */
  const out = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/**
 * The setup stage's users: registered through the API, `setupConcurrency` at a time.
 * The tokens stay in setup(): each VU logs in with its own session (see `vuSession`).
 * @param {Config} cfg
 * @param {string} runId
 * @param {number} count
 * @returns {P.Tokens[]}
 */
export function registerUsers(cfg, runId, count) {
  /** @type {P.Tokens[]} */
  const users = [];
  const indexes = [];
  for (let index = 0; index < count; index += 1) indexes.push(index);
  for (const slice of chunks(indexes, cfg.setupConcurrency)) {
    const results = callAll(cfg, slice.map((index) => P.registerRequest(P.usernameFor(runId, index), cfg.password)), [201], 300);
    for (const result of results) users.push(P.readTokens(result.json));
  }
  return users;
}

/**
 * Runs requests `setupConcurrency` at a time and returns their JSON answers in order.
 * @param {Config} cfg @param {P.RestRequest[]} requests @param {number[]} ok @returns {unknown[]}
 */
export function callInSlices(cfg, requests, ok) {
  /** @type {unknown[]} */
  const answers = [];
  for (const slice of chunks(requests, cfg.setupConcurrency)) {
    for (const result of callAll(cfg, slice, ok, 300)) answers.push(result.json);
  }
  return answers;
}

/**
 * What setup() hands every VU. Kept small on purpose: k6 copies it into each VU, so
 * per-user data here would cost USERS × VUs memory. VUs log in and look up their own
 * conversations instead.
 * @typedef {{ runId: string, t0: number }} SetupData
 */

/**
 * The common timeline of a run, in milliseconds since the epoch.
 * @param {Config} cfg @param {SetupData} data
 */
export function timeline(cfg, data) {
  const windowStart = data.t0 + cfg.rampS * 1000;
  const windowEnd = windowStart + cfg.durationS * 1000;
  return { t0: data.t0, windowStart, windowEnd, drainEnd: windowEnd + cfg.drainS * 1000 };
}

/** This VU's user index, 0-based: VU n is user n - 1 for the whole run. */
export function userIndex() {
  return exec.vu.idInTest - 1;
}

/** Sleeps until an absolute time (no-op if it has passed). */
export function sleepUntil(/** @type {number} */ atMs) {
  const waitMs = atMs - Date.now();
  if (waitMs > 0) sleep(waitMs / 1000);
}

// ---------------------------------------------------------------------------------------
// The VU's session

/** Refresh a minute before the access token expires, or at three quarters of a short token's life (as the SDK does). */
const REFRESH_MARGIN_MS = 60000;

/**
 * One user logged in as one device. Each VU has its own session, so only this VU ever
 * uses its refresh token: refresh tokens are single use, and two holders racing with
 * one would get the session revoked as stolen.
 */
export class Session {
  /** @param {Config} cfg @param {string} username @param {P.Tokens} tokens */
  constructor(cfg, username, tokens) {
    this.cfg = cfg;
    this.username = username;
    this.tokens = tokens;
    this.receivedAt = Date.now();
    this.sent = 0;
  }

  get userId() {
    return this.tokens.userId;
  }

  get accessToken() {
    return this.tokens.accessToken;
  }

  /** Refreshes the tokens when the access token is about to expire; true when it did. */
  refreshIfDue() {
    const expiresAt = this.tokens.accessTokenExpiresAt;
    const margin = Math.min(REFRESH_MARGIN_MS, (expiresAt - this.receivedAt) / 4);
    if (Date.now() < expiresAt - margin) return false;
    const result = call(this.cfg, P.refreshRequest(this.tokens.refreshToken), [200], 30);
    this.tokens = P.readTokens(result.json, this.tokens.userId);
    this.receivedAt = Date.now();
    return true;
  }

  /** The next client message id of this user (unique across its sockets). */
  nextClientMessageId(/** @type {string} */ runId) {
    this.sent += 1;
    return P.clientMessageIdFor(runId, exec.vu.idInTest, this.sent);
  }

  /** My conversations as the service sees them now. */
  conversations() {
    return P.readConversationPage(call(this.cfg, P.listConversationsRequest(this.accessToken), [200], 30).json);
  }
}

/** @type {Session | null} */
let vuSessionCache = null;

/**
 * Logs this VU in as user `index`, at its turn within the first half of the ramp (all
 * at once would queue thousands of password hashes). Logged in once per VU.
 * @param {Config} cfg @param {SetupData} data @param {number} index
 * @returns {Session}
 */
export function vuSession(cfg, data, index) {
  if (vuSessionCache) return vuSessionCache;
  const plan = timeline(cfg, data);
  sleepUntil(plan.t0 + (index / cfg.users) * cfg.rampS * 500);
  const username = P.usernameFor(data.runId, index);
  const result = call(cfg, P.loginRequest(username, cfg.password, `k6 vu ${exec.vu.idInTest}`), [200], cfg.rampS);
  vuSessionCache = new Session(cfg, username, P.readTokens(result.json));
  return vuSessionCache;
}

// ---------------------------------------------------------------------------------------
// The socket

/**
 * @typedef {object} SocketHooks
 * @property {number} untilMs                   close the socket then (normal close, 1000)
 * @property {P.DeliveryTracker} [tracker]      counts the `message` pushes
 * @property {(conn: Connection) => void} [onHello]
 * @property {(conn: Connection, frame: P.ServerFrame) => void} [onMessage]  a `message` push of this run
 * @property {(conn: Connection, request: P.PendingRequest, reply: P.ServerFrame) => void} [onReply]
 */

/** How long after the upgrade `hello` may take before the socket counts as failed. */
const HELLO_TIMEOUT_MS = 10000;

/** One open socket, as the scenarios' hooks see it. */
export class Connection {
  /** @param {Config} cfg @param {Session} session @param {string} runId @param {import('k6/ws').Socket} socket */
  constructor(cfg, session, runId, socket) {
    this.cfg = cfg;
    this.session = session;
    this.runId = runId;
    this.socket = socket;
    this.nextId = P.createRequestIds();
    this.pending = new P.PendingRequests();
    this.helloAt = 0;
    this.closing = false;
  }

  /** @param {P.ClientFrame} frame @param {string} [conversationId] */
  write(frame, conversationId) {
    /** @type {P.PendingRequest} */
    const request = { id: frame.id, kind: frame.type, sentAtMs: Date.now() };
    if (conversationId !== undefined) request.conversationId = conversationId;
    this.pending.add(request);
    this.socket.send(P.encodeFrame(frame));
  }

  /** Sends a message whose body carries the send time. */
  send(/** @type {string} */ conversationId) {
    const body = P.loadBody(this.runId, Date.now(), this.cfg.messageLength);
    this.write(P.sendFrame(this.nextId(), conversationId, this.session.nextClientMessageId(this.runId), body), conversationId);
    metrics.messagesSent.add(1);
  }

  /** Moves my read marker to `seq`. */
  read(/** @type {string} */ conversationId, /** @type {number} */ seq) {
    this.write(P.readFrame(this.nextId(), conversationId, seq), conversationId);
  }

  ping() {
    this.write(P.pingFrame(this.nextId()));
  }

  /** Closes on purpose (1000): not counted as an error. */
  close() {
    if (this.closing) return;
    this.closing = true;
    this.socket.close(1000);
  }

  /** @param {() => void} fn @param {number} delayMs */
  setTimeout(fn, delayMs) {
    this.socket.setTimeout(() => {
      if (!this.closing) fn();
    }, Math.max(1, delayMs));
  }

  /** @param {() => void} fn @param {number} periodMs */
  setInterval(fn, periodMs) {
    this.socket.setInterval(() => {
      if (!this.closing) fn();
    }, Math.max(1, periodMs));
  }
}

/**
 * Opens one socket for the session and runs it until `hooks.untilMs`, or until it closes.
 * Handles what every scenario needs: hello, replies and their latencies, error frames,
 * request deadlines, token refresh on the open socket, unexpected closes.
 * @param {Config} cfg
 * @param {Session} session
 * @param {string} runId
 * @param {SocketHooks} hooks
 * @returns {{ hello: boolean, closedByUs: boolean }}
 */
export function runSocket(cfg, session, runId, hooks) {
  session.refreshIfDue();
  const startedAt = Date.now();
  /** @type {Connection | null} */
  let connection = null;
  /** @type {import('k6/ws').Response | null} */
  let response = null;
  try {
    response = ws.connect(cfg.wsUrl, { headers: P.upgradeHeaders(session.accessToken), tags: { name: P.WS_PATH } }, (socket) => {
      const conn = new Connection(cfg, session, runId, socket);
      connection = conn;

      socket.on('message', (text) => {
        const frame = P.parseServerFrame(text);
        if (!frame) {
          recordError('unparsable_frame');
          return;
        }
        const now = Date.now();
        if (frame.type === 'hello') {
          conn.helloAt = now;
          metrics.connectHello.add(now - startedAt);
          if (hooks.onHello) hooks.onHello(conn);
          return;
        }
        if (frame.type === 'message' && frame.stored) {
          const stored = frame.stored;
          const isNew = hooks.tracker ? hooks.tracker.observe(stored.conversationId, stored.seq) : true;
          if (isNew) metrics.deliveries.add(1);
          const load = P.readLoadBody(stored.body);
          if (load && load.runId === runId && stored.senderId !== session.userId && isNew) {
            metrics.sendDeliver.add(now - load.sentAtMs);
          }
          if (hooks.onMessage) hooks.onMessage(conn, frame);
          return;
        }
        if (frame.type === 'resync') {
          // The server may have dropped events for this socket: a loss in a load test.
          recordError('resync');
          return;
        }
        if ((frame.type === 'ack' || frame.type === 'pong' || frame.type === 'error') && frame.id !== undefined) {
          const request = conn.pending.settle(frame.id);
          if (!request) {
            recordError('unexpected_reply', { frame: frame.type });
            return;
          }
          if (frame.type === 'error') {
            recordError('error_frame', { code: frame.code || 'unknown', frame: request.kind });
          } else if (request.kind === 'send') {
            metrics.sendAck.add(now - request.sentAtMs);
            metrics.messagesAcked.add(1);
          } else if (request.kind === 'read') {
            metrics.readAck.add(now - request.sentAtMs);
          } else if (request.kind === 'ping') {
            metrics.ping.add(now - request.sentAtMs);
          }
          if (hooks.onReply) hooks.onReply(conn, request, frame);
          return;
        }
        if (frame.type === 'error') recordError('error_frame', { code: frame.code || 'unknown', frame: 'none' });
        // presence, typing, read receipts, membership, contact: not this test's business.
      });

      socket.on('error', () => recordError('ws_error'));
      socket.on('close', (code) => {
        if (!conn.closing) recordError('closed', { code: String(code) });
      });

      socket.setTimeout(() => conn.close(), Math.max(1, hooks.untilMs - Date.now()));
      socket.setInterval(() => {
        if (conn.closing) return;
        const now = Date.now();
        if (!conn.helloAt && now - startedAt > HELLO_TIMEOUT_MS) {
          recordError('no_hello');
          conn.close();
          return;
        }
        for (const late of conn.pending.expire(now - cfg.ackTimeoutMs)) recordError('timeout', { frame: late.kind });
        // The gateway closes a socket whose token expired (4001): hand it the fresh one.
        if (conn.helloAt && session.refreshIfDue()) conn.write(P.authFrame(conn.nextId(), session.accessToken));
      }, 1000);
    });
  } catch (error) {
    // A hook that threw (a script or setup problem): let k6 report it with its stack.
    if (connection !== null) throw error;
    // Otherwise k6's `throw` option is on, and a failed connect throws instead of returning.
    recordError('connect_failed');
  }
  const conn = /** @type {Connection | null} */ (connection);
  const upgraded = check(response, { 'upgraded (101)': (r) => r !== null && r.status === 101 });
  if (!upgraded && response !== null) recordError('upgrade', { status: String(response.status) });
  const hello = conn !== null && conn.helloAt > 0;
  metrics.connectOk.add(hello);
  if (conn) for (const request of conn.pending.drain()) recordError('unanswered', { frame: request.kind });
  const closedByUs = conn !== null && conn.closing;
  if (hooks.tracker && !closedByUs) hooks.tracker.closeAll();
  return { hello, closedByUs };
}

/**
 * Paces one sender at a fixed rate over the window, whatever the replies (an open model:
 * the offered load does not slow down when the server does). The slots are absolute, so
 * a socket that reconnects mid-window resumes on the same schedule.
 * @param {Connection} conn
 * @param {{ windowStart: number, windowEnd: number }} plan
 * @param {number} periodMs
 * @param {number} phaseMs
 * @param {() => void} tick
 */
export function paceOver(conn, plan, periodMs, phaseMs, tick) {
  const first = plan.windowStart + phaseMs;
  const now = Date.now();
  const next = now <= first ? first : first + Math.ceil((now - first) / periodMs) * periodMs;
  if (next >= plan.windowEnd) return;
  const step = () => {
    if (Date.now() < plan.windowEnd) tick();
  };
  conn.setTimeout(() => {
    step();
    conn.setInterval(step, periodMs);
  }, next - now);
}

/**
 * A socket held from the ramp to the end of the drain, reconnecting with backoff if it
 * drops (each drop is an error already). Used by the chat scenarios.
 * @param {Config} cfg
 * @param {SetupData} data
 * @param {Session} session
 * @param {P.DeliveryTracker} tracker
 * @param {(conn: Connection) => void} onHello
 * @param {(conn: Connection, frame: P.ServerFrame) => void} [onMessage]
 */
export function holdSocket(cfg, data, session, tracker, onHello, onMessage) {
  const plan = timeline(cfg, data);
  for (let attempt = 0; Date.now() < plan.windowEnd; attempt += 1) {
    /** @type {SocketHooks} */
    const hooks = { untilMs: plan.drainEnd, tracker, onHello };
    if (onMessage) hooks.onMessage = onMessage;
    const result = runSocket(cfg, session, data.runId, hooks);
    if (result.closedByUs) return;
    sleep(Math.min(10, 0.5 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2));
  }
}

/**
 * Closes the delivery accounting of my conversations with their final `lastSeq`, once
 * the sockets are closed, and records expected and missing deliveries. A count of 0 is
 * recorded too, so the thresholds on these counters always have samples.
 * @param {Session} session @param {P.DeliveryTracker} tracker
 */
export function settleDeliveries(session, tracker) {
  for (const conversation of session.conversations()) tracker.close(conversation.id, conversation.lastSeq);
  tracker.closeAll();
  metrics.deliveriesExpected.add(tracker.expected);
  metrics.deliveriesMissing.add(tracker.missing());
}

/** Thresholds every scenario shares: no errors of any kind, every socket served. */
export const COMMON_THRESHOLDS = {
  parley_errors: ['count<1'],
  parley_connect_ok: ['rate>0.999'],
  checks: ['rate>0.999'],
};
