import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { MessageApp } from '@parley/message-service';
import {
  WS_AUTH_SUBPROTOCOL_PREFIX,
  WS_SUBPROTOCOL,
  type ClientFrame,
  type Me,
  type ReadState,
  type SendMessageResponse,
  type ServerFrame,
} from '@parley/protocol';
import { WebSocketServer, type WebSocket } from 'ws';

/** One socket as the scripted gateway sees it. */
export interface GatewaySocket {
  ws: WebSocket;
  token: string;
  via: 'header' | 'subprotocol';
  userId: string;
  frames: ClientFrame[];
  closed: Promise<{ code: number; reason: string }>;
  send(frame: ServerFrame): void;
}

type Interceptor = (socket: GatewaySocket, frame: ClientFrame) => boolean | Promise<boolean>;

/**
 * A stand-in for the gateway in SDK tests: a real `ws` server speaking the ws.ts protocol,
 * which checks tokens and forwards sends and reads to the real message service (through
 * `app.inject`). Tests script the rest: which frames to push, when to drop or close a
 * socket, which requests to leave unanswered (`intercept`). The real gateway is tested
 * end to end elsewhere; this one makes the client's failure paths reproducible.
 */
export class ScriptedGateway {
  readonly sockets: GatewaySocket[] = [];
  /** Return true to take over a frame (the default forwarding is skipped). */
  intercept: Interceptor = () => false;
  /** Heartbeat the hello announces. */
  heartbeatMs = 25_000;
  /** When set, upgrades are refused with this HTTP status (as the gateway does for a bad token). */
  refuseUpgradesWith: number | undefined;
  /** Upgrades refused so far. */
  refused = 0;
  private waiters: Array<(socket: GatewaySocket) => void> = [];

  private constructor(
    private readonly server: WebSocketServer,
    private readonly app: MessageApp,
  ) {
    server.on('connection', (ws, request) => void this.accept(ws, request));
  }

  static async start(app: MessageApp): Promise<ScriptedGateway> {
    const holder: { gateway?: ScriptedGateway } = {};
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      path: '/ws',
      handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
      verifyClient: (_info, done) => {
        const status = holder.gateway?.refuseUpgradesWith;
        if (status === undefined) return done(true);
        holder.gateway!.refused += 1;
        done(false, status);
      },
    });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    holder.gateway = new ScriptedGateway(server, app);
    return holder.gateway;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`;
  }

  /** Resolves with the `index`-th socket (0-based) once it has been accepted and greeted. */
  socket(index: number): Promise<GatewaySocket> {
    const existing = this.sockets[index];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const check = () => {
        const found = this.sockets[index];
        if (found) resolve(found);
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  async close(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async accept(ws: WebSocket, request: IncomingMessage): Promise<void> {
    const header = request.headers.authorization;
    const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const fromProtocol = offered.find((p) => p.startsWith(WS_AUTH_SUBPROTOCOL_PREFIX))?.slice(WS_AUTH_SUBPROTOCOL_PREFIX.length);
    const token = header?.startsWith('Bearer ') ? header.slice(7) : fromProtocol;
    const me = token ? await this.me(token) : undefined;
    if (!token || !me) {
      ws.close(4002, 'AUTH_INVALID');
      return;
    }
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const socket: GatewaySocket = {
      ws,
      token,
      via: header ? 'header' : 'subprotocol',
      userId: me.id,
      frames: [],
      closed,
      send: (frame) => ws.send(JSON.stringify(frame)),
    };
    ws.on('message', (data) => void this.onFrame(socket, JSON.parse(String(data)) as ClientFrame));
    socket.send({
      type: 'hello',
      userId: me.id,
      sessionId: '00000000-0000-4000-8000-000000000000',
      nodeId: 'scripted',
      heartbeatMs: this.heartbeatMs,
      tokenExpiresAt: expiryOf(token),
    });
    this.sockets.push(socket);
    for (const wake of this.waiters.splice(0)) wake(socket);
  }

  private async onFrame(socket: GatewaySocket, frame: ClientFrame): Promise<void> {
    socket.frames.push(frame);
    if (await this.intercept(socket, frame)) return;
    switch (frame.type) {
      case 'ping':
        return socket.send({ type: 'pong', id: frame.id });
      case 'typing':
        return socket.send({ type: 'ack', id: frame.id });
      case 'auth': {
        const me = await this.me(frame.token);
        if (!me || me.id !== socket.userId) {
          return socket.send({ type: 'error', id: frame.id, code: 'UNAUTHENTICATED', message: 'refused', retryable: false });
        }
        socket.token = frame.token;
        return socket.send({ type: 'ack', id: frame.id, tokenExpiresAt: expiryOf(frame.token) });
      }
      case 'send': {
        const response = await this.app.inject({
          method: 'POST',
          url: `/v1/conversations/${frame.conversationId}/messages`,
          headers: { authorization: `Bearer ${socket.token}` },
          payload: { clientMessageId: frame.clientMessageId, body: frame.body },
        });
        if (response.statusCode >= 300) return this.fail(socket, frame.id, response.json());
        const body = response.json<SendMessageResponse>();
        return socket.send({ type: 'ack', id: frame.id, message: body.message, duplicate: body.duplicate });
      }
      case 'read': {
        const response = await this.app.inject({
          method: 'POST',
          url: `/v1/conversations/${frame.conversationId}/read`,
          headers: { authorization: `Bearer ${socket.token}` },
          payload: { seq: frame.seq },
        });
        if (response.statusCode >= 300) return this.fail(socket, frame.id, response.json());
        return socket.send({ type: 'ack', id: frame.id, readState: response.json<ReadState>() });
      }
    }
  }

  private fail(socket: GatewaySocket, id: string, body: { error: { code: string; message: string } }): void {
    socket.send({ type: 'error', id, code: body.error.code, message: body.error.message, retryable: false });
  }

  private async me(token: string): Promise<Me | undefined> {
    const response = await this.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    return response.statusCode === 200 ? response.json<Me>() : undefined;
  }
}

function expiryOf(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
  return payload.exp;
}
