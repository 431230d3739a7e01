import { ExpiryWheel } from './expiry-wheel';

describe('ExpiryWheel', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000_000_000 }));
  afterEach(() => jest.useRealTimers());

  const nowSeconds = () => Date.now() / 1000;

  it('hands over each item once its second has come, within one tick, and only then', () => {
    const expired: string[] = [];
    const wheel = new ExpiryWheel<string>((item) => expired.push(item), 250);
    wheel.set('a', nowSeconds() + 1);
    wheel.set('b', nowSeconds() + 3);
    jest.advanceTimersByTime(750);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(500); // 1.25 s: past a's second
    expect(expired).toEqual(['a']);
    jest.advanceTimersByTime(2000);
    expect(expired).toEqual(['a', 'b']);
    expect(wheel.size).toBe(0);
    wheel.stop();
  });

  it('moves an item when its expiry is set again (a refreshed token), and forgets a removed one', () => {
    const expired: string[] = [];
    const wheel = new ExpiryWheel<string>((item) => expired.push(item), 250);
    wheel.set('refreshed', nowSeconds() + 1);
    wheel.set('closed', nowSeconds() + 1);
    wheel.set('refreshed', nowSeconds() + 10);
    wheel.remove('closed');
    jest.advanceTimersByTime(5000);
    expect(expired).toEqual([]);
    expect(wheel.size).toBe(1);
    jest.advanceTimersByTime(5500);
    expect(expired).toEqual(['refreshed']);
    wheel.stop();
  });

  it('expires an item set in the past at the next tick', () => {
    const expired: string[] = [];
    const wheel = new ExpiryWheel<string>((item) => expired.push(item), 250);
    wheel.set('late', nowSeconds() - 5);
    jest.advanceTimersByTime(250);
    expect(expired).toEqual(['late']);
    wheel.stop();
  });
});
