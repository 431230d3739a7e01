import type { Tokens } from '@parley/protocol';
import { Connection, type ConnectionStateChange } from './connection';
import { ParleyClientError } from './errors';
import type { WebSocketLike } from './platform';
import { TokenManager } from './token-manager';

/** A socket the test drives by hand. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 1;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  constructor() {
    FakeSocket.all.push(this);
  }
  send(): void {}
  close(): void {}
  hello(): void {
    this.onmessage?.({ data: JSON.stringify({ type: 'hello', userId: 'u', sessionId: 's', nodeId: 'n', heartbeatMs: 600_000, tokenExpiresAt: '2100-01-01T00:00:00.000Z' }) });
  }
  drop(code: number): void {
    this.onclose?.({ code, reason: '' });
  }
}

function tokens(expiresAt: number, version = 1): Tokens {
  return {
    tokenType: 'Bearer',
    accessToken: `a.${Buffer.from('{"sub":"u"}').toString('base64url')}.${version}`,
    accessTokenExpiresAt: new Date(expiresAt).toISOString(),
    refreshToken: `r${version}`,
    refreshTokenExpiresAt: '2100-01-01T00:00:00.000Z',
    sessionId: 's',
  };
}

function setup(random: () => number, refresh: (token: string) => Promise<Tokens> = async () => tokens(Date.now() + 3_600_000, 2)) {
  FakeSocket.all = [];
  const manager = new TokenManager({ refresh, unknownOutcomeRetryDelaysMs: [] });
  manager.set(tokens(Date.now() + 3_600_000));
  const states: ConnectionStateChange[] = [];
  const connection = new Connection(
    {
      url: 'ws://test/ws',
      WebSocket: FakeSocket,
      authTransport: 'subprotocol',
      tokens: manager,
      backoff: { initialMs: 500, maxMs: 30_000, jitter: 0.5 },
      random,
    },
    { onState: (change) => states.push(change), onHello: () => {}, onPush: () => {}, onError: () => {} },
  );
  return { connection, states, manager };
}

describe('Connection reconnect delays', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('a 1006 after a healthy while waits a random 0–5 s before reconnecting; a young socket keeps the short backoff', async () => {
    const { connection, states } = setup(() => 0.9);
    connection.start();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.all[0]!.hello();
    await jest.advanceTimersByTimeAsync(60_000);
    FakeSocket.all[0]!.drop(1006);
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', closeCode: 1006, retryInMs: 4500 });

    await jest.advanceTimersByTimeAsync(4500);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1]!.hello();
    await jest.advanceTimersByTimeAsync(1000);
    FakeSocket.all[1]!.drop(1006); // open for 1 s only: not healthy, normal backoff
    expect(states.at(-1)?.retryInMs).toBeLessThan(1000);
    connection.stop();
  });

  test('a 1012 (drain) still reconnects within the short drain jitter', async () => {
    const { connection, states } = setup(() => 0.9);
    connection.start();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.all[0]!.hello();
    await jest.advanceTimersByTimeAsync(60_000);
    FakeSocket.all[0]!.drop(1012);
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', closeCode: 1012, retryInMs: 900 });
    connection.stop();
  });

  test('failed in-band refreshes use their own backoff: the next reconnect delay does not grow', async () => {
    let refreshes = 0;
    const { connection, states, manager } = setup(
      () => 0,
      async () => {
        refreshes += 1;
        throw new ParleyClientError('UNAVAILABLE', 'down', { status: 503 });
      },
    );
    // A token due for refresh in 1 s.
    manager.set(tokens(Date.now() + 1_333)); // due for refresh after 1 s (three quarters of its life)
    connection.start();
    await jest.advanceTimersByTimeAsync(0);
    FakeSocket.all[0]!.hello();
    await jest.advanceTimersByTimeAsync(9_000); // not yet healthy: the reconnect backoff is not reset
    expect(refreshes).toBeGreaterThan(4);
    FakeSocket.all[0]!.drop(1011);
    // The first backoff step (jitter 0.5, random 0: half of 500 ms), as if no refresh had failed.
    expect(states.at(-1)).toMatchObject({ state: 'reconnecting', closeCode: 1011, retryInMs: 250, attempt: 1 });
    connection.stop();
  });
});

describe('Connection.reconnectNow', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('drops a silent socket and opens a new one at once, even in the middle of a long backoff', async () => {
    const { connection } = setup(() => 0.99);
    connection.start();
    await jest.advanceTimersByTimeAsync(0);
    const first = FakeSocket.all[0]!;
    const closed = jest.spyOn(first, 'close');
    first.hello();
    const waiting = connection.request({ type: 'ping' });
    const outcome = waiting.catch((error: unknown) => error);

    connection.reconnectNow('network changed');
    expect(closed).toHaveBeenCalledWith(1000, 'network changed');
    await expect(outcome).resolves.toMatchObject({ code: 'DISCONNECTED', retryable: true });
    await jest.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1]!.hello();
    expect(connection.isOpen).toBe(true);

    // Several failed attempts later the backoff is long; reconnectNow does not wait it out.
    for (let attempt = 0; attempt < 6; attempt += 1) {
      FakeSocket.all.at(-1)!.drop(1011);
      await jest.advanceTimersByTimeAsync(60_000);
    }
    const before = FakeSocket.all.length;
    FakeSocket.all.at(-1)!.drop(1011);
    connection.reconnectNow();
    await jest.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(before + 1);
    connection.stop();
  });

  test('does nothing before start() or after stop()', async () => {
    const { connection } = setup(() => 0);
    connection.reconnectNow();
    await jest.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(0);
    connection.start();
    await jest.advanceTimersByTimeAsync(0);
    connection.stop();
    connection.reconnectNow();
    await jest.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all).toHaveLength(1);
  });
});
