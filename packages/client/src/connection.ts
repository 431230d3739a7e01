import { CloseCodes, WS_AUTH_SUBPROTOCOL_PREFIX, WS_SUBPROTOCOL, type ServerFrame, type Tokens } from '@parley/protocol';
import { Backoff, type BackoffOptions } from './backoff';
import { closeAction } from './close-policy';
import { ParleyClientError, retryPolicyOf, toClientError } from './errors';
import { parseServerFrame, type ClientRequest, type HelloFrame, type ReplyFrame } from './frames';
import { clearTimer, setTimer, type TimerHandle, type WebSocketConstructor, type WebSocketLike } from './platform';
import type { TokenManager } from './token-manager';

/**
 * - `idle`: `connect()` not called yet;
 * - `connecting`: the first attempt is under way;
 * - `open`: the server said `hello`; requests may be sent;
 * - `reconnecting`: the socket was lost; waiting `retryInMs`, then trying again;
 * - `needs-login`: the session is gone (4002, 4003, a refused refresh): log in, then `connect()`;
 * - `closed`: `close()` was called, or the server closed for good (1000, 1008).
 */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'needs-login' | 'closed';

/** A change of connection state, with what caused it. */
export interface ConnectionStateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** Close code of the socket that just closed (a synthetic 4010 when the client gave up on a silent socket). */
  closeCode?: number;
  closeReason?: string;
  /** When reconnecting: the delay before the next attempt. */
  retryInMs?: number;
  /** When reconnecting: failed attempts since the connection was last healthy. */
  attempt?: number;
}

/** How the access token travels on the upgrade. */
export type AuthTransport = 'header' | 'subprotocol';

/** Options of {@link Connection}. */
export interface ConnectionOptions {
  /** `wss://host/ws`. */
  url: string;
  WebSocket: WebSocketConstructor | undefined;
  /** Third constructor argument, for `ws`: `{ ca, rejectUnauthorized, headers, ... }`. */
  webSocketOptions?: Record<string, unknown>;
  authTransport: AuthTransport;
  tokens: TokenManager;
  backoff?: Partial<BackoffOptions>;
  /** After a 1012 (draining), reconnect within this random pause (default 1 s). */
  drainJitterMs?: number;
  /**
   * After a 1006 (no close frame) of a socket that had been healthy (`stableAfterMs`),
   * wait a random pause up to this long before the first reconnect (default 5 s): an
   * nginx reload or a lost node cuts every socket at once, and the whole fleet must not
   * come back within the same quarter second.
   */
  abnormalJitterMs?: number;
  /** From creating the socket to the server's `hello`. */
  helloTimeoutMs?: number;
  /** Default time a request waits for its reply. */
  requestTimeoutMs?: number;
  /** A connection open this long counts as healthy: the next drop starts the backoff over. */
  stableAfterMs?: number;
  /** Client ping interval; defaults to the server's `hello.heartbeatMs`. */
  heartbeatMs?: number;
  /**
   * Checks the session over REST. Called after repeated failures before `hello` (a browser
   * cannot see why an upgrade was refused); should throw a login-required error when the
   * session is gone.
   */
  verifySession?: () => Promise<unknown>;
  random?: () => number;
  now?: () => number;
}

/** What the connection reports to its owner. */
export interface ConnectionHandlers {
  onState(change: ConnectionStateChange): void;
  onHello(hello: HelloFrame): void;
  /** Every server frame that is not a reply (message, read, typing, presence, membership, contact, resync). */
  onPush(frame: ServerFrame): void;
  onError(error: ParleyClientError): void;
}

interface PendingRequest {
  resolve: (frame: ReplyFrame) => void;
  reject: (error: ParleyClientError) => void;
  timer: TimerHandle;
}

const noop = (): void => {};
const HEARTBEAT_CLOSE = CloseCodes.HEARTBEAT_TIMEOUT.code;
const ABNORMAL_CLOSE = 1006;

/**
 * One logical connection to the gateway, kept alive across sockets: opens the socket
 * with the access token, waits for `hello`, matches replies to requests, pings when the
 * line is quiet, pushes refreshed tokens with `auth` frames before expiry, and after a
 * close follows the close-code policy (reconnect at once, refresh first, back off, or
 * stop). Knows nothing about messages: pushes go to `onPush`.
 */
