import { ParleyError } from '@parley/protocol';

/**
 * Bounds how many password hashes run at once, and how many may wait. Each argon2 run
 * takes 19 MiB and a thread of libuv's small shared pool (4 by default, also used for
 * DNS and file I/O): without a bound, a login flood spread over many addresses (so no
 * per-address limit applies) would queue without end and starve everything else that
 * needs the pool. Past the queue bound a call is refused at once with UNAVAILABLE (503,
 * retryable): cheap to answer, and honest about why.
 */
export class HashingGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new ParleyError('UNAVAILABLE', 'Too many sign-ins at once; try again shortly.');
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
