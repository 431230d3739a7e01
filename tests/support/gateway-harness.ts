// The real gateway, in-process, in front of the real message service: the message
// harness listens on an ephemeral 127.0.0.1 port, and each gateway node gets its own
// RedisBus (two ioredis connections), RedisPresence, metrics and JWKS verifier on the
// same bus prefix, so events flow exactly as between processes. A small ws client keeps
// an inbox so a test awaits the frame or the close it expects instead of sleeping.
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { AccessTokenVerifier } from '@parley/auth';
import { RedisBus } from '@parley/bus';
import { Gateway, GatewayMetrics, RedisPresence, type GatewayOptions } from '@parley/gateway';
import type { AppConfig } from '@parley/message-service';
import { WS_AUTH_SUBPROTOCOL_PREFIX, WS_SUBPROTOCOL, type AuthResponse, type ServerFrame } from '@parley/protocol';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pino from 'pino';
import { WebSocket, type RawData } from 'ws';
import { startMessageHarness, testUrls, type MessageHarness, type TestUser } from './message-harness';

/** How long any wait may take before the test fails (never a synchronization delay). */
export const WAIT_MS = 5000;

export type FrameType = ServerFrame['type'];
export type FrameOf<T extends FrameType> = Extract<ServerFrame, { type: T }>;
export interface CloseInfo {
  code: number;
  reason: string;
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function ready(client: Redis): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------
// Test client

/**
 * A WebSocket client with an inbox. `received` is the full history, in arrival order;
 * `next()` consumes the first unconsumed frame that matches, waiting for it if needed.
 */
export class TestClient {
  readonly received: ServerFrame[] = [];
  /** Text that did not parse as JSON (the gateway must never send any). */
  readonly unparseable: string[] = [];
  /** Server pings seen (ws answers them unless autoPong is off). */
  pings = 0;
  /** Set once the socket has closed. */
  closeInfo: CloseInfo | undefined;
  readonly closed: Promise<CloseInfo>;
  hello!: FrameOf<'hello'>;
  private readonly unread: ServerFrame[] = [];
  private readonly watchers = new Set<() => void>();
  private requestCounter = 0;

  constructor(
    readonly ws: WebSocket,
    readonly label: string,
  ) {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      let frame: ServerFrame;
      try {
        frame = JSON.parse(text) as ServerFrame;
      } catch {
        this.unparseable.push(isBinary ? `<binary ${text.length}>` : text);
        return;
      }
      this.received.push(frame);
      this.unread.push(frame);
      this.notify();
    });
    ws.on('ping', () => {
      this.pings += 1;
      this.notify();
    });
    ws.on('error', () => undefined); // the close event carries what a test needs
    this.closed = new Promise<CloseInfo>((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this.notify();
      });
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** The client's TCP port, which the server sees as the remote port. */
  get localPort(): number {
    return (this.ws as unknown as { _socket: net.Socket })._socket.localPort ?? 0;
  }

  /** Consumes and returns the first unconsumed frame of this type that matches, waiting for it. */
  async next<T extends FrameType>(
    type: T,
    predicate: (frame: FrameOf<T>) => boolean = () => true,
    timeoutMs = WAIT_MS,
  ): Promise<FrameOf<T>> {
    const matches = (frame: ServerFrame): frame is FrameOf<T> => frame.type === type && predicate(frame as FrameOf<T>);
    const take = (): FrameOf<T> | undefined => {
      const index = this.unread.findIndex(matches);
      if (index < 0) return undefined;
      return this.unread.splice(index, 1)[0] as FrameOf<T>;
    };
    const found = take();
    if (found) return found;
    return this.waitUntil(take, timeoutMs, `${this.label}: a ${type} frame${predicate.length ? ' that matches' : ''}`);
  }

  /** Every frame received so far (consumed or not) of this type that matches. */
  frames<T extends FrameType>(type: T, predicate: (frame: FrameOf<T>) => boolean = () => true): FrameOf<T>[] {
    return this.received.filter((frame): frame is FrameOf<T> => frame.type === type && predicate(frame as FrameOf<T>));
  }

