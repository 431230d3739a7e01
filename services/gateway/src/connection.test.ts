import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { ClientConnection, encodeFrame } from './connection';
import { ExpiryWheel } from './expiry-wheel';
import { GatewayMetrics } from './metrics';
import { WriteCoalescer } from './write-coalescer';

const HELLO = {
  type: 'hello',
  userId: 'u1',
  sessionId: 's1',
  nodeId: 'n1',
  heartbeatMs: 25000,
  tokenExpiresAt: Math.floor(Date.now() / 1000) + 600,
} as const;

async function open(sendBufferMaxBytes = 1 << 20) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const [serverSide] = (await once(server, 'connection')) as [WebSocket];
  const frames: Array<{ type: string }> = [];
  const waiters: Array<{ count: number; resolve(): void }> = [];
  client.on('message', (data) => {
    frames.push(JSON.parse(data.toString()) as { type: string });
    for (const waiter of waiters.filter((w) => frames.length >= w.count)) waiter.resolve();
  });
  const closed = once(client, 'close') as Promise<[number, Buffer]>;
  const expiries = new ExpiryWheel<ClientConnection>((connection) => connection.close('AUTH_EXPIRED'));
  const connection = new ClientConnection(
    serverSide,
    'u1',
    's1',
    'token',
    HELLO.tokenExpiresAt,
    sendBufferMaxBytes,
    new GatewayMetrics(),
    new WriteCoalescer(),
    expiries,
  );
  return {
    connection,
    frames,
    closed,
    /** Resolves once `count` frames have arrived. */
    received: (count: number) =>
      new Promise<void>((resolve) => (frames.length >= count ? resolve() : waiters.push({ count, resolve }))),
    async close() {
      connection.dispose();
      expiries.stop();
      client.terminate();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('ClientConnection', () => {
  it('holds events sent while the socket is set up, and sends them after hello, in order', async () => {
    const socket = await open();
    try {
      socket.connection.sendFrame({ type: 'typing', conversationId: 'c1', userId: 'u2' });
      socket.connection.send(encodeFrame({ type: 'presence', userId: 'u2', online: true }));
      socket.connection.start(HELLO);
      socket.connection.sendFrame({ type: 'presence', userId: 'u3', online: false });
      await socket.received(4);
      expect(socket.frames.map((frame) => frame.type)).toEqual(['hello', 'typing', 'presence', 'presence']);
    } finally {
      await socket.close();
    }
  });

  it('sends a reading client more in one turn than the send buffer limit: the turn\'s coalesced bytes are not held against it', async () => {
    const socket = await open(1000);
    try {
      socket.connection.start(HELLO);
      const frame = encodeFrame({ type: 'typing', conversationId: 'c'.repeat(600), userId: 'u2' });
      const sent = Array.from({ length: 10 }, () => socket.connection.send(frame));
      expect(sent.every(Boolean)).toBe(true);
      await socket.received(11);
      expect(socket.connection.isOpen).toBe(true);
    } finally {
      await socket.close();
    }
  });

  it('closes a socket whose held frames pass the send buffer limit as a slow consumer', async () => {
    const socket = await open(1000);
    try {
      const big = encodeFrame({ type: 'typing', conversationId: 'c'.repeat(600), userId: 'u2' });
      expect(socket.connection.send(big)).toBe(true);
      expect(socket.connection.send(big)).toBe(false);
      const [code] = await socket.closed;
      expect(code).toBe(4009);
    } finally {
      await socket.close();
    }
  });
});
