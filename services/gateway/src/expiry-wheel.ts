/**
 * One timer for every socket's token expiry. A `setTimeout` per socket cost a Timeout
 * object each, and since every token expires at its own instant Node kept a timer list
 * per distinct delay as well (thousands on a busy node). Items are kept in buckets by
 * their expiry second; a tick every `tickMs` hands over those whose second has come, so
 * an item expires at most `tickMs` (plus the tick's own work) after its deadline.
 */
export class ExpiryWheel<T> {
  private readonly buckets = new Map<number, Set<T>>();
  private readonly slots = new Map<T, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly onExpired: (item: T) => void,
    tickMs = 250,
  ) {
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  /** (Re)sets when the item expires, in seconds since the epoch (a JWT's `exp`). */
  set(item: T, expiresAtSeconds: number): void {
    this.remove(item);
    const second = Math.ceil(expiresAtSeconds);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = new Set()));
    bucket.add(item);
    this.slots.set(item, second);
  }

  remove(item: T): void {
    const second = this.slots.get(item);
    if (second === undefined) return;
    this.slots.delete(item);
    const bucket = this.buckets.get(second);
    bucket?.delete(item);
    if (bucket?.size === 0) this.buckets.delete(second);
  }

  /** Items waiting to expire. */
  get size(): number {
    return this.slots.size;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const now = Date.now() / 1000;
    for (const [second, bucket] of this.buckets) {
      if (second > now) continue;
      this.buckets.delete(second);
      for (const item of bucket) {
        this.slots.delete(item);
        // One item's failure must not keep the others of its second open.
        try {
          this.onExpired(item);
        } catch {
          // onExpired closes a socket; a socket that cannot close is gone already.
        }
      }
    }
  }
}