  /** Waits until at least `count` frames of this type that match have arrived; returns them all. */
  async collect<T extends FrameType>(
    type: T,
    count: number,
    predicate: (frame: FrameOf<T>) => boolean = () => true,
    timeoutMs = WAIT_MS,
  ): Promise<FrameOf<T>[]> {
    return this.waitUntil(
      () => {
        const all = this.frames(type, predicate);
        return all.length >= count ? all : undefined;
      },
      timeoutMs,
      `${this.label}: ${count} ${type} frames`,
    );
  }

  /** Waits until the server has pinged this client `count` times in all. */
  async waitForPings(count: number, timeoutMs = WAIT_MS): Promise<void> {
    await this.waitUntil(() => (this.pings >= count ? true : undefined), timeoutMs, `${this.label}: ${count} pings`);
  }

  /** Resolves with the close code, failing the test if the socket is still open after `timeoutMs`. */
  async closedWithin(timeoutMs = WAIT_MS): Promise<CloseInfo> {
    return within(this.closed, timeoutMs, `${this.label}: socket to close`);
  }

  /** Sends a JSON frame as-is. */
  send(frame: object): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Sends a request (an `id` is added when missing) and returns its one reply: ack, pong or error. */
  async request(frame: { type: string; id?: string; [key: string]: unknown }, timeoutMs = WAIT_MS) {
    const id = frame.id ?? `${this.label}-r${++this.requestCounter}`;
    this.send({ ...frame, id });
    const reply = await this.waitUntil(
      () => {
        const index = this.unread.findIndex(
          (candidate) =>
            (candidate.type === 'ack' || candidate.type === 'error' || candidate.type === 'pong') && candidate.id === id,
        );
        return index < 0 ? undefined : this.unread.splice(index, 1)[0];
      },
      timeoutMs,
      `${this.label}: the reply to ${frame.type} ${id}`,
    );
    return reply as FrameOf<'ack'> | FrameOf<'error'> | FrameOf<'pong'>;
  }

  /** A request that must be acknowledged; fails with the error frame otherwise. */
  async ack(frame: { type: string; id?: string; [key: string]: unknown }): Promise<FrameOf<'ack'>> {
    const reply = await this.request(frame);
    if (reply.type !== 'ack') throw new Error(`${this.label}: expected an ack, got ${JSON.stringify(reply)}`);
    return reply;
  }

  /** An application-level ping/pong round trip: proves the socket is open and served. */
  async ping(): Promise<void> {
    const reply = await this.request({ type: 'ping' });
    if (reply.type !== 'pong') throw new Error(`${this.label}: expected a pong, got ${JSON.stringify(reply)}`);
  }

