// Frame fuzzing against a live gateway: a real in-process node in front of the real
// message service, PostgreSQL and Redis, fed at least 100,000 generated frames (valid,
// near-valid, odd numbers, deep nesting, garbage text, binary, invalid UTF-8, one byte
// over the size) over a few authenticated sockets. Asserted: every frame that does not
// end its socket gets exactly one reply, an `ack`, a `pong` or an `error` whose code is in
// the error catalogue; every other server frame is a valid ServerFrame; every close is
// the documented one for its frame; the node never fails internally (no INTERNAL error,
// no 1011, nothing logged at error); and a control client's sends round-trip during and
// after. An unhandled rejection or uncaught exception anywhere fails the test (jest
// reports them against the running test; the node runs in this process).
//
// The node's RATE_LIMIT_FRAMES_PER_SECOND is raised for the run so the rate limiter
// (covered in services/gateway/test/gateway.test.ts) does not end the fuzz sockets.
// FUZZ_FRAMES and FUZZ_SEED override the frame count and the seed (printed on each run).
import { randomUUID } from 'node:crypto';
import { CloseCodes, ErrorCatalogue, ServerFrame } from '@parley/protocol';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import fc from 'fast-check';
import { WebSocket, type RawData } from 'ws';
import { startGatewayHarness, WAIT_MS, within, type GatewayHarness, type GatewayNode, type TestClient } from '../support/gateway-harness';
import { createGroupAs, registerUsers, type TestUser } from '../support/message-harness';
import { frameArbitrary, oversizedFrame, type FuzzFrame } from './support/fuzz-frames';

const TOTAL_FRAMES = Number(process.env['FUZZ_FRAMES'] ?? 100_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31);
const SOCKETS = 4;
const BATCH = 1000;
/** Frames a socket may have unanswered before its sender waits. */
const WINDOW = 256;
/** Every this many frames one is one byte over the size limit. */
const OVERSIZED_EVERY = 1000;
const MAX_FRAME_BYTES = 32768;

jest.setTimeout(120_000);

const checkServerFrame = TypeCompiler.Compile(ServerFrame);
const documentedCloses = new Set<number>([...Object.values(CloseCodes).map((entry) => entry.code), 1002, 1007]);

let h: GatewayHarness;
let node: GatewayNode;
let fuzzer: TestUser;
let control: TestUser;
let conversationId: string;
/** What the gateway logged at error level during the run. */
const gatewayErrors: unknown[] = [];

interface Tally {
  sent: number;
  replies: number;
  byCode: Map<string, number>;
  closes: Map<number, number>;
  events: number;
  reconnects: number;
  /** Anything that broke a rule, described; must stay empty. */
  violations: string[];
}

