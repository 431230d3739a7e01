import { Backoff, backoffDelay, DEFAULT_BACKOFF, validateBackoff } from './backoff';

const options = { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.5 };

describe('backoffDelay', () => {
  test('grows exponentially: with random = 1 the delay sits at the ceiling', () => {
    const nearlyOne = () => 0.999999;
    const ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
    ceilings.forEach((ceiling, attempt) => {
      const delay = backoffDelay(attempt, options, nearlyOne);
      expect(delay).toBeLessThan(ceiling);
      expect(delay).toBeGreaterThanOrEqual(ceiling - 1);
    });
  });

  test('with random = 0 the delay is the floor, ceiling × (1 − jitter)', () => {
    expect(backoffDelay(0, options, () => 0)).toBe(50);
    expect(backoffDelay(3, options, () => 0)).toBe(400);
    expect(backoffDelay(50, options, () => 0)).toBe(2500);
  });

  test('every delay stays within [floor, ceiling) for any draw, and never above maxMs', () => {
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** attempt);
      for (const draw of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]) {
        const delay = backoffDelay(attempt, options, () => draw);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(delay).toBeLessThanOrEqual(options.maxMs);
      }
    }
  });

  test('jitter spreads clients: different draws give different delays, in proportion', () => {
    const delays = [0, 0.25, 0.5, 0.75].map((draw) => backoffDelay(4, options, () => draw));
    expect(delays).toEqual([800, 1000, 1200, 1400]);
  });

  test('jitter 0 is deterministic, jitter 1 may go down to 0', () => {
    expect(backoffDelay(2, { ...options, jitter: 0 }, () => 0.7)).toBe(400);
    expect(backoffDelay(2, { ...options, jitter: 1 }, () => 0)).toBe(0);
  });

  test('huge attempt numbers do not overflow past the cap', () => {
    expect(backoffDelay(10_000, options, () => 0.5)).toBe(3750);
    expect(Number.isFinite(backoffDelay(Number.MAX_SAFE_INTEGER, options, () => 0.5))).toBe(true);
  });

  test('a random source outside [0, 1) is clamped', () => {
    expect(backoffDelay(0, options, () => -5)).toBe(50);
    expect(backoffDelay(0, options, () => 7)).toBe(100);
  });
});

describe('Backoff', () => {
  test('each next() is one attempt later; reset() starts over', () => {
    const backoff = new Backoff(options, () => 0);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([50, 100, 200]);
    expect(backoff.attempt).toBe(3);
    backoff.reset();
    expect(backoff.attempt).toBe(0);
    expect(backoff.next()).toBe(50);
  });

  test('defaults: 0.5 s first ceiling, 30 s cap', () => {
    const backoff = new Backoff({}, () => 0.999999);
    expect(backoff.next()).toBe(DEFAULT_BACKOFF.initialMs - 1);
    for (let index = 0; index < 20; index += 1) backoff.next();
    expect(backoff.next()).toBe(DEFAULT_BACKOFF.maxMs - 1);
  });

  test('rejects options that make no sense', () => {
    expect(() => validateBackoff({ ...options, initialMs: 0 })).toThrow(/initialMs/);
    expect(() => validateBackoff({ ...options, maxMs: 10 })).toThrow(/maxMs/);
    expect(() => validateBackoff({ ...options, factor: 0.5 })).toThrow(/factor/);
    expect(() => validateBackoff({ ...options, jitter: 1.5 })).toThrow(/jitter/);
    expect(() => new Backoff({ jitter: Number.NaN })).toThrow(RangeError);
  });
});
