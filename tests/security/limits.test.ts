// The gateway's limits at their edges (docs/protocol.md "Limits", docs/gateway.md
// "Limits and abuse"), against real in-process gateways in front of the real message
// service, PostgreSQL and Redis. Covered elsewhere, and not repeated here: a frame far
// over the limit (1009) and a ping flood (RATE_LIMITED, then 4008) in
// services/gateway/test/gateway.test.ts and, through nginx, tests/e2e/fleet-abuse.test.ts;
// MAX_CONNECTIONS (503) in services/gateway/test/gateway.test.ts.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { CloseCodes } from '@parley/protocol';
import {
  loadGatewayConfig,
  UPGRADE_HEADERS_TIMEOUT_MS,
  webSocketServerOptions,
} from '@parley/gateway';
import { WebSocket } from 'ws';
import { startGatewayHarness, WAIT_MS, within, type GatewayHarness, type GatewayNode, type TestClient } from '../support/gateway-harness';
import { call, createGroupAs, registerUsers, type TestUser } from '../support/message-harness';
import { clientFrame, Opcode, RawWebSocket, upgradeRequest } from './support/limits-wire';

jest.setTimeout(60_000);

let h: GatewayHarness;
let node: GatewayNode;

beforeAll(async () => {
  h = await startGatewayHarness();
  node = await h.startNode({ maxFrameBytes: 1024 });
});
afterAll(async () => h?.close());

async function user(): Promise<TestUser> {
  return (await registerUsers(h.message.app, 1))[0]!;
}

/** A valid ping of exactly `bytes` bytes: JSON allows trailing whitespace. */
function pingOfSize(id: string, bytes: number): string {
  const text = JSON.stringify({ type: 'ping', id });
  return text + ' '.repeat(bytes - Buffer.byteLength(text));
}

/** The node still serves a fresh, well-behaved client. */
async function nodeServes(target: GatewayNode = node): Promise<void> {
  const witness = await h.connect(target, await user(), { label: 'witness' });
  await witness.ping();
  witness.close();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

describe('frame size', () => {
  test('a frame of exactly MAX_FRAME_BYTES is served; one byte more closes the socket with 1009', async () => {
    const client = await h.connect(node, await user(), { label: 'edge' });
    const atLimit = pingOfSize('at-limit', 1024);
    expect(Buffer.byteLength(atLimit)).toBe(1024);
    client.sendRaw(atLimit);
    expect(await client.next('pong', (frame) => frame.id === 'at-limit')).toMatchObject({ id: 'at-limit' });

    // The limit counts bytes, not characters: 3 bytes per €.
    const oneMore = pingOfSize('over-€€€', 1025);
    expect(oneMore.length).toBeLessThan(1024);
    expect(Buffer.byteLength(oneMore)).toBe(1025);
    client.sendRaw(oneMore);
    expect((await client.closedWithin()).code).toBe(CloseCodes.TOO_LARGE.code);
    expect(client.frames('pong', (frame) => frame.id === 'over-€€€')).toEqual([]);
    await nodeServes();
  });

  test('the size limit counts a fragmented message whole: fragments summing to one byte over close with 1009', async () => {
    const client = await h.connect(node, await user(), { label: 'fragmented-size' });
    const text = Buffer.from(pingOfSize('frag-over', 1025));
    client.ws.send(text.subarray(0, 600), { fin: false, binary: false });
    client.ws.send(text.subarray(600), { fin: true, binary: false });
    expect((await client.closedWithin()).code).toBe(CloseCodes.TOO_LARGE.code);
  });
});

describe('fragments', () => {
  test('a message in 64 fragments is served; 65 fragments close the socket with 1008', async () => {
    const client = await h.connect(node, await user(), { label: 'fragments' });
    const ok = Buffer.from(pingOfSize('in-64', 128));
    for (let index = 0; index < 64; index++) client.ws.send(ok.subarray(index * 2, index * 2 + 2), { fin: index === 63, binary: false });
    expect(await client.next('pong', (frame) => frame.id === 'in-64')).toMatchObject({ id: 'in-64' });

    const tooMany = Buffer.from(pingOfSize('in-65', 130));
    for (let index = 0; index < 65; index++) client.ws.send(tooMany.subarray(index * 2, index * 2 + 2), { fin: index === 64, binary: false });
    expect((await client.closedWithin()).code).toBe(CloseCodes.POLICY_VIOLATION.code);
    expect(client.frames('pong', (frame) => frame.id === 'in-65')).toEqual([]);
  });

  test('a flood of 20,000 one-byte continuation fragments is cut at the 65th; the node keeps serving', async () => {
    const flooder = await user();
    const { raw } = await RawWebSocket.open(node.port, flooder.accessToken);
    const flood = [clientFrame(Opcode.text, Buffer.from('{'), { fin: false })];
    for (let index = 0; index < 20_000; index++) flood.push(clientFrame(Opcode.continuation, Buffer.from(' '), { fin: false }));
    const bytes = Buffer.concat(flood);
    raw.write(bytes);
    const code = await within(raw.ended, WAIT_MS, 'the flooded socket to end');
    process.stdout.write(`[limits] fragment flood: ${flood.length} fragments (${bytes.length} bytes) → close ${code}\n`);
    expect(code).toBe(CloseCodes.POLICY_VIOLATION.code);
    await nodeServes();
  });
});

describe('encoding and compression', () => {
  test('a text frame that is not valid UTF-8 closes the socket with 1007', async () => {
    const client = await h.connect(node, await user(), { label: 'utf8' });
    client.sendRaw(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x7d]), false);
    expect((await client.closedWithin()).code).toBe(1007);
    await nodeServes();
  });

  test('permessage-deflate is never negotiated, and a compressed (RSV1) frame closes the socket with 1002', async () => {
    const offerer = await user();
    const ws = new WebSocket(node.wsUrl, [], {
      headers: { authorization: `Bearer ${offerer.accessToken}` },
      perMessageDeflate: true,
    });
    let offered: string | undefined = 'not seen';
    ws.once('upgrade', (res) => {
      offered = res.headers['sec-websocket-extensions'];
    });
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      WAIT_MS,
      'upgrade offering permessage-deflate',
    );
    expect(offered).toBeUndefined();
    expect(ws.extensions).toBe('');
    ws.terminate();

    // A client that compresses anyway: a deflated frame (RSV1 set) is a protocol error.
    const { raw, response: head } = await RawWebSocket.open(
      node.port,
      offerer.accessToken,
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n',
    );
    expect(head.toLowerCase()).not.toContain('sec-websocket-extensions');
    raw.write(clientFrame(Opcode.text, Buffer.from([0x4b, 0x4c, 0x04, 0x00]), { rsv1: true }));
    expect(await within(raw.ended, WAIT_MS, 'the compressing socket to end')).toBe(1002);
    await nodeServes();
  });
});

