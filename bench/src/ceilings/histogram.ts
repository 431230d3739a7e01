import type { Histogram } from '../load/histogram';

/** Percentiles of one latency histogram, in milliseconds, as the ceilings report them. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** The ceilings' summary of a histogram (the load generator's own, bench/src/load/histogram.ts). */
export function latencySummary(histogram: Histogram): LatencySummary {
  const ms = (micros: number | undefined) => Math.round(micros ?? 0) / 1000;
  return {
    count: histogram.count,
    p50Ms: ms(histogram.percentileUs(50)),
    p90Ms: ms(histogram.percentileUs(90)),
    p99Ms: ms(histogram.percentileUs(99)),
    maxMs: ms(histogram.count ? histogram.max : 0),
    meanMs: histogram.count ? ms(histogram.sum / histogram.count) : 0,
  };
}
