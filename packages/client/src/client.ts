import {
  Limits,
  type AuthResponse,
  type ContactState,
  type ConversationSummary,
  type LoginBody,
  type Message,
  type ReadState,
  type RegisterBody,
  type ServerFrame,
  type Tokens,
} from '@parley/protocol';
import type { BackoffOptions } from './backoff';
import { Connection, type AuthTransport, type ConnectionState, type ConnectionStateChange } from './connection';
import { TypedEmitter, type Listener } from './emitter';
import { ParleyClientError, toClientError } from './errors';
import type { ServerFrameOf } from './frames';
import { HttpClient } from './http';
import { OrderedDelivery, type DeliverySource } from './ordered-delivery';
import { Outbox } from './outbox';
import { globalFetch, globalWebSocket, randomUuid, type FetchLike, type WebSocketConstructor } from './platform';
import { RestClient } from './rest-client';
import { SyncEngine, type SyncStats } from './sync-engine';
import { MemorySyncStateStore, type ConversationSyncState, type SyncStateStore } from './sync-store';
import { TokenManager } from './token-manager';

/** Options of {@link ParleyClient}. Only `baseUrl` is required. */
export interface ParleyClientOptions {
  /** Where the REST API lives, e.g. `https://chat.example.com` (requests go to `<baseUrl>/v1/...`). */
  baseUrl: string;
  /** The gateway's WebSocket URL; defaults to `baseUrl` with `ws(s)://` and path `/ws`. */
  wsUrl?: string;
  /** A `fetch`; defaults to the global one. In Node, pass one with a custom dispatcher for a private CA. */
  fetch?: FetchLike;
  /**
   * A WebSocket class; defaults to the global `WebSocket` (browsers). In Node pass
   * `WebSocket` from the `ws` package.
   */
  WebSocket?: WebSocketConstructor;
  /** Third argument to the WebSocket constructor (`ws` only): `{ ca, rejectUnauthorized, headers, ... }`. */
  webSocketOptions?: Record<string, unknown>;
  /**
   * How the access token travels on the upgrade: `header` (`Authorization: Bearer`, needs a
   * WebSocket class that takes headers, like `ws`) or `subprotocol` (works everywhere,
   * browsers included). Default: `header` when a `WebSocket` class is passed, else `subprotocol`.
   */
  authTransport?: AuthTransport;
  /** Tokens of an earlier session (from the `tokens` event), to resume without a login. */
  tokens?: Tokens;
  /** Where sync cursors live; defaults to memory (a full pull per new client). */
  store?: SyncStateStore;
  /** Reconnect and retry delays (defaults: 0.5 s doubling to 30 s, half jittered). */
  backoff?: Partial<BackoffOptions>;
  /** Time limit of one REST call or socket request (default 15 s). */
  requestTimeoutMs?: number;
  /** Messages per sync page (default 200, at most 1000). */
  syncPageLimit?: number;
  /** See {@link OutboxOptions.restFallbackAfterMs} (default 5000 ms). */
  restFallbackAfterMs?: number | false;
  /** Refresh the access token this long before expiry at most (default 60 s; capped at a quarter of its lifetime). */
  refreshLeadMs?: number;
  /** How long a gap noticed outside the socket (an ack, a skipped rev) may stay open before a sync (default 1 s). */
  gapGraceMs?: number;
  /** Client ping interval when the line is quiet; defaults to the server's `hello.heartbeatMs`. */
  heartbeatMs?: number;
  /**
   * `typing()` sends at most one frame per conversation in this window (default 3 s), so
   * calling it on every keystroke stays far below the gateway's per-socket frame rate.
   */
  typingThrottleMs?: number;
}

/** Where a delivered copy came from. */
export interface DeliveryInfo {
  source: DeliverySource;
}

/** A read marker moved: a receipt from another member, or mine from another device. */
export interface ReadReceipt {
  conversationId: string;
  userId: string;
  lastReadSeq: number;
}

