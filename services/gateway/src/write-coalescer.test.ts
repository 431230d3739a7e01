import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { WriteCoalescer } from './write-coalescer';

const FRAMES = 50;

/** A connected pair: the server side's raw socket counts the writes that reach the kernel. */
async function connectedPair() {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const [serverSide] = (await once(server, 'connection')) as [WebSocket];
  await once(client, 'open');
  const raw = (serverSide as unknown as { _socket: Duplex & Record<'_write' | '_writev', (...args: unknown[]) => unknown> })._socket;
  const writes = { count: 0 };
  for (const method of ['_write', '_writev'] as const) {
    const original = raw[method].bind(raw);
    raw[method] = (...args: unknown[]) => {
      writes.count += 1;
      return original(...args);
    };
  }
  const received: string[] = [];
  let allReceived: () => void = () => {};
  const receivedAll = new Promise<void>((resolve) => (allReceived = resolve));
  client.on('message', (data) => {
    received.push(data.toString());
    if (received.length === FRAMES) allReceived();
  });
  return {
    serverSide,
    writes,
    received,
    receivedAll,
    async close() {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('WriteCoalescer', () => {
  it('turns the frames a socket is sent in one turn into one write, in order', async () => {
    const pair = await connectedPair();
    try {
      await sendTurnUntilReceived(pair, new WriteCoalescer());
      expect(pair.writes.count).toBe(1);
      expect(pair.received).toEqual(Array.from({ length: FRAMES }, (_, i) => `frame ${i}`));
    } finally {
      await pair.close();
    }
  });

  it('(without it, ws writes every frame on its own)', async () => {
    const pair = await connectedPair();
    try {
      await sendTurnUntilReceived(pair);
      expect(pair.writes.count).toBeGreaterThanOrEqual(FRAMES);
    } finally {
      await pair.close();
    }
  });

  it('counts corked bytes in bufferedAmount, so the slow-consumer limit still sees them', async () => {
    const pair = await connectedPair();
    try {
      const coalescer = new WriteCoalescer();
      coalescer.hold(pair.serverSide);
      pair.serverSide.send('x'.repeat(10_000));
      expect(pair.serverSide.bufferedAmount).toBeGreaterThanOrEqual(10_000);
      expect(coalescer.holding).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(coalescer.holding).toBe(0);
    } finally {
      await pair.close();
    }
  });
});

/** Sends FRAMES frames in one synchronous turn, then waits until the client has them all. */
async function sendTurnUntilReceived(pair: Awaited<ReturnType<typeof connectedPair>>, coalescer?: WriteCoalescer) {
  for (let i = 0; i < FRAMES; i += 1) {
    coalescer?.hold(pair.serverSide);
    pair.serverSide.send(`frame ${i}`);
  }
  await pair.receivedAll;
}
