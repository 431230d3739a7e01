/** The outcome of one item of a batch: its own value, or its own error. */
export type ItemOutcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface MicroBatcherOptions {
  /** Most items one batch takes; the rest wait for the next batch. */
  maxBatch: number;
  /** Batches allowed in flight at once (a database connection, an HTTP connection each). */
  maxConcurrent: number;
  /** Told the size of every batch run (a metric). */
  onBatch?: (size: number) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Runs what arrives together as one batch: group commit for writes (sends stored in one
 * transaction), one statement for reads (sessions looked up together), one call for many
 * (a gateway's sends to the message service). At low load every
 * item gets a batch of its own at once (no added wait beyond one event-loop turn, which
 * gathers what arrived together); under load, items queue while the `maxConcurrent`
 * batches in flight run and go together into the next one, so a round trip (and, for a
 * commit, its fsync) is paid per batch, not per item.
 *
 * `run` answers every item of its batch, in order. When `run` itself throws, every item
 * of the batch gets that error: nothing of a failed transaction was committed.
 */
export class MicroBatcher<I, O> {
  private readonly queue: Array<Waiting<I, O>> = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: readonly I[]) => Promise<Array<ItemOutcome<O>>>,
    private readonly options: MicroBatcherOptions,
  ) {
    if (options.maxBatch < 1 || options.maxConcurrent < 1) throw new Error('maxBatch and maxConcurrent must be at least 1');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Items waiting for a batch (not yet in one). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.options.maxConcurrent) return;
    this.scheduled = true;
    // One turn of the event loop: requests parsed from the same socket reads join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.running < this.options.maxConcurrent) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.running += 1;
      this.options.onBatch?.(batch.length);
      void this.execute(batch).finally(() => {
        this.running -= 1;
        // What queued up while this batch ran goes next, together.
        if (this.queue.length > 0) this.flush();
      });
    }
  }

  private async execute(batch: Array<Waiting<I, O>>): Promise<void> {
    let outcomes: Array<ItemOutcome<O>>;
    try {
      outcomes = await this.run(batch.map((waiting) => waiting.item));
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    batch.forEach((waiting, index) => {
      const outcome = outcomes[index];
      if (!outcome) waiting.reject(new Error('MicroBatcher: the batch gave no answer for an item'));
      else if (outcome.ok) waiting.resolve(outcome.value);
      else waiting.reject(outcome.error);
    });
  }
}
