import { Channels } from './channels';

/** The part of a key Redis Cluster hashes: the first `{...}` with something inside, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

describe('bus channel names', () => {
  // Sharded pub/sub (SSUBSCRIBE) routes a channel by its hash slot: each channel must hash
  // by its id alone, whatever the deployment prefix, so one conversation's or one user's
  // events stay on one shard and a prefix change never moves them.
  it.each([
    ['conversation', Channels.conversation('0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b')],
    ['user', Channels.user('0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b')],
    ['presence', Channels.presence('0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b')],
  ])('a %s channel hashes by its id alone, with any prefix', (_kind, channel) => {
    expect(hashTag(channel)).toBe('0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
    expect(hashTag(`parley:${channel}`)).toBe('0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
    expect(hashTag(`tenant-7:${channel}`)).toBe('0b7f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
  });

  it('keeps different ids on their own tags', () => {
    expect(hashTag(Channels.conversation('a'))).not.toBe(hashTag(Channels.conversation('b')));
  });
});