  close(code?: number): void {
    this.ws.close(code);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  /** Re-evaluates `probe` on every frame, ping and close until it returns a value. */
  private waitUntil<R>(probe: () => R | undefined, timeoutMs: number, what: string): Promise<R> {
    const first = probe();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<R>((resolve, reject) => {
      const finish = (error?: Error, value?: R) => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
        if (error) reject(error);
        else resolve(value as R);
      };
      const describe = () =>
        `${what}; received so far: ${JSON.stringify(this.received.map((frame) => frame.type))}` +
        (this.closeInfo ? `; closed with ${this.closeInfo.code} ${this.closeInfo.reason}` : '');
      const watcher = () => {
        const value = probe();
        if (value !== undefined) finish(undefined, value);
        else if (this.closeInfo) finish(new Error(`socket closed while waiting for ${describe()}`));
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`)), timeoutMs);
      this.watchers.add(watcher);
      if (this.closeInfo) watcher();
    });
  }
}

/** A client that completed the upgrade, saw its hello, and then never reads again. */
export interface StalledClient {
  socket: net.Socket;
  localPort: number;
  destroy(): void;
}

// ---------------------------------------------------------------------------------------
// Gateway nodes

export interface NodeOptions extends Partial<Omit<GatewayOptions, 'messageServiceUrl'>> {
  presenceTtlMs?: number;
}

const NODE_DEFAULTS: Omit<GatewayOptions, 'nodeId' | 'messageServiceUrl'> = {
  allowedOrigins: '*',
  maxFrameBytes: 32768,
  rateLimitFramesPerSecond: 200,
  sendBufferMaxBytes: 1048576,
  heartbeatIntervalMs: 25000,
  drainWindowMs: 500,
  messageServiceTimeoutMs: 5000,
  maxConnections: 1000,
  maxConnectionsPerUser: 20,
};

/** One real gateway on 127.0.0.1:<ephemeral>, with its own Redis connections. */
export class GatewayNode {
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** Server-side TCP sockets of upgrade requests, by the client's port. */
  private readonly serverSockets = new Map<number, net.Socket>();
  private readonly countWatchers = new Set<() => void>();
  private stopped = false;

  constructor(
    readonly gateway: Gateway,
    readonly options: GatewayOptions,
    readonly port: number,
    readonly metrics: GatewayMetrics,
    readonly bus: RedisBus,
    readonly presence: RedisPresence,
    readonly publisher: Redis,
    readonly subscriber: Redis,
    readonly presenceRedis: Redis,
    readonly presenceTtlMs: number,
  ) {
    this.wsUrl = `ws://127.0.0.1:${port}/ws`;
    this.httpUrl = `http://127.0.0.1:${port}`;
    gateway.server.on('upgrade', (_request, socket: net.Socket) => {
      if (socket.remotePort !== undefined) this.serverSockets.set(socket.remotePort, socket);
    });
    // Every change of the connection set is mirrored into this gauge right away: watch
    // it to learn when the server has registered or dropped a socket, without polling.
    const gauge = metrics.connections;
    const set = gauge.set.bind(gauge) as (value: number) => void;
    (gauge as unknown as { set: (value: number) => void }).set = (value: number) => {
      set(value);
      for (const watcher of [...this.countWatchers]) watcher();
    };
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** The name the bus subscriber connection carries in CLIENT LIST. */
  get subscriberName(): string {
    return `parley-gw-sub-${this.nodeId}`;
  }

  /** The server side of the TCP connection a client opened from `clientPort`. */
  serverSocketOf(clientPort: number): net.Socket | undefined {
    return this.serverSockets.get(clientPort);
  }

  /** Resolves once the gateway holds exactly `count` sockets. */
  async waitForConnectionCount(count: number, timeoutMs = WAIT_MS): Promise<void> {
    if (this.gateway.connectionCount === count) return;
    await new Promise<void>((resolve, reject) => {
      const watcher = () => {
        if (this.gateway.connectionCount !== count) return;
        clearTimeout(timer);
        this.countWatchers.delete(watcher);
        resolve();
      };
      const timer = setTimeout(() => {
        this.countWatchers.delete(watcher);
        reject(new Error(`timed out: ${this.nodeId} holds ${this.gateway.connectionCount} sockets, expected ${count}`));
      }, timeoutMs);
      this.countWatchers.add(watcher);
    });
  }

  /** Sum of a metric's current values, optionally for one label set. */
  async metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = this.metrics.registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name}`);
    const { values } = await metric.get();
    return values
      .filter((value) => Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected))
      .reduce((sum, value) => sum + value.value, 0);
  }

  /**
   * Simulates the node dying: its presence heartbeat stops and its presence connection
   * goes away before its sockets are cut, so nothing on this node can mark its users
   * offline. Only the other nodes' sweep can.
   */
  async crash(): Promise<void> {
    await this.presence.stop();
    this.presenceRedis.disconnect();
    await this.close();
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.gateway.close();
    await this.bus.close();
    await Promise.allSettled([this.publisher.quit(), this.presenceRedis.quit()]);
  }
}

// ---------------------------------------------------------------------------------------
// The harness

export interface GatewayHarness {
  message: MessageHarness;
  /** Base URL of the listening message service. */
  messageUrl: string;
  nodes: GatewayNode[];
  startNode(options?: NodeOptions): Promise<GatewayNode>;
  connect(node: GatewayNode, auth: TestUser | string, options?: ConnectOptions): Promise<TestClient>;
  /** Starts an upgrade that is expected to be refused; resolves with the HTTP status and body. */
  attemptUpgrade(node: GatewayNode, options?: UpgradeOptions): Promise<{ status: number; body: string }>;
  connectStalled(node: GatewayNode, token: string): Promise<StalledClient>;
  /** Signs an access token with the message service's key (any expiry, for expiry tests). */
  signToken(claims: { userId: string; sessionId: string; exp: number }): Promise<string>;
  /** Logs the user in again: a second session of the same user. */
  login(user: TestUser): Promise<TestUser>;
  /** A Redis connection for inspecting and poking the server (CLIENT LIST / KILL). */
  admin: Redis;
  close(): Promise<void>;
}

export interface ConnectOptions {
  via?: 'header' | 'subprotocol';
  origin?: string;
  /** False: never answer server pings (a dead peer). */
  autoPong?: boolean;
  label?: string;
}

export interface UpgradeOptions {
  token?: string;
  via?: 'header' | 'subprotocol';
  origin?: string;
  path?: string;
  /** A raw Authorization header (wins over token). */
  authorization?: string;
}

const PASSWORD = 'correct horse battery staple';

function openSocket(url: string, token: string | undefined, options: ConnectOptions & { authorization?: string }): WebSocket {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers['authorization'] = options.authorization;
  else if (token !== undefined && options.via !== 'subprotocol') headers['authorization'] = `Bearer ${token}`;
  const protocols = options.via === 'subprotocol' && token !== undefined ? [WS_SUBPROTOCOL, WS_AUTH_SUBPROTOCOL_PREFIX + token] : [];
  return new WebSocket(url, protocols, {
    headers,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    ...(options.autoPong === undefined ? {} : { autoPong: options.autoPong }),
    perMessageDeflate: false,
  });
}

export async function startGatewayHarness(messageOverrides: Partial<AppConfig> = {}): Promise<GatewayHarness> {
  const { redisUrl } = testUrls();
  const message = await startMessageHarness(messageOverrides);
  await message.app.listen({ port: 0, host: '127.0.0.1' });
  const address = message.app.server.address();
  if (!address || typeof address !== 'object') throw new Error('message service did not listen');
  const messageUrl = `http://127.0.0.1:${address.port}`;
  const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
  const admin = new Redis(redisUrl, { connectionName: `parley-test-admin-${randomBytes(3).toString('hex')}` });
  admin.on('error', () => undefined);
  await ready(admin);
  const nodes: GatewayNode[] = [];
  const clients = new Set<TestClient>();
  const stalled = new Set<StalledClient>();

  const startNode = async (overrides: NodeOptions = {}): Promise<GatewayNode> => {
    const { presenceTtlMs = 15000, ...gatewayOverrides } = overrides;
    const nodeId = gatewayOverrides.nodeId ?? `gw-test-${randomBytes(4).toString('hex')}`;
    const options: GatewayOptions = { ...NODE_DEFAULTS, ...gatewayOverrides, nodeId, messageServiceUrl: messageUrl };
    // As server.ts: commands fail fast during an outage; the subscriber has its own connection.
    const publisher = new Redis(redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: `parley-gw-${nodeId}`,
    });
    const subscriber = new Redis(redisUrl, { connectionName: `parley-gw-sub-${nodeId}` });
    // Presence on a connection of its own, so a test can cut it to simulate the node's death.
    const presenceRedis = new Redis(redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: `parley-gw-presence-${nodeId}`,
    });
    for (const client of [publisher, subscriber, presenceRedis]) client.on('error', () => undefined);
    await Promise.all([publisher, subscriber, presenceRedis].map(ready));
    const bus = new RedisBus({ publisher, subscriber, prefix: message.config.busPrefix });
    const metrics = new GatewayMetrics();
    const presence = new RedisPresence(
      presenceRedis,
      bus,
      { prefix: message.config.busPrefix, nodeId, ttlMs: presenceTtlMs },
      logger,
      metrics,
    );
    const gateway = new Gateway({
      options,
      bus,
      presence,
      metrics,
      verifier: new AccessTokenVerifier(new URL(`${messageUrl}/.well-known/jwks.json`), {
        issuer: message.config.issuer,
        audience: message.config.audience,
      }),
      logger,
      readinessChecks: { redis: () => publisher.ping() },
    });
    const { port } = await gateway.listen(0, '127.0.0.1');
    const node = new GatewayNode(gateway, options, port, metrics, bus, presence, publisher, subscriber, presenceRedis, presenceTtlMs);
    nodes.push(node);
    return node;
  };

  const connect = async (node: GatewayNode, auth: TestUser | string, options: ConnectOptions = {}): Promise<TestClient> => {
    const token = typeof auth === 'string' ? auth : auth.accessToken;
    const label = options.label ?? (typeof auth === 'string' ? 'client' : auth.username);
    const ws = openSocket(node.wsUrl, token, options);
    const client = new TestClient(ws, label);
    clients.add(client);
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (request, response) => {
          reject(new Error(`${label}: upgrade refused with HTTP ${response.statusCode}`));
          request.destroy();
        });
        ws.once('error', reject);
      }),
      WAIT_MS,
      `${label}: upgrade`,
    );
    client.hello = await client.next('hello');
    return client;
  };

  const attemptUpgrade = async (node: GatewayNode, options: UpgradeOptions = {}) => {
    const url = `ws://127.0.0.1:${node.port}${options.path ?? '/ws'}`;
    const ws = openSocket(url, options.token, options);
    return within(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        ws.on('error', () => undefined);
        ws.once('unexpected-response', (_request, response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          response.on('error', reject);
        });
        ws.once('open', () => {
          ws.terminate();
          resolve({ status: 101, body: '' });
        });
      }),
      WAIT_MS,
      `upgrade to ${url} to be answered`,
    );
  };

  const connectStalled = async (node: GatewayNode, token: string): Promise<StalledClient> => {
    const socket = net.connect(node.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await within(once(socket, 'connect'), WAIT_MS, 'raw TCP connect');
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${node.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    // Read only until the hello frame (the node has subscribed for this socket by then), then stop.
    let seen = '';
    await within(
      new Promise<void>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          seen += chunk.toString('latin1');
          if (!seen.startsWith('HTTP/1.1 101')) {
            socket.off('data', onData);
            reject(new Error(`upgrade refused: ${seen.split('\r\n')[0]}`));
          } else if (seen.includes('"type":"hello"')) {
            socket.off('data', onData);
            socket.pause();
            resolve();
          }
        };
        socket.on('data', onData);
      }),
      WAIT_MS,
      'stalled client hello',
    );
    const client: StalledClient = { socket, localPort: socket.localPort ?? 0, destroy: () => socket.destroy() };
    stalled.add(client);
    return client;
  };

  const signToken = async (claims: { userId: string; sessionId: string; exp: number }): Promise<string> => {
    const { signingKey, issuer, audience } = message.config;
    return new SignJWT({ sid: claims.sessionId })
      .setProtectedHeader({ alg: 'EdDSA', kid: signingKey.kid, typ: 'JWT' })
      .setSubject(claims.userId)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(Math.min(Math.floor(Date.now() / 1000), claims.exp - 1))
      .setExpirationTime(claims.exp)
      .setJti(randomUUID())
      .sign(signingKey.privateKey);
  };

  const login = async (user: TestUser): Promise<TestUser> => {
    const response = await message.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: user.username, password: PASSWORD },
    });
    if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
    const body = response.json<AuthResponse>();
    return {
      ...user,
      accessToken: body.tokens.accessToken,
      refreshToken: body.tokens.refreshToken,
      sessionId: body.tokens.sessionId,
      headers: { authorization: `Bearer ${body.tokens.accessToken}` },
    };
  };

  return {
    message,
    messageUrl,
    nodes,
    startNode,
    connect,
    attemptUpgrade,
    connectStalled,
    signToken,
    login,
    admin,
    close: async () => {
      for (const client of clients) client.terminate();
      for (const client of stalled) client.destroy();
      await Promise.allSettled(nodes.map((node) => node.close()));
      admin.disconnect();
      await message.close();
    },
  };
}
