import { isParleyError } from '@parley/protocol';
import { HashingGate } from './hashing-gate';

/** A task the test finishes by hand. */
function deferredTask() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { task: () => done, finish };
}

describe('HashingGate', () => {
  test('runs at most `concurrency` tasks at once, the rest in arrival order as slots free', async () => {
    const gate = new HashingGate(2, 10);
    const started: number[] = [];
    const tasks = Array.from({ length: 4 }, () => deferredTask());
    const runs = tasks.map((entry, index) =>
      gate.run(async () => {
        started.push(index);
        await entry.task();
        return index;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    tasks[1]!.finish();
    await runs[1];
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    tasks[0]!.finish();
    tasks[2]!.finish();
    tasks[3]!.finish();
    await expect(Promise.all(runs)).resolves.toEqual([0, 1, 2, 3]);
  });

  test('refuses at once with a retryable UNAVAILABLE when the queue is full, and recovers', async () => {
    const gate = new HashingGate(1, 1);
    const first = deferredTask();
    const running = gate.run(first.task);
    const queued = gate.run(async () => 'queued');
    const refused = await gate.run(async () => 'never').catch((error: unknown) => error);
    expect(isParleyError(refused) && refused.code).toBe('UNAVAILABLE');
    first.finish();
    await running;
    await expect(queued).resolves.toBe('queued');
    await expect(gate.run(async () => 'later')).resolves.toBe('later');
  });

  test('a failing task frees its slot', async () => {
    const gate = new HashingGate(1, 0);
    await expect(gate.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.run(async () => 'next')).resolves.toBe('next');
  });
});