describe('a reader that never reads', () => {
  test('is closed with 4009 at the buffer limit, while another pair’s send → deliver latency barely moves', async () => {
    const slowNode = await h.startNode({ sendBufferMaxBytes: 64 * 1024 });
    const [owner, slow, sender, receiver] = await registerUsers(h.message.app, 4);
    const sink = (await createGroupAs(h.message.app, owner!, [slow!], 'sink')).id;
    const chat = (await createGroupAs(h.message.app, sender!, [receiver!], 'witness chat')).id;
    const senderClient = await h.connect(slowNode, sender!, { label: 'sender' });
    const receiverClient = await h.connect(slowNode, receiver!, { label: 'receiver' });

    let probes = 0;
    const probe = async (): Promise<number> => {
      const body = `probe ${++probes}`;
      const started = performance.now();
      await senderClient.ack({ type: 'send', conversationId: chat, clientMessageId: randomUUID(), body });
      await receiverClient.next('message', (frame) => frame.message.body === body);
      return performance.now() - started;
    };
    const baseline: number[] = [];
    for (let index = 0; index < 20; index++) baseline.push(await probe());

    const stalled = await h.connectStalled(slowNode, slow!.accessToken);
    await slowNode.waitForConnectionCount(3);
    const body = '€'.repeat(4000);
    const during: number[] = [];
    let sent = 0;
    const startedAt = Date.now();
    while ((await slowNode.metricValue('parley_gateway_slow_consumer_closes_total')) === 0) {
      if (sent >= 2400) throw new Error('2400 messages of 12 KB did not fill a 64 KiB send buffer');
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const response = await call(h.message.app, owner!, 'POST', `/v1/conversations/${sink}/messages`, {
            clientMessageId: `flood-${sent++}`,
            body,
          });
          expect(response.statusCode).toBe(201);
        }),
      );
      during.push(await probe());
    }
    expect(await slowNode.metricValue('parley_gateway_closes_total', { code: String(CloseCodes.SLOW_CONSUMER.code) })).toBe(1);
    await slowNode.waitForConnectionCount(2);
    const after = await probe();
    stalled.destroy();

    const stats = (values: number[]) => `median ${median(values).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`;
    process.stdout.write(
      `[limits] slow reader cut (4009) after ${sent} messages of 12 KB in ${Date.now() - startedAt} ms; ` +
        `witness latency: before ${stats(baseline)}; during (${during.length} probes) ${stats(during)}; after ${after.toFixed(1)} ms\n`,
    );
    // The bound: the median stays within 5× the quiet median plus 50 ms, no probe over 1 s.
    expect(median(during)).toBeLessThanOrEqual(5 * median(baseline) + 50);
    expect(Math.max(...during)).toBeLessThan(1000);
    expect(senderClient.isOpen && receiverClient.isOpen).toBe(true);
  });
});

