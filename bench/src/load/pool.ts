import { fork, type ChildProcess } from 'node:child_process';
import { compiledScript } from '../compiled-script';
import type { FromWorker, ToWorker } from './ipc';

type Command = ToWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;
type Reply<K extends FromWorker['type']> = Extract<FromWorker, { type: K }>;

/** The compiled worker script (see compiledScript). */
export function workerScript(): string {
  return compiledScript(__dirname, 'worker.js');
}

/** A forked worker process answering one request at a time per id. */
export class WorkerHandle {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: FromWorker) => void; reject: (error: Error) => void }>();
  private exited: Error | undefined;

  private constructor(
    readonly index: number,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (message: FromWorker) => {
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.type === 'failed') waiter.reject(new Error(`worker ${index}: ${message.error}`));
      else waiter.resolve(message);
    });
    child.once('exit', (code, signal) => {
      this.exited = new Error(`worker ${index} exited (${signal ?? code})`);
      for (const waiter of this.waiting.values()) waiter.reject(this.exited);
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static start(index: number): WorkerHandle {
    const child = fork(workerScript(), [], {
      // Structured clone: Maps and large arrays cross without a JSON round trip.
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // The generator's heap holds every socket's receipts; give it room.
      execArgv: ['--max-old-space-size=4096'],
    });
    return new WorkerHandle(index, child);
  }

  request<K extends FromWorker['type']>(command: Command, expect: K): Promise<Reply<K>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, {
        resolve: (reply) => (reply.type === expect ? resolve(reply as Reply<K>) : reject(new Error(`worker ${this.index}: got ${reply.type}`))),
        reject,
      });
      this.child.send({ ...command, id } as ToWorker);
    });
  }

  /** Asks the worker to close its sockets, then ends it (by its own PID). */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exit = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    let grace: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.request({ type: 'close' }, 'ok'), new Promise((resolve) => (grace = setTimeout(resolve, 5000)))]);
    } catch {
      // Already gone.
    } finally {
      clearTimeout(grace);
    }
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  }
}
