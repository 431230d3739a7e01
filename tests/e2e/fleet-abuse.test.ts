import { AccessTokenSigner, generateSigningJwk, importSigningJwk } from '@parley/auth';
import { CloseCodes } from '@parley/protocol';
import { httpRequest } from '@parley/deploy';
import { Fleet, isRunning, type FleetClient, type RawSocket } from './support/fleet';

// Bad input through nginx over wss (docs/protocol.md "Close codes" and "Limits",
// docs/gateway.md "Limits and abuse"): each abuse gets its documented error or close code,
// and after each one every node still answers a well-behaved client (ping → pong).

jest.setTimeout(90_000);

const ALLOWED_ORIGIN = 'https://app.parley.test';
const SEND_BUFFER_MAX_BYTES = 65536;
const MAX_FRAME_BYTES = 32768;
const FRAMES_PER_SECOND = 20;

let fleet: Fleet;
/** The key the message service signs with: ours, so the test can mint an expired token. */
let signer: AccessTokenSigner;
let alice: FleetClient;
let bob: FleetClient;
let carol: FleetClient;
/** A conversation Alice is not in. */
let bobAndCarol: string;
/** One well-behaved socket per node. */
let witnesses: RawSocket[];

beforeAll(async () => {
  const jwk = await generateSigningJwk(`e2e-abuse-${Date.now().toString(36)}`);
  signer = new AccessTokenSigner(await importSigningJwk(jwk), { issuer: 'parley', audience: 'parley' }, -3600);
  fleet = await Fleet.start({
    name: 'abuse',
    messageEnv: { AUTH_SIGNING_KEY: JSON.stringify(jwk) },
    gatewayEnv: {
      ALLOWED_ORIGINS: ALLOWED_ORIGIN,
      SEND_BUFFER_MAX_BYTES: String(SEND_BUFFER_MAX_BYTES),
      MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
      RATE_LIMIT_FRAMES_PER_SECOND: String(FRAMES_PER_SECOND),
    },
  });
  [alice, bob, carol] = [await fleet.register('alice'), await fleet.register('bob'), await fleet.register('carol')];
  bobAndCarol = (await bob.client.rest.openDirect(carol.user.id)).id;

  // Witnesses connect first, one after the other: least_conn puts one on each node.
  witnesses = [];
  for (let index = 0; index < 3; index++) {
    const witness = fleet.openRaw({ token: carol.client.tokens.current!.accessToken, origin: ALLOWED_ORIGIN });
    await witness.opened();
    witnesses.push(witness);
  }
  expect(new Set(witnesses.map((witness) => witness.hello!.nodeId)).size).toBe(3);
});

afterAll(async () => {
  await fleet?.close();
});

function token(of: FleetClient): string {
  return of.client.tokens.current!.accessToken;
}

/** Every node still serves a well-behaved client: a ping on each witness gets its pong. */
async function everyNodeServes(): Promise<void> {
  for (const witness of witnesses) {
    const reply = await witness.request({ type: 'ping' });
    expect(reply).toMatchObject({ type: 'pong' });
    expect(witness.closeCode).toBeUndefined();
  }
}

async function aliceSocket(): Promise<RawSocket> {
  const socket = fleet.openRaw({ token: token(alice) });
  await socket.opened();
  return socket;
}