/** The events of {@link ParleyClient}: event name → listener arguments. */
export type ParleyClientEvents = {
  /** A new message, exactly once per `(conversationId, seq)`, in seq order within a conversation. */
  message: [message: Message, info: DeliveryInfo];
  /** A newer version of a message already delivered (edited, or deleted: `body: null`). Keep it if its `rev` is higher. */
  messageUpdated: [message: Message, info: DeliveryInfo];
  read: [receipt: ReadReceipt];
  typing: [event: { conversationId: string; userId: string }];
  presence: [event: { userId: string; online: boolean }];
  membership: [event: Omit<ServerFrameOf<'membership'>, 'type'>];
  contact: [event: { userId: string; state: ContactState | 'removed' }];
  /** A conversation summary from a sync (new to this client, changed, or read elsewhere). */
  conversation: [summary: ConversationSummary];
  /** I am no longer a member: drop it locally. */
  conversationRemoved: [event: { conversationId: string }];
  /** A complete offline pull finished. */
  synced: [stats: SyncStats];
  /**
   * The server says events may have been dropped (a bus outage). Messages and read state
   * catch up by themselves (a sync follows); refetch anything else shown live: contacts,
   * member lists, presence.
   */
  resync: [];
  connectionState: [change: ConnectionStateChange];
  /** The tokens changed (login, refresh, logout = `null`): persist them to resume later. */
  tokens: [tokens: Tokens | null];
  error: [error: ParleyClientError];
};

const CLIENT_MESSAGE_ID = /^[A-Za-z0-9_:.-]{1,64}$/;

function defaultWsUrl(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(trimmed)) throw new TypeError(`baseUrl must start with http:// or https://: ${baseUrl}`);
  return `${trimmed.replace(/^http/i, 'ws')}/ws`;
}

/**
 * The Parley client: log in, call the REST API, and hold a live connection that
 * survives drops, delivers every message once and in order, and retries sends until
 * they are stored.
 *
 * ```ts
 * const client = new ParleyClient({ baseUrl: 'https://chat.example.com' });
 * client.on('message', (message) => render(message));
 * await client.login({ username: 'alice', password: '...' });
 * await client.connect();
 * await client.send(conversationId, 'hello');
 * ```
 */
export class ParleyClient {
  /** Typed REST calls (authenticated with the client's tokens). */
  readonly rest: RestClient;
  /** The session's tokens (single-flight refresh). */
  readonly tokens: TokenManager;
  private readonly emitter: TypedEmitter<ParleyClientEvents>;
  private readonly http: HttpClient;
  private readonly delivery: OrderedDelivery;
  private readonly engine: SyncEngine;
  private readonly connection: Connection;
  private readonly outbox: Outbox;
  private readonly gapGraceMs: number;
  private readonly typingThrottleMs: number;
  private readonly typingSentAt = new Map<string, number>();
  private firstOpen: { resolve: () => void; reject: (error: ParleyClientError) => void } | undefined;
  /** The user whose sync state the engine and the store hold (from the tokens), if known. */
  private stateOwner: string | undefined;