export class Connection {
  private state: ConnectionState = 'idle';
  private socket: WebSocketLike | undefined;
  /** The token the current socket authenticated with (upgrade or last `auth` ack). */
  private socketToken: string | undefined;
  private hello: HelloFrame | undefined;
  private wanted = false;
  /** Bumped whenever an attempt is superseded, so late callbacks of an old one do nothing. */
  private epoch = 0;
  private readonly backoff: Backoff;
  /** Retries of a failed in-band refresh, apart from the reconnect backoff. */
  private readonly refreshBackoff: Backoff;
  private readonly pending = new Map<string, PendingRequest>();
  private nextRequestId = 0;
  private reconnectTimer: TimerHandle | undefined;
  private helloTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private refreshTimer: TimerHandle | undefined;
  private openedAt: number | undefined;
  private lastInboundAt = 0;
  private failuresBeforeHello = 0;
  private lastSocketError: string | undefined;
  private readonly unsubscribeTokens: () => void;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.backoff = new Backoff(options.backoff, options.random);
    this.refreshBackoff = new Backoff(options.backoff, options.random);
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.unsubscribeTokens = options.tokens.onChange((tokens) => this.onTokensChanged(tokens));
  }

  /** The current state. */
  get currentState(): ConnectionState {
    return this.state;
  }

  /** True when requests can be sent (after `hello`). */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** True between `start()` and `stop()` (the connection is wanted, even while reconnecting). */
  get isWanted(): boolean {
    return this.wanted;
  }

  /** The server's `hello` on the current socket. */
  get helloFrame(): HelloFrame | undefined {
    return this.hello;
  }

  /** Starts connecting (no-op when already wanted). */
  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.backoff.reset();
    this.failuresBeforeHello = 0;
    void this.open('connecting');
  }

  /** Closes the socket with 1000 and stops reconnecting. */
  stop(reason = 'client closed'): void {
    const wasWanted = this.wanted || this.socket !== undefined;
    this.wanted = false;
    this.epoch += 1;
    clearTimer(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.teardown(new ParleyClientError('CLIENT_CLOSED', 'The connection was closed by the client.'), 1000, reason);
    if (wasWanted || this.state !== 'idle') this.setState('closed', { closeCode: 1000, closeReason: reason });
  }

  /**
   * Drops the current socket (if any) and connects again at once, skipping any backoff
   * wait. Requests waiting on the old socket fail with `DISCONNECTED` (retryable). No-op
   * unless the connection is wanted (between `start()` and `stop()`).
   */
  reconnectNow(reason = 'client reconnect'): void {
    if (!this.wanted) return;
    clearTimer(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.teardown(new ParleyClientError('DISCONNECTED', `The socket was dropped (${reason}).`), 1000, reason);
    this.backoff.reset();
    this.failuresBeforeHello = 0;
    void this.open('reconnecting');
  }

  /** Stops and detaches from the token manager; the connection cannot be used again. */
  dispose(): void {
    this.stop();
    this.unsubscribeTokens();
  }

  /**
   * Sends a request and resolves with its reply (`ack`, or `pong` for `ping`). Rejects
   * with the server's `error`, `DISCONNECTED` when not open or when the socket closes
   * first, or `TIMEOUT`. Requests are not retried here.
   */
  request(frame: ClientRequest, timeoutMs = this.options.requestTimeoutMs ?? 15_000): Promise<ReplyFrame> {
    const socket = this.socket;
    if (!socket || this.state !== 'open') {
      return Promise.reject(new ParleyClientError('DISCONNECTED', 'Not connected.'));
    }
    this.nextRequestId += 1;
    const id = `r${this.nextRequestId}`;
    return new Promise<ReplyFrame>((resolve, reject) => {
      const timer = setTimer(() => {
        this.pending.delete(id);
        reject(new ParleyClientError('TIMEOUT', `No reply to ${frame.type} within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        socket.send(JSON.stringify({ ...frame, id }));
      } catch (error) {
        clearTimer(timer);
        this.pending.delete(id);
        reject(new ParleyClientError('DISCONNECTED', 'The socket refused the frame.', { cause: error }));
      }
    });
  }

  private async open(state: 'connecting' | 'reconnecting'): Promise<void> {
    this.epoch += 1;
    const epoch = this.epoch;
    // 'reconnecting' was already announced with its delay; the attempt itself is not news.
    if (this.state !== state) this.setState(state, { attempt: this.backoff.attempt });
    let token: string;
    try {
      token = await this.options.tokens.getAccessToken();
    } catch (caught) {
      if (epoch !== this.epoch) return;
      const error = toClientError(caught);
      if (error.loginRequired) return this.needLogin(error);
      this.handlers.onError(error);
      return this.scheduleReconnect(this.backoff.next());
    }
    if (epoch !== this.epoch) return;
    let socket: WebSocketLike;
    try {
      socket = this.createSocket(token);
    } catch (caught) {
      const error = toClientError(caught);
      this.handlers.onError(error);
      if (!this.options.WebSocket) return this.stopWith(error);
      return this.scheduleReconnect(this.backoff.next());
    }
    this.socket = socket;
    this.socketToken = token;
    this.hello = undefined;
    this.lastSocketError = undefined;
    socket.onopen = noop;
    socket.onmessage = (event) => this.onMessage(socket, event.data);
    socket.onerror = (event) => {
      if (this.socket === socket) this.lastSocketError = event.message ?? (event.error instanceof Error ? event.error.message : undefined);
    };
    socket.onclose = (event) => this.onClose(socket, event.code, event.reason);
    this.helloTimer = setTimer(
      () => this.abandon(socket, ABNORMAL_CLOSE, 'no hello from the server in time'),
      this.options.helloTimeoutMs ?? 15_000,
    );
  }

  private createSocket(token: string): WebSocketLike {
    if (!this.options.WebSocket) {
      throw new ParleyClientError(
        'NETWORK_ERROR',
        'No WebSocket implementation: pass options.WebSocket (in Node, the `ws` package\'s WebSocket).',
        { retry: 'never' },
      );
    }
    const Socket = this.options.WebSocket as unknown as new (
      url: string,
      protocols: string[],
      options?: Record<string, unknown>,
    ) => WebSocketLike;
    const extra = this.options.webSocketOptions;
    if (this.options.authTransport === 'subprotocol') {
      const protocols = [WS_SUBPROTOCOL, `${WS_AUTH_SUBPROTOCOL_PREFIX}${token}`];
      return extra ? new Socket(this.options.url, protocols, extra) : new Socket(this.options.url, protocols);
    }
    const headers = { ...(extra?.['headers'] as Record<string, string> | undefined), Authorization: `Bearer ${token}` };
    return new Socket(this.options.url, [WS_SUBPROTOCOL], { ...extra, headers });
  }

  private onMessage(socket: WebSocketLike, data: unknown): void {
    if (this.socket !== socket) return;
    this.lastInboundAt = this.now();
    const frame = parseServerFrame(data);
    if (!frame) return;
    switch (frame.type) {
      case 'hello':
        return this.onHello(socket, frame);
      case 'ack':
      case 'pong':
        return this.settle(frame.id, frame);
      case 'error': {
        const error = new ParleyClientError(frame.code, frame.message, {
          retry: frame.retryable ? (retryPolicyOf(frame.code) === 'never' ? 'backoff' : retryPolicyOf(frame.code)) : 'never',
        });
        if (frame.id !== undefined && this.pending.has(frame.id)) return this.settle(frame.id, error);
        return this.handlers.onError(error);
      }
      default:
        return this.handlers.onPush(frame);
    }
  }

  private settle(id: string, outcome: ReplyFrame | ParleyClientError): void {
    const request = this.pending.get(id);
    if (!request) return;
    this.pending.delete(id);
    clearTimer(request.timer);
    if (outcome instanceof ParleyClientError) request.reject(outcome);
    else request.resolve(outcome);
  }

  private onHello(socket: WebSocketLike, hello: HelloFrame): void {
    clearTimer(this.helloTimer);
    this.helloTimer = undefined;
    this.hello = hello;
    this.openedAt = this.now();
    this.failuresBeforeHello = 0;
    this.setState('open');
    this.armHeartbeat(socket, this.options.heartbeatMs ?? (hello.heartbeatMs > 0 ? hello.heartbeatMs : 25_000));
    this.armRefresh();
    this.handlers.onHello(hello);
    // The tokens may have been refreshed while the upgrade was under way.
    const current = this.options.tokens.current;
    if (this.socket === socket && current && current.accessToken !== this.socketToken) {
      void this.pushToken(socket, current.accessToken);
    }
  }

  private onClose(socket: WebSocketLike, code: number, reason: string): void {
    if (this.socket !== socket) return;
    const wasOpen = this.hello !== undefined;
    const lived = this.openedAt === undefined ? 0 : this.now() - this.openedAt;
    const detail = reason || this.lastSocketError || '';
    this.teardown(new ParleyClientError('DISCONNECTED', `The socket closed (${code}).`));
    if (!this.wanted) return;
    this.afterClose(code, detail, wasOpen, lived);
  }

  /** Decides what follows a close, from the close code (see close-policy.ts). */
  private afterClose(code: number, reason: string, wasOpen: boolean, lived: number): void {
    const healthy = wasOpen && lived >= (this.options.stableAfterMs ?? 10_000);
    if (healthy) this.backoff.reset();
    if (!wasOpen) this.failuresBeforeHello += 1;
    const info = { closeCode: code, ...(reason ? { closeReason: reason } : {}) };
    switch (closeAction(code)) {
      case 'stop': {
        const error = new ParleyClientError('CONNECTION_CLOSED', `The server closed the connection (${code}${reason ? `: ${reason}` : ''}).`, {
          closeCode: code,
        });
        if (code !== 1000) this.handlers.onError(error);
        this.wanted = false;
        this.setState('closed', info);
        return;
      }
      case 'login-required': {
        const codeName = code === CloseCodes.SESSION_REVOKED.code ? 'SESSION_REVOKED' : 'UNAUTHENTICATED';
        const error = new ParleyClientError(codeName, `The server ended the session (${code}); log in again.`, {
          closeCode: code,
          retry: 'never',
        });
        this.needLogin(error, info);
        // The session is gone: forget its tokens too, so nothing keeps using them.
        if (codeName === 'SESSION_REVOKED') this.options.tokens.set(null);
        return;
      }
      case 'refresh-then-reconnect':
        return this.refreshThenReconnect(wasOpen, info);
      case 'reconnect-now':
        return this.scheduleReconnect(wasOpen ? Math.floor(this.random() * (this.options.drainJitterMs ?? 1000)) : this.backoff.next(), info);
      case 'backoff': {
        if (!wasOpen && this.failuresBeforeHello % 3 === 0) this.verifySession();
        const delay = this.backoff.next();
        // A healthy socket cut without a close frame: likely every client of the node or the
        // load balancer lost theirs at the same moment. Spread the reconnects wide.
        if (healthy && code === ABNORMAL_CLOSE) {
          return this.scheduleReconnect(Math.floor(this.random() * (this.options.abnormalJitterMs ?? 5000)), info);
        }
        return this.scheduleReconnect(delay, info);
      }
    }
  }

  private refreshThenReconnect(wasOpen: boolean, info: Pick<ConnectionStateChange, 'closeCode' | 'closeReason'>): void {
    const stale = this.socketToken;
    this.epoch += 1;
    const epoch = this.epoch;
    this.setState('reconnecting', { ...info, retryInMs: 0, attempt: this.backoff.attempt });
    this.options.tokens.refresh(stale).then(
      () => {
        if (epoch !== this.epoch || !this.wanted) return;
        if (wasOpen) void this.open('reconnecting');
        else this.scheduleReconnect(this.backoff.next(), info);
      },
      (caught: unknown) => {
        if (epoch !== this.epoch || !this.wanted) return;
        const error = toClientError(caught);
        if (error.loginRequired) return this.needLogin(error, info);
        this.handlers.onError(error);
        this.scheduleReconnect(this.backoff.next(), info);
      },
    );
  }

  /** A browser cannot see why an upgrade failed: ask the REST API whether the session still lives. */
  private verifySession(): void {
    const verify = this.options.verifySession;
    if (!verify) return;
    verify().catch((caught: unknown) => {
      const error = toClientError(caught);
      if (error.loginRequired && this.wanted) this.needLogin(error);
    });
  }

  private scheduleReconnect(delayMs: number, info: Partial<ConnectionStateChange> = {}): void {
    if (!this.wanted) return;
    clearTimer(this.reconnectTimer);
    this.epoch += 1;
    const epoch = this.epoch;
    this.setState('reconnecting', { ...info, retryInMs: delayMs, attempt: this.backoff.attempt });
    this.reconnectTimer = setTimer(() => {
      this.reconnectTimer = undefined;
      if (epoch === this.epoch && this.wanted) void this.open('reconnecting');
    }, delayMs);
  }

  private needLogin(error: ParleyClientError, info: Partial<ConnectionStateChange> = {}): void {
    this.wanted = false;
    this.epoch += 1;
    clearTimer(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.teardown(error, 1000, 'login required');
    this.handlers.onError(error);
    this.setState('needs-login', info);
  }

  private stopWith(error: ParleyClientError): void {
    this.wanted = false;
    this.teardown(error, 1000, 'stopped');
    this.setState('closed');
  }

  /** Gives up on a socket that went silent: closes it without waiting and reconnects. */
  private abandon(socket: WebSocketLike, code: number, reason: string): void {
    if (this.socket !== socket) return;
    const wasOpen = this.hello !== undefined;
    const lived = this.openedAt === undefined ? 0 : this.now() - this.openedAt;
    this.teardown(new ParleyClientError('DISCONNECTED', reason), 1000, reason);
    if (this.wanted) this.afterClose(code, reason, wasOpen, lived);
  }

  /** Forgets the current socket: timers, handlers, pending requests (rejected with `error`). */
  private teardown(error: ParleyClientError, closeCode?: number, closeReason?: string): void {
    clearTimer(this.helloTimer);
    clearTimer(this.heartbeatTimer);
    clearTimer(this.refreshTimer);
    this.helloTimer = this.heartbeatTimer = this.refreshTimer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    this.hello = undefined;
    this.openedAt = undefined;
    if (socket) {
      // Never null handlers: `ws` throws an 'error' event that has no listener.
      socket.onopen = noop;
      socket.onmessage = noop;
      socket.onclose = noop;
      socket.onerror = noop;
      if (closeCode !== undefined) {
        try {
          socket.close(closeCode, closeReason?.slice(0, 120));
        } catch {
          // Already closing or closed.
        }
      }
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) {
      clearTimer(request.timer);
      request.reject(error);
    }
  }

  private armHeartbeat(socket: WebSocketLike, intervalMs: number): void {
    clearTimer(this.heartbeatTimer);
    this.heartbeatTimer = setTimer(() => {
      if (this.socket !== socket) return;
      if (this.now() - this.lastInboundAt >= intervalMs) {
        this.request({ type: 'ping' }, intervalMs).catch((error: unknown) => {
          if (error instanceof ParleyClientError && error.code === 'TIMEOUT') {
            this.abandon(socket, HEARTBEAT_CLOSE, 'no reply to ping');
          }
        });
      }
      this.armHeartbeat(socket, intervalMs);
    }, intervalMs);
  }

  private armRefresh(): void {
    clearTimer(this.refreshTimer);
    const delay = this.options.tokens.msUntilRefresh();
    if (delay === undefined) return;
    this.refreshTimer = setTimer(() => void this.refreshOnSocket(), delay);
  }

  /** Refreshes the tokens when due; the change listener then sends them over the socket. */
  private async refreshOnSocket(): Promise<void> {
    const socket = this.socket;
    try {
      await this.options.tokens.getAccessToken();
      this.refreshBackoff.reset();
      if (this.socket === socket && this.options.tokens.current?.accessToken === this.socketToken) this.armRefresh();
    } catch (caught) {
      if (this.socket !== socket) return;
      const error = toClientError(caught);
      if (error.loginRequired) return this.needLogin(error);
      this.handlers.onError(error);
      // Try again soon; if the token expires first, the server closes with 4001 and we refresh then.
      clearTimer(this.refreshTimer);
      this.refreshTimer = setTimer(() => void this.refreshOnSocket(), Math.min(this.refreshBackoff.next(), 10_000));
    }
  }

  private onTokensChanged(tokens: Tokens | null): void {
    if (!tokens) {
      if (this.wanted) this.needLogin(new ParleyClientError('NOT_LOGGED_IN', 'The session ended; log in again.'));
      return;
    }
    const socket = this.socket;
    if (socket && this.state === 'open' && tokens.accessToken !== this.socketToken) void this.pushToken(socket, tokens.accessToken);
  }

  /** Sends a fresh token on the open socket (`auth` frame); a refused one gets a fresh upgrade instead. */
  private async pushToken(socket: WebSocketLike, token: string): Promise<void> {
    try {
      await this.request({ type: 'auth', token });
      if (this.socket !== socket) return;
      this.socketToken = token;
      this.armRefresh();
    } catch (caught) {
      if (this.socket !== socket || !this.wanted) return;
      const error = toClientError(caught);
      if (error.code === 'TIMEOUT' || error.code === 'DISCONNECTED') return;
      // Refused (another session's token after a new login, a key the node does not know yet...):
      // a new upgrade with the current token settles it.
      this.teardown(new ParleyClientError('DISCONNECTED', 'Reconnecting with a new token.'), 1000, 'reauthenticating');
      void this.open('reconnecting');
    }
  }

  private setState(state: ConnectionState, info: Partial<Omit<ConnectionStateChange, 'state' | 'previous'>> = {}): void {
    const previous = this.state;
    if (previous === state && state !== 'reconnecting') return;
    this.state = state;
    this.handlers.onState({ state, previous, ...info });
  }
}
