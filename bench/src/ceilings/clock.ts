/**
 * Microseconds on CLOCK_MONOTONIC, which every process on the machine shares: a sender
 * stamps a frame in one process and a receiver subtracts in another. performance.now()
 * is cheap but counts from this process's start, so it is shifted once by the offset
 * to hrtime (the same clock) measured at load.
 */
const offsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export function monotonicMicros(): number {
  return (performance.now() + offsetMs) * 1000;
}
