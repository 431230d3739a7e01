/**
 * A latency histogram in microseconds that several processes can fill and one can merge:
 * 1 µs buckets below 2,048 µs, then 256 buckets per power of two (under 0.4 % error), so
 * a percentile costs no sorting and a worker ships only its non-empty buckets over IPC.
 */
const LINEAR = 2048;
const LINEAR_BITS = 11;
const SUB_BITS = 8;
const SUB = 1 << SUB_BITS;
const MAX_EXPONENT = 36; // 2^36 µs ≈ 19 hours: nothing a benchmark waits for
const BUCKETS = LINEAR + (MAX_EXPONENT - LINEAR_BITS + 1) * SUB;

/** Non-empty buckets as [index, count] pairs: what a worker sends to its parent. */
export type HistogramBuckets = Array<[number, number]>;

/** Percentiles of one histogram, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export class LatencyHistogram {
  private counts = new Float64Array(BUCKETS);
  private total = 0;
  private sum = 0;
  private max = 0;

  record(micros: number): void {
    const value = micros > 0 ? micros : 0;
    this.counts[bucketOf(value)]! += 1;
    this.total += 1;
    this.sum += value;
    if (value > this.max) this.max = value;
  }

  get count(): number {
    return this.total;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.max = 0;
  }

  toBuckets(): { buckets: HistogramBuckets; sum: number; max: number } {
    const buckets: HistogramBuckets = [];
    for (let index = 0; index < BUCKETS; index += 1) {
      const count = this.counts[index]!;
      if (count > 0) buckets.push([index, count]);
    }
    return { buckets, sum: this.sum, max: this.max };
  }

  merge(other: { buckets: HistogramBuckets; sum: number; max: number }): void {
    for (const [index, count] of other.buckets) {
      this.counts[index]! += count;
      this.total += count;
    }
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The value (µs) at quantile q in [0, 1]: the midpoint of the bucket that holds it. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index += 1) {
      seen += this.counts[index]!;
      if (seen >= rank) return Math.min(bucketMid(index), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    const ms = (micros: number) => Math.round(micros) / 1000;
    return {
      count: this.total,
      p50Ms: ms(this.quantile(0.5)),
      p90Ms: ms(this.quantile(0.9)),
      p99Ms: ms(this.quantile(0.99)),
      maxMs: ms(this.max),
      meanMs: this.total === 0 ? 0 : ms(this.sum / this.total),
    };
  }
}

function bucketOf(micros: number): number {
  if (micros < LINEAR) return Math.floor(micros);
  const exponent = Math.min(Math.floor(Math.log2(micros)), MAX_EXPONENT);
  const base = 2 ** exponent;
  const sub = Math.min(SUB - 1, Math.floor(((micros - base) / base) * SUB));
  return LINEAR + (exponent - LINEAR_BITS) * SUB + sub;
}

function bucketMid(index: number): number {
  if (index < LINEAR) return index + 0.5;
  const exponent = LINEAR_BITS + Math.floor((index - LINEAR) / SUB);
  const sub = (index - LINEAR) % SUB;
  const base = 2 ** exponent;
  return base + ((sub + 0.5) / SUB) * base;
}
