import { HttpClient } from './http';
import type { FetchInitLike } from './platform';
import { RestClient } from './rest-client';
import { TokenManager } from './token-manager';

describe('refresh time limit', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('POST /v1/auth/refresh has its own time limit (20 s), not the generic 15 s one', async () => {
    const aborted: string[] = [];
    const fetch = (url: string, init: FetchInitLike) =>
      new Promise<never>((_, reject) => {
        (init.signal as AbortSignal).addEventListener('abort', () => {
          aborted.push(url);
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        });
      });
    const http = new HttpClient({ baseUrl: 'http://x', fetch, timeoutMs: 15_000 });
    const rest = new RestClient(http, new TokenManager({ refresh: async () => Promise.reject(new Error('unused')) }));
    const refresh = rest.refreshTokens('r1');
    const failed = expect(refresh).rejects.toMatchObject({ code: 'TIMEOUT' });
    const other = expect(rest.login({ username: 'a', password: 'b' })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await jest.advanceTimersByTimeAsync(15_000);
    await other;
    expect(aborted).toEqual(['http://x/v1/auth/login']);
    await jest.advanceTimersByTimeAsync(4_999);
    expect(aborted).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    await failed;
    expect(aborted).toEqual(['http://x/v1/auth/login', 'http://x/v1/auth/refresh']);
  });
});
