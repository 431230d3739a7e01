import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AccessTokenVerifier } from '@parley/auth';
import type { Bus } from '@parley/bus';
import { Channels, decodeBusEvent, ErrorCatalogue, WS_SUBPROTOCOL, type ErrorCode, type RoutingInfo } from '@parley/protocol';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import type { GatewayConfig } from './config';
import { ClientConnection, encodeFrame } from './connection';
import { EventRouter } from './event-router';
import { ExpiryWheel } from './expiry-wheel';
import { FrameHandler } from './frame-handler';
import { MessageServiceClient } from './message-service-client';
import type { GatewayMetrics } from './metrics';
import type { Presence } from './presence';
import { authorizeUpgrade, type RefusalReason } from './upgrade-auth';
import { WriteCoalescer } from './write-coalescer';

export type GatewayOptions = Pick<
  GatewayConfig,
  | 'nodeId'
  | 'messageServiceUrl'
  | 'allowedOrigins'
  | 'maxFrameBytes'
  | 'rateLimitFramesPerSecond'
  | 'sendBufferMaxBytes'
  | 'heartbeatIntervalMs'
  | 'drainWindowMs'
  | 'messageServiceTimeoutMs'
  | 'maxConnections'
  | 'maxConnectionsPerUser'
>;

/**
 * The WebSocketServer's options, every limit explicit (ws's defaults are generous: a
 * 100 MiB payload, 16,384 fragments, 262,144 buffered chunks). No client Parley ships
 * fragments its frames, so a few fragments are plenty; a message whose pieces or reads
 * pass these limits closes its socket with 1008 (1009 for its size) before it is buffered.
 */
export function webSocketServerOptions(maxFrameBytes: number) {
  return {
    noServer: true,
    /** A larger message closes the socket with 1009, counted as it arrives (fragments included). */
    maxPayload: maxFrameBytes,
    /** Fragments of one message before the socket is closed with 1008. */
    maxFragments: 64,
    /** Unparsed reads held for one socket (a frame trickled a byte at a time) before 1008. */
    maxBufferedChunks: 1024,
    /** Pings answered but not yet flushed, before ws stops answering. */
    maxPendingAutoPongs: 16,
    /** Text frames must be valid UTF-8; an invalid one closes the socket with 1007. */
    skipUTF8Validation: false,
    allowSynchronousEvents: true,
    /** No compression: no inflate bombs, no per-socket zlib memory. */
    perMessageDeflate: false,
  } as const;
}

export interface GatewayDeps {
  options: GatewayOptions;
  bus: Bus;
  presence: Presence;
  verifier: AccessTokenVerifier;
  logger: Logger;
  metrics: GatewayMetrics;
  /** Extra readiness checks (e.g. Redis); each rejects when its dependency is down. */
  readinessChecks?: Record<string, () => Promise<unknown>>;
}

/**
 * A ws socket that knows its connection, so that one set of listeners serves every socket
 * of a node: a closure per socket and event costs memory on a node holding thousands.
 */
class GatewaySocket extends WebSocket {
  connection: ClientConnection | undefined;
}

/** Listeners get the emitter as `this`: one function for every socket. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

function connectionOf(socket: WebSocket): ClientConnection | undefined {
  return (socket as GatewaySocket).connection;
}

function onSocketPong(this: WebSocket): void {
  const connection = connectionOf(this);
  if (connection) connection.alive = true;
}

const READINESS_TIMEOUT_MS = 2000;
/** How long a request (an upgrade included) may take to send its headers. */
export const UPGRADE_HEADERS_TIMEOUT_MS = 10_000;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** One node's socket listeners; each finds its connection on the socket it is called on. */
function socketListeners(node: {
  onFrame(connection: ClientConnection, data: Buffer, isBinary: boolean): void;
  onClose(connection: ClientConnection): void;
  logger: Logger;
}) {
  return {
    message(this: WebSocket, data: Buffer, isBinary: boolean): void {
      const connection = connectionOf(this);
      if (connection) node.onFrame(connection, data, isBinary);
    },
    error(this: WebSocket, error: Error): void {
      node.logger.debug({ err: error, userId: connectionOf(this)?.userId }, 'socket error');
    },
    close(this: WebSocket): void {
      const connection = connectionOf(this);
      if (connection) node.onClose(connection);
    },
  };
}

