import type { Tokens } from '@parley/protocol';
import { ParleyClientError } from './errors';
import { TokenManager } from './token-manager';

const NOW = Date.parse('2026-01-01T00:00:00.000Z');

function tokens(version: number, ttlMs = 900_000, issuedAt = NOW): Tokens {
  const payload = Buffer.from(JSON.stringify({ sub: 'user-1', sid: 'session-1', v: version })).toString('base64url');
  return {
    tokenType: 'Bearer',
    accessToken: `header.${payload}.sig${version}`,
    accessTokenExpiresAt: new Date(issuedAt + ttlMs).toISOString(),
    refreshToken: `refresh-${version}`,
    refreshTokenExpiresAt: new Date(issuedAt + 30 * 86_400_000).toISOString(),
    sessionId: 'session-1',
  };
}

/** A refresh endpoint we resolve by hand, recording the refresh tokens it was given. */
function controlledRefresh() {
  const calls: string[] = [];
  const waiting: Array<{ resolve: (t: Tokens) => void; reject: (e: unknown) => void }> = [];
  const refresh = (refreshToken: string) => {
    calls.push(refreshToken);
    return new Promise<Tokens>((resolve, reject) => waiting.push({ resolve, reject }));
  };
  return { refresh, calls, waiting };
}

describe('TokenManager', () => {
  let now = NOW;
  beforeEach(() => {
    now = NOW;
  });

  test('single flight: concurrent refreshes share one call with one refresh token', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now });
    manager.set(tokens(1));
    const results = Promise.all([manager.refresh(), manager.refresh(), manager.refresh(tokens(1).accessToken)]);
    expect(manager.refreshing).toBe(true);
    expect(server.calls).toEqual(['refresh-1']);
    server.waiting[0]?.resolve(tokens(2));
    const [a, b, c] = await results;
    expect([a.refreshToken, b.refreshToken, c.refreshToken]).toEqual(['refresh-2', 'refresh-2', 'refresh-2']);
    expect(manager.current?.refreshToken).toBe('refresh-2');
    expect(manager.refreshing).toBe(false);
    expect(server.calls).toEqual(['refresh-1']);
  });

  test('getAccessToken callers arriving during a refresh wait for it instead of starting another', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now });
    manager.set(tokens(1));
    now += 900_000; // expired
    const first = manager.getAccessToken();
    const second = manager.getAccessToken();
    expect(server.calls).toHaveLength(1);
    server.waiting[0]?.resolve(tokens(2, 900_000, now));
    expect(await first).toBe(tokens(2).accessToken);
    expect(await second).toBe(tokens(2).accessToken);
  });

  test('a stale token that was already replaced does not trigger a second refresh', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now });
    manager.set(tokens(1));
    const refreshed = manager.refresh(tokens(1).accessToken);
    server.waiting[0]?.resolve(tokens(2));
    await refreshed;
    // A request answered 401 with token 1 after the refresh finished: token 2 is returned as is.
    const again = await manager.refresh(tokens(1).accessToken);
    expect(again.accessToken).toBe(tokens(2).accessToken);
    expect(server.calls).toEqual(['refresh-1']);
  });

  test('sequential refreshes each use the newest refresh token (rotation)', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now });
    manager.set(tokens(1));
    const one = manager.refresh();
    server.waiting[0]?.resolve(tokens(2));
    await one;
    const two = manager.refresh();
    server.waiting[1]?.resolve(tokens(3));
    await two;
    expect(server.calls).toEqual(['refresh-1', 'refresh-2']);
  });

  test('a refused refresh (session over) clears the tokens and tells listeners; a network failure keeps them', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now, unknownOutcomeRetryDelaysMs: [] });
    const seen: Array<string | null> = [];
    manager.onChange((t) => seen.push(t?.refreshToken ?? null));
    manager.set(tokens(1));

    const network = manager.refresh();
    server.waiting[0]?.reject(new ParleyClientError('NETWORK_ERROR', 'down'));
    await expect(network).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(manager.current?.refreshToken).toBe('refresh-1');

    const reused = manager.refresh();
    server.waiting[1]?.reject(new ParleyClientError('REFRESH_TOKEN_REUSED', 'reused'));
    await expect(reused).rejects.toMatchObject({ code: 'REFRESH_TOKEN_REUSED', loginRequired: true });
    expect(manager.current).toBeNull();
    expect(seen).toEqual(['refresh-1', null]);
    await expect(manager.getAccessToken()).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });
  });

  test('a refresh whose outcome is unknown (timeout, network) presents the same token again, quickly, within the one flight', async () => {
    jest.useFakeTimers();
    try {
      const server = controlledRefresh();
      const manager = new TokenManager({ refresh: server.refresh, now: () => now });
      manager.set(tokens(1));
      const first = manager.refresh();
      const joined = manager.refresh(); // shares the flight, retries included
      server.waiting[0]?.reject(new ParleyClientError('TIMEOUT', 'no answer'));
      await jest.advanceTimersByTimeAsync(0);
      expect(server.calls).toEqual(['refresh-1', 'refresh-1']); // the first retry is immediate
      server.waiting[1]?.reject(new ParleyClientError('NETWORK_ERROR', 'reset'));
      await jest.advanceTimersByTimeAsync(1999);
      expect(server.calls).toHaveLength(2);
      await jest.advanceTimersByTimeAsync(1);
      expect(server.calls).toEqual(['refresh-1', 'refresh-1', 'refresh-1']);
      // Within the server's grace period the same token yields a fresh pair.
      server.waiting[2]?.resolve(tokens(2));
      await expect(first).resolves.toMatchObject({ refreshToken: 'refresh-2' });
      await expect(joined).resolves.toMatchObject({ refreshToken: 'refresh-2' });

      // Retries exhausted: the error surfaces, the tokens stay (the caller tries again later).
      const again = manager.refresh();
      const failure = expect(again).rejects.toMatchObject({ code: 'TIMEOUT' });
      for (let index = 3; index < 6; index += 1) {
        await jest.advanceTimersByTimeAsync(0);
        server.waiting[index]?.reject(new ParleyClientError('TIMEOUT', 'no answer'));
        await jest.advanceTimersByTimeAsync(2000);
      }
      await failure;
      expect(server.calls.slice(3)).toEqual(['refresh-2', 'refresh-2', 'refresh-2']);
      expect(manager.current?.refreshToken).toBe('refresh-2');
    } finally {
      jest.useRealTimers();
    }
  });

  test('a refresh that ends after a logout does not bring the session back', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now });
    manager.set(tokens(1));
    const refreshing = manager.refresh();
    manager.set(null);
    server.waiting[0]?.resolve(tokens(2));
    await expect(refreshing).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });
    expect(manager.current).toBeNull();
  });

  test('refresh is due a minute before expiry, or a quarter of the lifetime for short tokens', () => {
    const manager = new TokenManager({ refresh: controlledRefresh().refresh, now: () => now });
    manager.set(tokens(1, 900_000));
    expect(manager.refreshDueAt()).toBe(NOW + 900_000 - 60_000);
    expect(manager.msUntilRefresh()).toBe(840_000);
    manager.set(tokens(2, 40_000));
    expect(manager.refreshDueAt()).toBe(NOW + 30_000);
    now += 35_000;
    expect(manager.msUntilRefresh()).toBe(0);
  });

  test('getAccessToken returns the current token without a call while it is fresh', async () => {
    const server = controlledRefresh();
    const manager = new TokenManager({ refresh: server.refresh, now: () => now });
    manager.set(tokens(1));
    now += 800_000;
    expect(await manager.getAccessToken()).toBe(tokens(1).accessToken);
    expect(server.calls).toEqual([]);
  });

  test('claims are read from the access token', () => {
    const manager = new TokenManager({ refresh: controlledRefresh().refresh });
    expect(manager.claims()).toBeNull();
    manager.set(tokens(1));
    expect(manager.claims()).toEqual({ userId: 'user-1', sessionId: 'session-1', expiresAt: NOW + 900_000 });
  });
});
