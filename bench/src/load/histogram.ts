/**
 * A log-linear histogram of microsecond values, in the spirit of HdrHistogram: exact below
 * 128 µs, then 64 buckets per power of two, so any recorded value is reported within 1/64
 * (< 1.6 %) of itself, from 1 µs to hours, in at most ~2,000 buckets. Unlike a sorted
 * sample its size does not grow with the run, and two histograms merge by adding counts,
 * which is what the parent does with the workers' histograms. (hdr-histogram-js would do
 * the same with a WebAssembly build and a dependency; this is the 60 lines we need.)
 */

const LINEAR = 128;
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64 sub-buckets per power of two above LINEAR

function bucketOf(value: number): number {
  const v = Math.max(0, Math.floor(value));
  if (v < LINEAR) return v;
  const shift = Math.floor(Math.log2(v)) - SUB_BITS;
  const mantissa = Math.floor(v / 2 ** shift); // in [SUB, 2 * SUB)
  return LINEAR + (shift - 1) * SUB + (mantissa - SUB);
}

/** The highest value a bucket holds (percentiles report the bucket's top: never optimistic). */
function bucketTop(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const k = bucket - LINEAR;
  const shift = Math.floor(k / SUB) + 1;
  const mantissa = SUB + (k % SUB);
  return (mantissa + 1) * 2 ** shift - 1;
}

/** The histogram as it crosses a process boundary or lands in a JSON report. */
export interface HistogramData {
  count: number;
  /** Sum of the recorded values (µs), for the mean. */
  sum: number;
  min: number;
  max: number;
  /** [bucket, count] pairs of the non-empty buckets. */
  buckets: Array<[number, number]>;
}

/** Percentiles of a latency, in milliseconds (null: nothing was recorded). */
export interface Percentiles {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  /** Records one value in microseconds. */
  record(valueUs: number): void {
    const bucket = bucketOf(valueUs);
    this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + 1);
    this.count += 1;
    this.sum += valueUs;
    if (valueUs < this.min) this.min = valueUs;
    if (valueUs > this.max) this.max = valueUs;
  }

  /** Forgets everything recorded (a new measurement step). */
  reset(): void {
    this.counts.clear();
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
  }

  merge(other: Histogram | HistogramData): this {
    const data = other instanceof Histogram ? other.toData() : other;
    for (const [bucket, count] of data.buckets) this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + count);
    this.count += data.count;
    this.sum += data.sum;
    if (data.count > 0) {
      this.min = Math.min(this.min, data.min);
      this.max = Math.max(this.max, data.max);
    }
    return this;
  }

  /** The p-th percentile (0–100) in µs, nearest rank, as its bucket's top clamped to the exact max. */
  percentileUs(p: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (const bucket of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(bucket)!;
      if (seen >= rank) return Math.min(Math.max(bucketTop(bucket), this.min), this.max);
    }
    return this.max;
  }

  toData(): HistogramData {
    return {
      count: this.count,
      sum: this.sum,
      min: this.count ? this.min : 0,
      max: this.count ? this.max : 0,
      buckets: [...this.counts.entries()],
    };
  }

  static fromData(data: HistogramData): Histogram {
    return new Histogram().merge(data);
  }

  /** The summary a report carries, in milliseconds rounded to 1 µs. */
  summary(): Percentiles {
    const ms = (us: number | undefined) => (us === undefined ? null : Math.round(us) / 1000);
    return {
      count: this.count,
      min: ms(this.count ? this.min : undefined),
      mean: ms(this.count ? this.sum / this.count : undefined),
      p50: ms(this.percentileUs(50)),
      p90: ms(this.percentileUs(90)),
      p99: ms(this.percentileUs(99)),
      max: ms(this.count ? this.max : undefined),
    };
  }
}