describe('bad frames get an error and the socket stays open', () => {
  it('malformed JSON → error MALFORMED_JSON', async () => {
    const socket = await aliceSocket();
    socket.sendText('{"type": "send", "id": "m1", oops');
    const error = await socket.frame((frame) => frame.type === 'error', 10_000, 'an error frame');
    expect(error).toMatchObject({ type: 'error', code: 'MALFORMED_JSON', retryable: false });
    expect(await socket.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    await everyNodeServes();
  });

  it('unknown frame type → error UNKNOWN_TYPE with the request id', async () => {
    const socket = await aliceSocket();
    const reply = await socket.request({ type: 'dance', conversationId: bobAndCarol });
    expect(reply).toMatchObject({ type: 'error', code: 'UNKNOWN_TYPE', retryable: false });
    expect(await socket.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    await everyNodeServes();
  });

  it('a send to a conversation the user is not in → error NOT_A_MEMBER, nothing stored', async () => {
    const socket = await aliceSocket();
    const reply = await socket.request({ type: 'send', conversationId: bobAndCarol, clientMessageId: 'intruder-1', body: 'let me in' });
    expect(reply).toMatchObject({ type: 'error', code: 'NOT_A_MEMBER', retryable: false });
    expect((await bob.client.rest.history(bobAndCarol)).messages).toEqual([]);
    // The SDK surfaces the same refusal, final (not retried).
    await expect(alice.client.send(bobAndCarol, 'let me in')).rejects.toMatchObject({ code: 'NOT_A_MEMBER', retryable: false });
    expect(await socket.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    await everyNodeServes();
  });
});

describe('abuse closes the socket with its documented code', () => {
  it('an oversized frame → close 1009', async () => {
    const socket = await aliceSocket();
    socket.sendText(JSON.stringify({ type: 'ping', id: 'big', pad: 'x'.repeat(MAX_FRAME_BYTES + 1024) }));
    expect(await socket.closed()).toBe(CloseCodes.TOO_LARGE.code);
    await everyNodeServes();
  });

  it('a frame flood → RATE_LIMITED errors, then close 4008', async () => {
    const socket = await aliceSocket();
    for (let index = 0; index < FRAMES_PER_SECOND * 5; index++) socket.sendText(JSON.stringify({ type: 'ping', id: `f${index}` }));
    expect(await socket.closed()).toBe(CloseCodes.RATE_LIMITED.code);
    expect(socket.frames.some((frame) => frame.type === 'error' && frame.code === 'RATE_LIMITED')).toBe(true);
    const pongs = socket.frames.filter((frame) => frame.type === 'pong').length;
    expect(pongs).toBeGreaterThan(0);
    expect(pongs).toBeLessThanOrEqual(FRAMES_PER_SECOND);
    await everyNodeServes();
  });

  it('a reader that never reads while others send to it → cut as a slow consumer (4009)', async () => {
    // Several conversations to Carol: sends to one conversation are serialized (its seq), so
    // spreading them fills her socket sooner.
    const sinks = await Promise.all(
      Array.from({ length: 8 }, async (_, index) => (await bob.client.rest.createGroup({ title: `sink ${index}`, memberIds: [carol.user.id] })).id),
    );
    const reader = fleet.openRaw({ token: token(carol) });
    const hello = await reader.opened();
    const node = fleet.gateway(hello.nodeId!);
    const slowClosesBefore = await fleet.metric(node, 'parley_gateway_slow_consumer_closes_total');
    const closes4009Before = await fleet.metric(node, 'parley_gateway_closes_total', { code: '4009' });
    // Stop reading: TLS and TCP buffers fill (client, nginx, gateway), then the gateway's own.
    reader.socket.pause();

    // Bob sends large messages to Carol (12 KB each: 3 UTF-8 bytes per character) over REST
    // through nginx, until her node reports a slow-consumer close.
    const body = '€'.repeat(4000);
    const startedAt = Date.now();
    let sent = 0;
    const sendOne = async () => {
      sent += 1;
      const { message } = await bob.client.rest.sendMessage(sinks[sent % sinks.length]!, { clientMessageId: `flood-${sent}`, body });
      expect(message.body).toHaveLength(4000);
    };
    while ((await fleet.metric(node, 'parley_gateway_slow_consumer_closes_total')) === slowClosesBefore) {
      if (sent >= 3000) throw new Error(`${sent} messages of 12 KB did not fill a ${SEND_BUFFER_MAX_BYTES}-byte send buffer`);
      await Promise.all(Array.from({ length: 32 }, sendOne));
    }
    process.stdout.write(`[slow reader] node cut it after ${sent} messages of 12 KB in ${Date.now() - startedAt} ms\n`);
    expect(await fleet.metric(node, 'parley_gateway_closes_total', { code: '4009' })).toBe(closes4009Before + 1);

    // Reading again, the client drains what was buffered and finds the socket ended: the
    // 4009 close frame if it got through before the cut, else a dropped connection.
    reader.socket.resume();
    const code = await reader.closed(30_000);
    process.stdout.write(`[slow reader] the client saw close ${code}\n`);
    expect([CloseCodes.SLOW_CONSUMER.code, 1006]).toContain(code);
    await everyNodeServes();
  });
});

describe('refused upgrades through nginx', () => {
  it('a bad token → 401 UNAUTHENTICATED', async () => {
    const garbage = fleet.openRaw({ authorization: 'Bearer not-a-token' });
    expect(await garbage.refusal()).toMatchObject({ status: 401 });
    expect(JSON.parse(garbage.refused!.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });

    // A real token with its payload tampered with (claims to be Bob): the signature fails.
    const [header, payload, signature] = token(alice).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = [header, Buffer.from(JSON.stringify({ ...claims, sub: bob.user.id })).toString('base64url'), signature].join('.');
    const tampered = fleet.openRaw({ token: forged });
    expect(await tampered.refusal()).toMatchObject({ status: 401 });
    expect(JSON.parse(tampered.refused!.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    await everyNodeServes();
  });

  it('an expired token → 401 TOKEN_EXPIRED', async () => {
    const sessionId = (await aliceSocket()).hello!['sessionId'] as string;
    const { token: expired, expiresAt } = await signer.sign(alice.user.id, sessionId);
    expect(expiresAt.getTime()).toBeLessThan(Date.now());
    for (const viaSubprotocol of [false, true]) {
      const socket = fleet.openRaw({ token: expired, viaSubprotocol });
      expect(await socket.refusal()).toMatchObject({ status: 401 });
      expect(JSON.parse(socket.refused!.body)).toMatchObject({ error: { code: 'TOKEN_EXPIRED' } });
    }
    await everyNodeServes();
  });

  it('a forbidden Origin → 403 FORBIDDEN_ORIGIN; an allowed one connects', async () => {
    const evil = fleet.openRaw({ token: token(alice), origin: 'https://evil.example', viaSubprotocol: true });
    expect(await evil.refusal()).toMatchObject({ status: 403 });
    expect(JSON.parse(evil.refused!.body)).toMatchObject({ error: { code: 'FORBIDDEN_ORIGIN' } });
    const allowed = fleet.openRaw({ token: token(alice), origin: ALLOWED_ORIGIN, viaSubprotocol: true });
    expect((await allowed.opened()).userId).toBe(alice.user.id);
    await everyNodeServes();
  });
});

describe('afterwards', () => {
  it('the three nodes are still up and ready', async () => {
  for (const gateway of fleet.topology.gateways) {
    expect(isRunning(gateway.pid)).toBe(true);
    expect((await httpRequest(`${gateway.url}/readyz`)).status).toBe(200);
  }
  await everyNodeServes();
});
});