/**
 * A gateway node: raw WebSockets on node:http. It authenticates upgrades, holds the
 * sockets, forwards requests to the message service and delivers bus events.
 */
export class Gateway {
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  private readonly wss: WebSocketServer;
  private readonly router: EventRouter;
  private readonly frames: FrameHandler;
  private readonly messageService: MessageServiceClient;
  private readonly connections = new Set<ClientConnection>();
  /** One per node: every socket's frames of a turn leave in one write (see WriteCoalescer). */
  private readonly coalescer = new WriteCoalescer();
  /** Token expiry of every socket, on one timer. */
  private readonly expiries = new ExpiryWheel<ClientConnection>((connection) => connection.close('AUTH_EXPIRED'));
  /** Open sockets per user on this node, for presence. */
  private readonly socketsPerUser = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private emptyWaiters: Array<() => void> = [];
  /** Close clean-ups (unsubscribe, presence) still running; shutdown waits for them. */
  private readonly cleanups = new Set<Promise<unknown>>();
  private draining = false;
  /** The server whose upgrades this node takes, when it is not its own (see attach). */
  private attachedTo: Server | undefined;
  /** The socket listeners of this node, shared by its sockets (see GatewaySocket). */
  private readonly socketListeners: ReturnType<typeof socketListeners>;

  constructor(private readonly deps: GatewayDeps) {
    const { options, logger } = deps;
    this.metrics = deps.metrics;
    this.messageService = new MessageServiceClient(
      options.messageServiceUrl,
      options.messageServiceTimeoutMs,
      {
        observe: (route, outcome, seconds) => this.metrics.messageServiceLatency.observe({ route, outcome }, seconds),
        onSendBatch: (size) => this.metrics.sendBatchSize.observe(size),
      },
    );
    this.router = new EventRouter(deps.bus, logger, this.metrics, (connection, peerId) =>
      this.sendPresenceSnapshot(connection, [peerId]),
    );
    this.frames = new FrameHandler({
      messageService: this.messageService,
      router: this.router,
      bus: deps.bus,
      verifier: deps.verifier,
      metrics: this.metrics,
      framesPerSecond: options.rateLimitFramesPerSecond,
    });
    this.wss = new WebSocketServer({
      ...webSocketServerOptions(options.maxFrameBytes),
      // Never echo the auth subprotocol (it carries the token); select ours or none.
      handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
      WebSocket: GatewaySocket,
      // The node keeps its own set of connections; ws's would add a set entry and a close listener per socket.
      clientTracking: false,
    });
    this.socketListeners = socketListeners({
      onFrame: (connection, data, isBinary) => this.onFrame(connection, data, isBinary),
      onClose: (connection) => void this.onClose(connection),
      logger,
    });
    // A client that trickles its request headers (a slow upgrade) is cut after
    // UPGRADE_HEADERS_TIMEOUT_MS, checked every second, instead of Node's 60 s and 30 s.
    this.server = createServer(
      { headersTimeout: UPGRADE_HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
      (request, response) => {
        this.onHttpRequest(request, response).catch((error: unknown) => {
          logger.error({ err: error, url: request.url }, 'http request failed');
          if (!response.headersSent) response.writeHead(500).end();
        });
      },
    );
    this.server.on('upgrade', this.upgradeListener);
    deps.bus.onResubscribed(() => void this.recoverFromBusOutage());
  }

  private readonly upgradeListener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A bug in the upgrade path costs that one upgrade, never the node.
    this.onUpgrade(request, socket, head).catch((error: unknown) => {
      this.deps.logger.error({ err: error }, 'upgrade failed');
      socket.destroy();
    });
  };