const tally: Tally = { sent: 0, replies: 0, byCode: new Map(), closes: new Map(), events: 0, reconnects: 0, violations: [] };
const byFamily = new Map<string, number>();

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** A fuzz socket: counts replies and watches for the close, without keeping frames. */
class FuzzSocket {
  sent = 0;
  replies = 0;
  closeCode: number | undefined;
  private readonly closed: Promise<number>;
  private waiter: (() => void) | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data as Buffer, isBinary));
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number) => {
        this.closeCode = code;
        resolve(code);
        this.waiter?.();
      }),
    );
  }

  static async open(url: string, token: string): Promise<FuzzSocket> {
    const ws = new WebSocket(url, [], { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    const socket = new FuzzSocket(ws);
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_request, response) => reject(new Error(`fuzz upgrade refused: ${response.statusCode}`)));
        ws.once('error', reject);
      }),
      WAIT_MS,
      'fuzz socket upgrade',
    );
    return socket;
  }

  send(frame: FuzzFrame): void {
    this.sent += 1;
    this.ws.send(frame.data, { binary: frame.kind === 'binary' });
  }

  /** Resolves once at least `count` replies arrived, or the socket closed. */
  async repliesReach(count: number): Promise<void> {
    if (this.replies >= count || this.closeCode !== undefined) return;
    await within(
      new Promise<void>((resolve) => {
        this.waiter = () => {
          if (this.replies >= count || this.closeCode !== undefined) {
            this.waiter = undefined;
            resolve();
          }
        };
      }),
      WAIT_MS * 3,
      `${count} replies`,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (have ${this.replies}); violations: ${JSON.stringify(tally.violations.slice(0, 5))}`);
    });
  }

  async closedWithin(): Promise<number> {
    return within(this.closed, WAIT_MS, 'the socket to close');
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch {
      tally.violations.push(`unparseable ${isBinary ? 'binary' : 'text'} frame from the server`);
      return;
    }
    if (isBinary || !checkServerFrame.Check(frame)) {
      tally.violations.push(`not a ServerFrame: ${JSON.stringify(frame).slice(0, 200)}`);
      return;
    }
    const typed = frame as ServerFrame;
    if (typed.type === 'ack' || typed.type === 'pong' || typed.type === 'error') {
      this.replies += 1;
      tally.replies += 1;
      const code = typed.type === 'error' ? typed.code : typed.type;
      bump(tally.byCode, code);
      if (typed.type === 'error' && (!(typed.code in ErrorCatalogue) || typed.code === 'INTERNAL')) {
        tally.violations.push(`error code ${typed.code}: ${typed.message}`);
      }
      this.waiter?.();
    } else {
      tally.events += 1;
    }
  }
}

beforeAll(async () => {
  h = await startGatewayHarness();
  node = await h.startNode({ rateLimitFramesPerSecond: 1_000_000, maxFrameBytes: MAX_FRAME_BYTES });
  // The node's own catch-alls (frame handling, upgrades, HTTP) log at error: count them.
  const logger = (node.gateway as unknown as { deps: { logger: { error: (...args: unknown[]) => void } } }).deps.logger;
  logger.error = (...args: unknown[]) => void gatewayErrors.push(args);
  [fuzzer, control] = (await registerUsers(h.message.app, 2)) as [TestUser, TestUser];
  conversationId = (await createGroupAs(h.message.app, control, [fuzzer], 'fuzz')).id;
});
afterAll(async () => h?.close());

/** A control round trip: a send acked, and its message delivered back on the same socket. */
async function controlRoundTrip(client: TestClient, latencies: number[]): Promise<void> {
  const body = `control ${latencies.length}`;
  const started = performance.now();
  const ack = await client.ack({ type: 'send', conversationId, clientMessageId: randomUUID(), body });
  expect(ack.message?.body).toBe(body);
  await client.next('message', (frame) => frame.message.body === body);
  latencies.push(performance.now() - started);
}

test(`${TOTAL_FRAMES.toLocaleString('en')} generated frames: documented replies and closes only, and the node keeps serving`, async () => {
  const startedAt = performance.now();
  const controlClient = await h.connect(node, control, { label: 'control' });
  const controlLatencies: number[] = [];
  await controlRoundTrip(controlClient, controlLatencies);

  const sockets: FuzzSocket[] = await Promise.all(Array.from({ length: SOCKETS }, () => FuzzSocket.open(node.wsUrl, fuzzer.accessToken)));
  let frameNumber = 0;

  /** Sends one socket's share of a batch, reopening the socket after each frame that ends it. */
  const work = async (slot: number, frames: FuzzFrame[]): Promise<void> => {
    for (const frame of frames) {
      let socket = sockets[slot]!;
      if (frame.closesWith) {
        // Every frame before it is answered first, so its close loses nothing.
        await socket.repliesReach(socket.sent);
        socket.send(frame);
        tally.sent += 1;
        const code = await socket.closedWithin();
        bump(tally.closes, code);
        if (!frame.closesWith.includes(code)) tally.violations.push(`${frame.family} closed with ${code}, expected ${frame.closesWith.join('/')}`);
        if (socket.replies !== socket.sent - 1) tally.violations.push(`${socket.sent - 1 - socket.replies} frames unanswered before a close`);
        sockets[slot] = socket = await FuzzSocket.open(node.wsUrl, fuzzer.accessToken);
        tally.reconnects += 1;
        continue;
      }
      if (socket.sent - socket.replies >= WINDOW) await socket.repliesReach(socket.sent - WINDOW / 2);
      if (socket.closeCode !== undefined) {
        bump(tally.closes, socket.closeCode);
        tally.violations.push(`a socket closed unexpectedly with ${socket.closeCode}`);
        sockets[slot] = socket = await FuzzSocket.open(node.wsUrl, fuzzer.accessToken);
        tally.reconnects += 1;
      }
      socket.send(frame);
      tally.sent += 1;
    }
    const socket = sockets[slot]!;
    await socket.repliesReach(socket.sent);
    if (socket.closeCode !== undefined) {
      bump(tally.closes, socket.closeCode);
      tally.violations.push(`a socket closed unexpectedly with ${socket.closeCode}`);
      sockets[slot] = await FuzzSocket.open(node.wsUrl, fuzzer.accessToken);
    } else if (socket.replies !== socket.sent) {
      tally.violations.push(`${socket.sent - socket.replies} frames unanswered`);
    }
  };

  await fc.assert(
    fc.asyncProperty(fc.array(frameArbitrary(conversationId), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
      const frames = batch.map((frame) => {
        frameNumber += 1;
        return frameNumber % OVERSIZED_EVERY === 0 ? oversizedFrame(MAX_FRAME_BYTES) : frame;
      });
      for (const frame of frames) bump(byFamily, frame.family);
      const shares = Array.from({ length: SOCKETS }, (_, slot) => frames.filter((_, index) => index % SOCKETS === slot));
      // The control client round-trips a send alongside every batch.
      await Promise.all([...shares.map((share, slot) => work(slot, share)), controlRoundTrip(controlClient, controlLatencies)]);
      expect(tally.violations).toEqual([]);
      expect(gatewayErrors).toEqual([]);
    }),
    { numRuns: Math.ceil(TOTAL_FRAMES / BATCH), seed: SEED, endOnFailure: true },
  );

  // Afterwards: the control client and a fresh socket are served.
  await controlRoundTrip(controlClient, controlLatencies);
  const fresh = await h.connect(node, control, { label: 'after' });
  await fresh.ping();
  const seconds = (performance.now() - startedAt) / 1000;
  const sorted = [...controlLatencies].sort((a, b) => a - b);
  const line = (map: Map<string | number, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([key, count]) => `${key} ${count}`)
      .join(', ');
  process.stdout.write(
    `[fuzz] seed ${SEED}: ${tally.sent} frames over ${SOCKETS} sockets (+${tally.reconnects} reopened) in ${seconds.toFixed(1)} s\n` +
      `[fuzz] generated: ${line(byFamily)}\n` +
      `[fuzz] replies ${tally.replies}: ${line(tally.byCode)}\n` +
      `[fuzz] closes: ${line(tally.closes)}; other server frames (events): ${tally.events}\n` +
      `[fuzz] control round trips ${sorted.length}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, ` +
      `max ${sorted[sorted.length - 1]!.toFixed(1)} ms\n`,
  );

  expect(tally.sent).toBeGreaterThanOrEqual(TOTAL_FRAMES);
  expect(tally.violations).toEqual([]);
  expect(gatewayErrors).toEqual([]);
  // Every frame that does not end its socket got its one reply.
  const closing = [...tally.closes.values()].reduce((sum, count) => sum + count, 0);
  expect(tally.replies).toBe(tally.sent - closing);
  expect(tally.closes.get(CloseCodes.TOO_LARGE.code)).toBe(Math.floor(TOTAL_FRAMES / OVERSIZED_EVERY));
  expect([...tally.closes.keys()].every((code) => documentedCloses.has(code))).toBe(true);
  expect(tally.closes.has(CloseCodes.INTERNAL_ERROR.code)).toBe(false);
  // The generators really produced each family, and the node answered more than refusals.
  for (const family of ['valid', 'valid-stored', 'near-valid', 'odd-number', 'deep', 'garbage', 'binary', 'invalid-utf8', 'oversized']) {
    expect({ family, generated: (byFamily.get(family) ?? 0) > 0 }).toEqual({ family, generated: true });
  }
  for (const code of ['pong', 'ack', 'MALFORMED_JSON', 'VALIDATION_FAILED', 'UNKNOWN_TYPE']) {
    expect({ code, seen: (tally.byCode.get(code) ?? 0) > 0 }).toEqual({ code, seen: true });
  }
  expect(node.gateway.connectionCount).toBeGreaterThanOrEqual(SOCKETS + 2);
  expect(sorted.length).toBeGreaterThanOrEqual(Math.ceil(TOTAL_FRAMES / BATCH) + 2);
});
