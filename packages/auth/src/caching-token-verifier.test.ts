import { CachingTokenVerifier, type TokenVerifier } from './caching-token-verifier';
import { generateSigningJwk, importSigningJwk } from './keys';
import { AccessTokenSigner, AccessTokenVerifier } from './tokens';

const audience = { issuer: 'parley', audience: 'parley' };

async function setup(ttlSeconds = 600) {
  const key = await importSigningJwk(await generateSigningJwk('cache-test'));
  const signer = new AccessTokenSigner(key, audience, ttlSeconds);
  const real = new AccessTokenVerifier({ keys: [key.publicJwk] }, audience, 0);
  const counted = { calls: 0 };
  const inner: TokenVerifier = {
    verify: (token) => {
      counted.calls += 1;
      return real.verify(token);
    },
  };
  return { signer, inner, counted };
}

describe('CachingTokenVerifier', () => {
  afterEach(() => jest.useRealTimers());

  it('checks a token once and answers its repeats from memory', async () => {
    const { signer, inner, counted } = await setup();
    const cache = new CachingTokenVerifier(inner);
    const { token } = await signer.sign('user-1', 'session-1');
    const claims = await Promise.all([1, 2, 3].map(async () => cache.verify(token)));
    await cache.verify(token);
    expect(claims[0]).toMatchObject({ userId: 'user-1', sessionId: 'session-1' });
    expect(counted.calls).toBeLessThanOrEqual(3); // concurrent first uses may each verify
    const before = counted.calls;
    await cache.verify(token);
    expect(counted.calls).toBe(before);
  });

  it('never answers a bad token from memory', async () => {
    const { inner } = await setup();
    const cache = new CachingTokenVerifier(inner);
    await expect(cache.verify('not.a.token')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(cache.verify('not.a.token')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('checks again after the token expired (and refuses it) and after maxAgeMs', async () => {
    const { signer, inner, counted } = await setup(10);
    const cache = new CachingTokenVerifier(inner, { maxAgeMs: 1000 });
    const { token } = await signer.sign('user-1', 'session-1');
    await cache.verify(token);
    jest.useFakeTimers({ now: Date.now() + 1500, doNotFake: ['nextTick', 'setImmediate'] });
    await cache.verify(token); // past maxAgeMs: verified again, still valid
    expect(counted.calls).toBe(2);
    jest.setSystemTime(Date.now() + 10_000);
    await expect(cache.verify(token)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('remembers at most maxEntries tokens, dropping the oldest', async () => {
    const { signer, inner, counted } = await setup();
    const cache = new CachingTokenVerifier(inner, { maxEntries: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async (id) => (await signer.sign(id, id)).token));
    for (const token of [a!, b!, c!]) await cache.verify(token);
    expect(counted.calls).toBe(3);
    await cache.verify(c!);
    await cache.verify(b!);
    expect(counted.calls).toBe(3);
    await cache.verify(a!); // evicted
    expect(counted.calls).toBe(4);
  });
});
