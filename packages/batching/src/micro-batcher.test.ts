import { MicroBatcher, type ItemOutcome } from './micro-batcher';

/** A run whose batches finish only when the test says so. */
function controlledRun() {
  const batches: Array<{ items: number[]; finish(outcomes?: Array<ItemOutcome<number>>): void; fail(error: Error): void }> = [];
  const run = (items: readonly number[]) =>
    new Promise<Array<ItemOutcome<number>>>((resolve, reject) => {
      batches.push({
        items: [...items],
        finish: (outcomes) => resolve(outcomes ?? items.map((item) => ({ ok: true, value: item * 10 }))),
        fail: reject,
      });
    });
  return { run, batches };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('MicroBatcher', () => {
  it('gives a lone item a batch of its own at once', async () => {
    const { run, batches } = controlledRun();
    const commit = new MicroBatcher(run, { maxBatch: 10, maxConcurrent: 1 });
    const answer = commit.submit(1);
    await turn();
    expect(batches.map((batch) => batch.items)).toEqual([[1]]);
    batches[0]!.finish();
    await expect(answer).resolves.toBe(10);
  });

  it('gathers what arrives while the batches in flight commit into the next batch', async () => {
    const { run, batches } = controlledRun();
    const sizes: number[] = [];
    const commit = new MicroBatcher(run, { maxBatch: 10, maxConcurrent: 1, onBatch: (size) => sizes.push(size) });
    const first = commit.submit(1);
    await turn();
    const later = [2, 3, 4, 5].map((item) => commit.submit(item));
    await turn();
    expect(batches).toHaveLength(1); // the one in flight holds the only slot
    expect(commit.waiting).toBe(4);
    batches[0]!.finish();
    await first;
    await turn();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2, 3, 4, 5]]);
    batches[1]!.finish();
    await expect(Promise.all(later)).resolves.toEqual([20, 30, 40, 50]);
    expect(sizes).toEqual([1, 4]);
  });

  it('never puts more than maxBatch items in a batch, nor more than maxConcurrent batches in flight', async () => {
    const { run, batches } = controlledRun();
    const commit = new MicroBatcher(run, { maxBatch: 3, maxConcurrent: 2 });
    const answers = Array.from({ length: 8 }, (_, index) => commit.submit(index));
    await turn();
    expect(batches.map((batch) => batch.items)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    batches[0]!.finish();
    await turn();
    expect(batches.map((batch) => batch.items)[2]).toEqual([6, 7]);
    batches[1]!.finish();
    batches[2]!.finish();
    await expect(Promise.all(answers)).resolves.toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
  });

  it('answers each item with its own outcome, and every item with the error of a failed batch', async () => {
    const { run, batches } = controlledRun();
    const commit = new MicroBatcher(run, { maxBatch: 10, maxConcurrent: 1 });
    const [good, bad] = [commit.submit(1), commit.submit(2)];
    await turn();
    batches[0]!.finish([
      { ok: true, value: 10 },
      { ok: false, error: new Error('not a member') },
    ]);
    await expect(good).resolves.toBe(10);
    await expect(bad).rejects.toThrow('not a member');

    const [third, fourth] = [commit.submit(3), commit.submit(4)];
    await turn();
    batches[1]!.fail(new Error('connection lost'));
    await expect(third).rejects.toThrow('connection lost');
    await expect(fourth).rejects.toThrow('connection lost');
  });
});
