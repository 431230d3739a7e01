/**
 * Event-driven waiting with deadlines. Nothing here sleeps to synchronize: a waiter is
 * re-checked whenever the thing it watches changes (`Signal.notify`), and the deadline
 * only exists to fail with a readable message.
 */
export class Signal {
  private readonly waiters = new Set<() => void>();

  /** Something changed: re-check every waiting predicate. */
  notify(): void {
    for (const check of [...this.waiters]) check();
  }

  /** Resolves once `predicate()` holds (checked now and after each `notify`); rejects after `timeoutMs`. */
  until(predicate: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        let ok: boolean;
        try {
          ok = predicate();
        } catch (error) {
          finish();
          reject(error as Error);
          return;
        }
        if (ok) {
          finish();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}

/** `promise`, or a rejection naming `what` once `timeoutMs` has passed. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Integers from `first` to `last` inclusive. */
export function range(first: number, last: number): number[] {
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, index) => first + index);
}
