import { ChannelCommandBatcher, MAX_CHANNELS_PER_COMMAND, type ChannelCommand } from './channel-command-batcher';

describe('ChannelCommandBatcher', () => {
  test('one command per run of a kind within a loop turn, in call order', async () => {
    const sent: Array<[ChannelCommand, string[]]> = [];
    const batcher = new ChannelCommandBatcher(async (command, channels) => void sent.push([command, channels]));
    await Promise.all([
      batcher.run('subscribe', 'a'),
      batcher.run('subscribe', 'b'),
      batcher.run('unsubscribe', 'a'),
      batcher.run('subscribe', 'c'),
    ]);
    expect(sent).toEqual([
      ['subscribe', ['a', 'b']],
      ['unsubscribe', ['a']],
      ['subscribe', ['c']],
    ]);
    await batcher.run('subscribe', 'd');
    expect(sent.at(-1)).toEqual(['subscribe', ['d']]);
  });

  test('a failed command rejects every call it carried, and only those', async () => {
    const batcher = new ChannelCommandBatcher(async (command) => {
      if (command === 'unsubscribe') throw new Error('refused');
    });
    const results = await Promise.allSettled([
      batcher.run('unsubscribe', 'a'),
      batcher.run('unsubscribe', 'b'),
      batcher.run('subscribe', 'c'),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
  });

  test('a send that throws synchronously rejects its calls instead of escaping', async () => {
    const batcher = new ChannelCommandBatcher(() => {
      throw new Error('not connected');
    });
    await expect(batcher.run('subscribe', 'a')).rejects.toThrow('not connected');
  });

  test(`at most ${MAX_CHANNELS_PER_COMMAND} channels per command`, async () => {
    const sizes: number[] = [];
    const batcher = new ChannelCommandBatcher(async (_command, channels) => void sizes.push(channels.length));
    const total = MAX_CHANNELS_PER_COMMAND * 2 + 5;
    await Promise.all(Array.from({ length: total }, (_, index) => batcher.run('subscribe', `c${index}`)));
    expect(sizes).toEqual([MAX_CHANNELS_PER_COMMAND, MAX_CHANNELS_PER_COMMAND, 5]);
  });
});