  get connectionCount(): number {
    return this.connections.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Serves on a server of its own: `/ws`, and `/healthz`, `/readyz`, `/metrics`. */
  async listen(port: number, host: string): Promise<{ port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    await this.start();
    const address = this.server.address();
    return { port: typeof address === 'object' && address ? address.port : port };
  }

  /**
   * Serves `/ws` on someone else's HTTP server instead (the single-process server shares
   * its port with the API), which keeps every other request and its own health routes.
   * Any other upgrade path is refused with 404. Its own server then stays unused.
   */
  async attach(server: Server): Promise<void> {
    this.attachedTo = server;
    server.on('upgrade', this.upgradeListener);
    await this.start();
  }

  private async start(): Promise<void> {
    this.deps.presence.start();
    await this.deps.bus.subscribe(Channels.system(), (payload) => {
      const event = decodeBusEvent(payload);
      if (event?.type === 'resync') void this.recoverFromBusOutage(event.reason);
    });
    this.heartbeat = setInterval(() => this.checkHeartbeats(), this.deps.options.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /**
   * Drains the node: readiness turns false, new upgrades get 503, and open sockets are
   * closed with 1012 spread evenly over the drain window, so their clients reconnect to
   * other nodes without a stampede. Resolves when every socket is gone.
   */
  async drain(): Promise<void> {
    this.draining = true;
    this.metrics.draining.set(1);
    const sockets = [...this.connections];
    const window = this.deps.options.drainWindowMs;
    this.deps.logger.info({ sockets: sockets.length, windowMs: window }, 'draining');
    sockets.forEach((connection, index) => {
      const delay = sockets.length > 1 ? Math.floor((window * index) / (sockets.length - 1)) : 0;
      setTimeout(() => connection.close('SERVER_DRAINING'), delay).unref();
    });
    await this.waitUntilEmpty(window + 5000);
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.expiries.stop();
    this.attachedTo?.off('upgrade', this.upgradeListener);
    for (const connection of this.connections) connection.socket.terminate();
    await this.waitUntilEmpty(5000); // lets the close clean-ups mark users offline
    await this.deps.presence.stop();
    await this.messageService.close();
    this.wss.close();
    // An attached gateway leaves the shared server to its owner.
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Resolves when the last socket has closed, or after `timeoutMs` at the latest. */
  private async waitUntilEmpty(timeoutMs: number): Promise<void> {
    if (this.connections.size === 0 && this.cleanups.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.emptyWaiters.push(resolve)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private async onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A shared function, not a closure: a closure here would keep this upgrade's whole
    // scope (the routing answer included) alive as long as the socket.
    socket.on('error', destroySocket);
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/ws') return this.refuse(socket, 'path', 404, 'NOT_FOUND', 'WebSockets are served at /ws.');
    if (this.draining) return this.refuse(socket, 'draining', 503, 'UNAVAILABLE', 'This node is draining; connect again.');
    if (this.connections.size >= this.deps.options.maxConnections) {
      return this.refuse(socket, 'full', 503, 'UNAVAILABLE', 'This node is full; connect again.');
    }
    const decision = await authorizeUpgrade(request, {
      verifier: this.deps.verifier,
      messageService: this.messageService,
      allowedOrigins: this.deps.options.allowedOrigins,
    });
    if (!decision.ok) return this.refuse(socket, decision.reason, decision.status, decision.code, decision.message);
    if (socket.destroyed) return;
    // Checked after the await and counted in onConnection with none between, so
    // concurrent upgrades of one user cannot pass the cap together.
    const perUser = this.deps.options.maxConnectionsPerUser;
    if ((this.socketsPerUser.get(decision.claims.userId) ?? 0) >= perUser) {
      return this.refuse(socket, 'per-user', 429, 'RATE_LIMITED', `At most ${perUser} sockets per user on a node; close one first.`);
    }
    // Checked again: a drain may have started, or the node filled up, while we waited.
    if (this.draining) return this.refuse(socket, 'draining', 503, 'UNAVAILABLE', 'This node is draining; connect again.');
    if (this.connections.size >= this.deps.options.maxConnections) {
      return this.refuse(socket, 'full', 503, 'UNAVAILABLE', 'This node is full; connect again.');
    }
    const { claims, token, routing } = decision;
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', destroySocket); // ws handles the socket's errors from here on
      void this.onConnection(ws as GatewaySocket, claims, token, routing);
    });
  }

  private refuse(socket: Duplex, reason: RefusalReason, status: number, code: string, message: string): void {
    this.metrics.upgradesRejected.inc({ status: String(status), reason });
    const body = JSON.stringify({ error: { code, message } });
    const statusText = STATUS_CODES[status] ?? 'Error';
    if (!socket.writable) return void socket.destroy();
    socket.end(
      `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  private async onConnection(
    ws: GatewaySocket,
    claims: { userId: string; sessionId: string; expiresAt: number },
    token: string,
    routing: RoutingInfo,
  ): Promise<void> {
    const { options, logger } = this.deps;
    const connection = new ClientConnection(
      ws,
      claims.userId,
      claims.sessionId,
      token,
      claims.expiresAt,
      options.sendBufferMaxBytes,
      this.metrics,
      this.coalescer,
      this.expiries,
    );
    this.connections.add(connection);
    this.metrics.connections.set(this.connections.size);
    ws.connection = connection;
    ws.on('pong', onSocketPong);
    ws.on('message', this.socketListeners.message);
    ws.on('error', this.socketListeners.error);
    ws.on('close', this.socketListeners.close);

    // Counted before any await, so a close that races the set-up undoes exactly this.
    const sockets = (this.socketsPerUser.get(connection.userId) ?? 0) + 1;
    this.socketsPerUser.set(connection.userId, sockets);
    try {
      await this.router.attach(connection, routing);
    } catch (error) {
      logger.warn({ err: error }, 'could not subscribe for a connection; closing it');
      connection.close('INTERNAL_ERROR');
      return;
    }
    if (!this.connections.has(connection)) return; // closed while subscribing
    // Subscribed: from here on the socket hears every event, so `hello` can say it is open
    // (events heard while subscribing were held and follow it).
    connection.start({
      type: 'hello',
      userId: connection.userId,
      sessionId: connection.sessionId,
      nodeId: options.nodeId,
      heartbeatMs: options.heartbeatIntervalMs,
      tokenExpiresAt: connection.tokenExpiresAt,
    });
    if (sockets === 1) await this.presenceChange(connection.userId, true);
    await this.sendPresenceSnapshot(connection, routing.directPeerIds);
  }

  private onFrame(connection: ClientConnection, data: Buffer, isBinary: boolean): void {
    this.frames.handle(connection, data, isBinary).catch((error: unknown) => {
      // A bug in frame handling must cost this socket, never the node.
      this.deps.logger.error({ err: error, userId: connection.userId }, 'frame handling failed');
      connection.close('INTERNAL_ERROR');
    });
  }

  private async sendPresenceSnapshot(connection: ClientConnection, peers: string[]): Promise<void> {
    try {
      const online = await this.deps.presence.isOnline(peers);
      peers.forEach((userId, index) => connection.sendFrame({ type: 'presence', userId, online: online[index] ?? false }));
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'presence snapshot failed');
    }
  }

  private async onClose(connection: ClientConnection): Promise<void> {
    if (!this.connections.delete(connection)) return;
    connection.dispose();
    this.metrics.connections.set(this.connections.size);
    this.frames.forget(connection);
    const left = (this.socketsPerUser.get(connection.userId) ?? 1) - 1;
    if (left > 0) this.socketsPerUser.set(connection.userId, left);
    else this.socketsPerUser.delete(connection.userId);
    const cleanup = Promise.allSettled([
      this.router.detach(connection).catch((error: unknown) => this.deps.logger.warn({ err: error }, 'unsubscribe failed')),
      left > 0 ? Promise.resolve() : this.presenceChange(connection.userId, false),
    ]);
    this.cleanups.add(cleanup);
    await cleanup;
    this.cleanups.delete(cleanup);
    if (this.connections.size === 0 && this.cleanups.size === 0) {
      for (const resolve of this.emptyWaiters.splice(0)) resolve();
    }
  }

  /** Presence is best effort: a Redis hiccup must not cost the user their socket. */
  private async presenceChange(userId: string, online: boolean): Promise<void> {
    try {
      if (online) await this.deps.presence.userConnected(userId);
      else await this.deps.presence.userDisconnected(userId);
    } catch (error) {
      this.deps.logger.warn({ err: error, userId, online }, 'presence update failed');
    }
  }

  /** A peer that did not answer the previous ping is gone: close it (its TCP may never say so). */
  private checkHeartbeats(): void {
    for (const connection of this.connections) {
      if (!connection.alive) {
        // A live but silent peer still reads the close frame; a dead one is cut after the grace.
        connection.close('HEARTBEAT_TIMEOUT');
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }

  /**
   * The bus was cut off, here or at a publisher (a `resync` notice on `system`): any
   * event may have been lost, membership and revocation doorbells included. Each socket's subscriptions are rebuilt from the message
   * service (which also re-checks its session), then the client is told to resync.
   */
  private async recoverFromBusOutage(reason = 'bus reconnected; events may have been missed'): Promise<void> {
    this.metrics.busResyncs.inc();
    this.deps.logger.warn({ sockets: this.connections.size, reason }, 'refreshing routing and resyncing every socket');
    const frame = encodeFrame({ type: 'resync', reason });
    await Promise.all(
      [...this.connections].map(async (connection) => {
        await this.refreshRouting(connection);
        connection.send(frame);
      }),
    );
  }

  /** Re-reads what a socket should hear; a session the service refuses ends the socket. */
  async refreshRouting(connection: ClientConnection): Promise<void> {
    const routing = await this.messageService.routing(connection.token);
    if (routing.ok) {
      await this.router.reconcile(connection, routing.body).catch((error: unknown) => {
        this.deps.logger.warn({ err: error }, 'could not resubscribe a socket; closing it');
        connection.close('INTERNAL_ERROR');
      });
    } else if (routing.status === 401) {
      connection.close(routing.code === 'SESSION_REVOKED' ? 'SESSION_REVOKED' : 'AUTH_INVALID');
    }
  }

  /** Runs the readiness checks (each with a deadline) and records the outcome in the ready gauge. */
  private async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    for (const [name, check] of Object.entries(this.deps.readinessChecks ?? {})) {
      checks[name] = await withTimeout(check(), READINESS_TIMEOUT_MS).then(
        () => 'ok',
        (error: unknown) => String((error as Error)?.message ?? error),
      );
    }
    const ready = !this.draining && Object.values(checks).every((result) => result === 'ok');
    this.metrics.ready.set(ready ? 1 : 0);
    return { ready, checks };
  }

  private async onHttpRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '').split('?')[0];
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === '/healthz') return json(200, { status: 'ok', nodeId: this.deps.options.nodeId });
    if (path === '/readyz') {
      const { ready, checks } = await this.readiness();
      return json(ready ? 200 : 503, {
        status: ready ? 'ready' : this.draining ? 'draining' : 'not ready',
        nodeId: this.deps.options.nodeId,
        connections: this.connections.size,
        checks,
      });
    }
    if (path === '/metrics') {
      // The ready gauge is what a scrape sees now, not what the last probe saw.
      await this.readiness();
      response.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      return void response.end(await this.metrics.registry.metrics());
    }
    const code: ErrorCode = 'NOT_FOUND';
    return json(404, { error: { code, message: ErrorCatalogue[code].message } });
  }
}