  constructor(options: ParleyClientOptions) {
    const fetch = options.fetch ?? globalFetch();
    if (!fetch) throw new TypeError('No fetch available: pass options.fetch.');
    const wsUrl = options.wsUrl ?? defaultWsUrl(options.baseUrl);
    const pageLimit = options.syncPageLimit ?? Limits.syncMessagesDefault;
    if (!(Number.isInteger(pageLimit) && pageLimit >= 1 && pageLimit <= Limits.syncMessagesMax)) {
      throw new RangeError(`syncPageLimit must be an integer in 1..${Limits.syncMessagesMax}`);
    }
    this.gapGraceMs = options.gapGraceMs ?? 1000;
    this.typingThrottleMs = options.typingThrottleMs ?? 3000;
    this.emitter = new TypedEmitter<ParleyClientEvents>((error, event) => {
      if (event === 'error') return;
      this.emitter.emit(
        'error',
        new ParleyClientError('LISTENER_FAILED', `A '${String(event)}' listener threw.`, { cause: error }),
      );
    });
    this.http = new HttpClient({ baseUrl: options.baseUrl, fetch, timeoutMs: options.requestTimeoutMs ?? 15_000 });
    this.tokens = new TokenManager({
      refresh: (refreshToken) => this.rest.refreshTokens(refreshToken),
      now: () => this.http.serverNow(),
      ...(options.refreshLeadMs === undefined ? {} : { refreshLeadMs: options.refreshLeadMs }),
    });
    this.rest = new RestClient(this.http, this.tokens);
    this.tokens.onChange((tokens) => this.emitter.emit('tokens', tokens));
    if (options.tokens) this.tokens.set(options.tokens);
    this.stateOwner = this.userId;

    this.delivery = new OrderedDelivery({ revFloor: (conversationId) => this.engine.cursorRev(conversationId) });
    this.engine = new SyncEngine({
      api: this.rest,
      delivery: this.delivery,
      store: options.store ?? new MemorySyncStateStore(),
      pageLimit,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      callbacks: {
        delivered: (items) => {
          for (const { message, source } of items) this.emitter.emit('message', message, { source });
        },
        updated: (message, source) => this.emitter.emit('messageUpdated', message, { source }),
        conversation: (summary) => this.emitter.emit('conversation', summary),
        removed: (conversationId) => this.emitter.emit('conversationRemoved', { conversationId }),
        ownRead: (conversationId, lastReadSeq) =>
          this.emitter.emit('read', { conversationId, userId: this.userId ?? '', lastReadSeq }),
        synced: (stats) => this.emitter.emit('synced', stats),
        error: (error) => this.emitter.emit('error', error),
      },
    });

    const WebSocket = options.WebSocket ?? globalWebSocket();
    this.connection = new Connection(
      {
        url: wsUrl,
        WebSocket,
        ...(options.webSocketOptions ? { webSocketOptions: options.webSocketOptions } : {}),
        authTransport: options.authTransport ?? (options.WebSocket ? 'header' : 'subprotocol'),
        tokens: this.tokens,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
        ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
        verifySession: () => this.rest.me(),
      },
      {
        onState: (change) => this.onConnectionState(change),
        onHello: () => {
          this.requestSync();
          this.outbox.pump();
        },
        onPush: (frame) => this.onPush(frame),
        onError: (error) => this.emitter.emit('error', error),
      },
    );
    this.outbox = new Outbox({
      connection: this.connection,
      rest: this.rest,
      onStored: (message) => this.ingestLive(message, 'send'),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.restFallbackAfterMs === undefined ? {} : { restFallbackAfterMs: options.restFallbackAfterMs }),
    });
  }

  /** Adds an event listener; returns a function that removes it. */
  on<K extends keyof ParleyClientEvents>(event: K, listener: Listener<ParleyClientEvents, K>): () => void {
    return this.emitter.on(event, listener);
  }

  /** Adds a listener for the next occurrence only; returns a function that removes it. */
  once<K extends keyof ParleyClientEvents>(event: K, listener: Listener<ParleyClientEvents, K>): () => void {
    return this.emitter.once(event, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof ParleyClientEvents>(event: K, listener: Listener<ParleyClientEvents, K>): void {
    this.emitter.off(event, listener);
  }

  /** The connection state. */
  get connectionState(): ConnectionState {
    return this.connection.currentState;
  }

  /** The logged-in user's id (read from the access token), or `undefined`. */
  get userId(): string | undefined {
    return this.tokens.claims()?.userId || undefined;
  }

  /** Sends not acknowledged yet. */
  get pendingSends(): number {
    return this.outbox.size;
  }

  /** What the client remembers of a conversation (sync cursor, last delivered seq, my read marker). */
  conversationState(conversationId: string): ConversationSyncState | undefined {
    return this.engine.stateOf(conversationId);
  }

  /**
   * Creates an account and logs in (`POST /v1/auth/register`). Like `login`, it closes the
   * client and clears the sync state first when the client held another user's session.
   */
  async register(body: RegisterBody): Promise<AuthResponse> {
    const response = await this.rest.register(body);
    await this.adopt(response);
    return response;
  }

  /**
   * Logs in (`POST /v1/auth/login`); the tokens are kept and refreshed by the client. When
   * the client held another user's session, it is closed first (unacknowledged sends are
   * rejected with `CLIENT_CLOSED`) and all sync state, the store's included, is cleared:
   * call `connect()` again for the new user.
   */
  async login(body: LoginBody): Promise<AuthResponse> {
    const response = await this.rest.login(body);
    await this.adopt(response);
    return response;
  }

  /**
   * Closes the client, revokes the session on the server (best effort), clears the sync
   * state (memory and store) and forgets the tokens. Never rejects: local state is cleared
   * even when the server cannot be reached, and that failure is reported through the
   * `error` event (the session then ends on its own when its refresh token expires).
   */
  async logout(): Promise<void> {
    // The socket goes first: nothing more of this session is delivered while the server call runs.
    await this.close();
    try {
      if (this.tokens.current) await this.rest.logout();
    } catch (error) {
      const failure = toClientError(error);
      // A session the server already ended is the outcome we wanted.
      if (!failure.loginRequired) this.emitter.emit('error', failure);
    }
    await this.clearLocalState();
    this.tokens.set(null);
  }

  /**
   * Opens the live connection and keeps it open until `close()`: reconnects after drops,
   * refreshes the token on the socket, and pulls whatever was missed after every
   * (re)connect. Resolves when the socket is first open; rejects if the session is gone
   * (`needs-login`) or `close()` is called first. While the gateway is unreachable it keeps
   * trying (watch `connectionState`).
   */
  async connect(): Promise<void> {
    if (!this.tokens.current) throw new ParleyClientError('NOT_LOGGED_IN', 'Log in first.');
    await this.engine.load();
    this.engine.start();
    if (this.connection.isOpen) return;
    const opened = new Promise<void>((resolve, reject) => {
      const previous = this.firstOpen;
      this.firstOpen = {
        resolve: () => {
          previous?.resolve();
          resolve();
        },
        reject: (error) => {
          previous?.reject(error);
          reject(error);
        },
      };
    });
    this.connection.start();
    return opened;
  }

  /**
   * Drops the socket and connects again now, without waiting out a backoff. Call it when
   * the platform says the network changed (a browser's `online` event, a phone switching
   * networks): a socket that went silent is otherwise noticed only by the heartbeat.
   * Unacknowledged sends are not lost: they go out again, with their ids, once it is
   * open. No-op before `connect()` or after `close()`.
   */
  reconnect(): void {
    this.connection.reconnectNow();
  }

  /** Pulls everything missed now (`POST /v1/sync` until `hasMore` is false), with or without a socket. */
  async syncNow(): Promise<void> {
    await this.engine.load();
    this.engine.start();
    await this.engine.request();
  }

  /**
   * Sends a message and resolves with it once stored (its `seq` assigned). It is retried
   * with the same client message id until acknowledged, over the socket or REST, so it is
   * stored exactly once. Pass your own `clientMessageId` to retry a send that outlived the
   * client (a rejection carries it in `error.clientMessageId`).
   */
  send(conversationId: string, body: string, options: { clientMessageId?: string } = {}): Promise<Message> {
    const clientMessageId = options.clientMessageId ?? randomUuid();
    if (!CLIENT_MESSAGE_ID.test(clientMessageId)) {
      return Promise.reject(
        new ParleyClientError('VALIDATION_FAILED', 'clientMessageId: 1–64 of A-Z a-z 0-9 _ : . -', { clientMessageId }),
      );
    }
    if (body.length < 1 || body.length > Limits.messageBodyMaxLength) {
      return Promise.reject(
        new ParleyClientError('VALIDATION_FAILED', `body: 1–${Limits.messageBodyMaxLength} characters`, { clientMessageId }),
      );
    }
    return this.outbox.enqueue(conversationId, body, clientMessageId);
  }

  /** Moves my read marker to `seq` (over the socket when open, else REST). */
  async markRead(conversationId: string, seq: number): Promise<ReadState> {
    let state: ReadState | undefined;
    if (this.connection.isOpen) {
      try {
        const reply = await this.connection.request({ type: 'read', conversationId, seq });
        if (reply.type !== 'ack' || !reply.readState) throw new ParleyClientError('BAD_RESPONSE', 'The read ack carried no read state.');
        state = reply.readState;
      } catch (error) {
        const failure = toClientError(error);
        if (failure.code !== 'DISCONNECTED' && failure.code !== 'TIMEOUT') throw failure;
      }
    }
    state ??= await this.rest.markRead(conversationId, seq);
    this.engine.noteOwnRead(conversationId, state.lastReadSeq);
    return state;
  }

  /**
   * Tells the conversation I am typing. Ephemeral: call it as often as you like (it is
   * throttled per conversation, see `typingThrottleMs`); resolves false when it could not
   * be sent (no open socket, or the server refused).
   */
  async typing(conversationId: string): Promise<boolean> {
    if (!this.connection.isOpen) return false;
    const now = Date.now();
    const last = this.typingSentAt.get(conversationId);
    if (last !== undefined && now - last < this.typingThrottleMs) return true;
    this.typingSentAt.set(conversationId, now);
    if (this.typingSentAt.size > 1000) {
      for (const [id, at] of this.typingSentAt) if (now - at >= this.typingThrottleMs) this.typingSentAt.delete(id);
    }
    try {
      await this.connection.request({ type: 'typing', conversationId });
      return true;
    } catch {
      this.typingSentAt.delete(conversationId);
      return false;
    }
  }

  /**
   * Closes the connection (code 1000), stops syncing, writes pending sync state, and
   * rejects unacknowledged sends with `CLIENT_CLOSED` (each with its `clientMessageId`,
   * to send again later without a duplicate). The client can `connect()` again.
   */
  async close(): Promise<void> {
    this.connection.stop();
    this.outbox.close(new ParleyClientError('CLIENT_CLOSED', 'The client was closed before the message was acknowledged.'));
    await this.engine.stop();
  }

  /** Takes the tokens of a login; another user's session on this client is closed and its state cleared first. */
  private async adopt(response: AuthResponse): Promise<void> {
    if (this.stateOwner !== undefined && this.stateOwner !== response.user.id) {
      await this.close();
      await this.clearLocalState();
    }
    this.stateOwner = response.user.id;
    this.tokens.set(response.tokens);
  }

  /** Forgets the sync state (engine, ordered delivery, store). */
  private async clearLocalState(): Promise<void> {
    await this.engine.clear();
    this.typingSentAt.clear();
    this.stateOwner = undefined;
  }

  private onConnectionState(change: ConnectionStateChange): void {
    this.emitter.emit('connectionState', change);
    const waiter = this.firstOpen;
    if (!waiter) return;
    if (change.state === 'open') {
      this.firstOpen = undefined;
      waiter.resolve();
    } else if (change.state === 'needs-login' || change.state === 'closed') {
      this.firstOpen = undefined;
      const code = change.state === 'needs-login' ? 'NOT_LOGGED_IN' : 'CLIENT_CLOSED';
      waiter.reject(new ParleyClientError(code, `The connection ended (${change.state}).`, {
        ...(change.closeCode === undefined ? {} : { closeCode: change.closeCode }),
      }));
    }
  }

  private onPush(frame: ServerFrame): void {
    switch (frame.type) {
      case 'message':
      case 'message.updated':
        this.ingestLive(frame.message, 'socket');
        return;
      case 'read':
        if (frame.userId === this.userId) this.engine.noteOwnRead(frame.conversationId, frame.lastReadSeq);
        this.emitter.emit('read', { conversationId: frame.conversationId, userId: frame.userId, lastReadSeq: frame.lastReadSeq });
        return;
      case 'typing':
        this.emitter.emit('typing', { conversationId: frame.conversationId, userId: frame.userId });
        return;
      case 'presence':
        this.emitter.emit('presence', { userId: frame.userId, online: frame.online });
        return;
      case 'membership': {
        const { type: _type, ...event } = frame;
        this.emitter.emit('membership', event);
        // A conversation to learn (joined) or to drop (left): the sync reports both. Joined
        // again a conversation I knew (removed and re-added): its old state no longer
        // applies (the visible history restarts after the new joinedSeq), so start afresh.
        if (frame.change === 'joined') this.engine.reset(frame.conversationId);
        if (frame.change === 'joined' || frame.change === 'left') this.requestSync();
        return;
      }
      case 'contact':
        this.emitter.emit('contact', { userId: frame.userId, state: frame.state });
        return;
      case 'resync':
        this.requestSync();
        this.emitter.emit('resync');
        return;
      default:
        return;
    }
  }

  /** A message from the socket or an ack: ordered and deduplicated; a gap leads to a sync. */
  private ingestLive(message: Message, source: DeliverySource): void {
    if (!this.engine.started) return;
    const outcome = this.engine.ingest(message, source);
    // The socket carries a conversation's events in order, so a gap there is a real loss:
    // sync now. An ack may overtake the socket's copy of the messages before it: wait a little.
    if (outcome.kind === 'held' && source === 'socket') this.requestSync(true);
    else if (this.engine.hasOpenGap()) this.engine.checkGapsLater(this.gapGraceMs);
  }

  private requestSync(forGap = false): void {
    if (!this.engine.started) return;
    (forGap ? this.engine.requestForGap() : this.engine.request()).catch((error: unknown) => {
      const failure = toClientError(error);
      if (failure.code !== 'CLIENT_CLOSED') this.emitter.emit('error', failure);
    });
  }
}