describe('slow and half-open upgrades from one address', () => {
  test('300 stalled upgrades (silent, or trickling headers) do not keep a legitimate client out', async () => {
    const held: net.Socket[] = [];
    try {
      const opened = Array.from({ length: 300 }, async (_, index) => {
        const socket = net.connect(node.port, '127.0.0.1');
        socket.on('error', () => undefined);
        held.push(socket);
        await once(socket, 'connect');
        // Half of them never say a word; the others send part of an upgrade and stall.
        if (index % 2 === 1) socket.write(upgradeRequest(node.port, 'x').slice(0, 60 + (index % 40)));
      });
      await within(Promise.all(opened), WAIT_MS, '300 TCP connections');
      const startedAt = performance.now();
      const legit = await h.connect(node, await user(), { label: 'legit' });
      await legit.ping();
      const elapsed = performance.now() - startedAt;
      process.stdout.write(`[limits] with 300 stalled upgrades open, a legitimate connect + ping took ${elapsed.toFixed(1)} ms\n`);
      expect(elapsed).toBeLessThan(1000);
      expect(held.filter((socket) => socket.destroyed)).toEqual([]);
      legit.close();
    } finally {
      for (const socket of held) socket.destroy();
    }
    // Slow headers are bounded in time, far below Node's 60 s default.
    expect(node.gateway.server.headersTimeout).toBe(UPGRADE_HEADERS_TIMEOUT_MS);
    expect(UPGRADE_HEADERS_TIMEOUT_MS).toBeLessThanOrEqual(10_000);
  });
});

describe('connections per user', () => {
  test('past maxConnectionsPerUser a user’s upgrade gets 429 RATE_LIMITED; others connect; closing one frees a place', async () => {
    const capped = await h.startNode({ maxConnectionsPerUser: 3 });
    const [many, other] = await registerUsers(h.message.app, 2);
    // Concurrent upgrades cannot slip past the cap together (each socket stays open).
    const concurrent = Array.from({ length: 8 }, () => new WebSocket(capped.wsUrl, [], { headers: { authorization: `Bearer ${many!.accessToken}` } }));
    const outcomes = await within(
      Promise.all(
        concurrent.map(
          (ws) =>
            new Promise<{ status: number; body: string }>((resolve, reject) => {
              ws.on('error', () => undefined);
              ws.once('open', () => resolve({ status: 101, body: '' }));
              ws.once('unexpected-response', (_request, response) => {
                const chunks: Buffer[] = [];
                response.on('data', (chunk: Buffer) => chunks.push(chunk));
                response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
                response.on('error', reject);
              });
            }),
        ),
      ),
      WAIT_MS,
      '8 concurrent upgrades to be answered',
    );
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual([101, 101, 101, 429, 429, 429, 429, 429]);
    for (const outcome of outcomes.filter((entry) => entry.status === 429)) {
      expect(JSON.parse(outcome.body)).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    }
    for (const ws of concurrent) ws.terminate();
    await capped.waitForConnectionCount(0);

    const sockets: TestClient[] = [];
    for (let index = 0; index < 3; index++) sockets.push(await h.connect(capped, many!, { label: `many-${index}` }));
    expect((await h.attemptUpgrade(capped, { token: many!.accessToken })).status).toBe(429);
    // Another session of the same user counts too: the cap is per user, not per session.
    const second = await h.login(many!);
    expect((await h.attemptUpgrade(capped, { token: second.accessToken, via: 'subprotocol' })).status).toBe(429);
    // Someone else is not affected.
    const otherClient = await h.connect(capped, other!, { label: 'other' });
    await otherClient.ping();
    for (const socket of sockets) await socket.ping();

    sockets[0]!.close();
    await sockets[0]!.closedWithin();
    await capped.waitForConnectionCount(3);
    const again = await h.connect(capped, second, { label: 'again' });
    await again.ping();
    expect(await capped.metricValue('parley_gateway_upgrades_rejected_total', { status: '429', reason: 'per-user' })).toBe(7);
  });

  test('the default is MAX_CONNECTIONS_PER_USER=20, and the variable is read', () => {
    const required = { REDIS_URL: 'redis://127.0.0.1:6379', MESSAGE_SERVICE_URL: 'http://127.0.0.1:3000' };
    expect(loadGatewayConfig(required).maxConnectionsPerUser).toBe(20);
    expect(loadGatewayConfig({ ...required, MAX_CONNECTIONS_PER_USER: '5' }).maxConnectionsPerUser).toBe(5);
    expect(() => loadGatewayConfig({ ...required, MAX_CONNECTIONS_PER_USER: '0' })).toThrow(/MAX_CONNECTIONS_PER_USER/);
  });
});

describe('the WebSocket server’s limits are explicit', () => {
  test('maxPayload, fragments, buffered chunks, pending pongs, UTF-8 validation and no compression', () => {
    expect(webSocketServerOptions(32768)).toEqual({
      noServer: true,
      maxPayload: 32768,
      maxFragments: 64,
      maxBufferedChunks: 1024,
      maxPendingAutoPongs: 16,
      skipUTF8Validation: false,
      allowSynchronousEvents: true,
      perMessageDeflate: false,
    });
    // And the running server uses them (ws keeps its options on the server).
    const wss = (node.gateway as unknown as { wss: { options: Record<string, unknown> } }).wss;
    expect(wss.options).toMatchObject({ ...webSocketServerOptions(1024) });
  });

  test('ws is at 8.23 or later (the release with maxFragments and maxBufferedChunks)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { version } = require('ws/package.json') as { version: string };
    const [major, minor] = version.split('.').map(Number);
    expect(major! > 8 || (major === 8 && minor! >= 23)).toBe(true);
  });
});
