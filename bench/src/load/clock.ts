/**
 * Microseconds on CLOCK_MONOTONIC. `process.hrtime` reads the system-wide monotonic clock
 * on Linux, so a value taken in one process can be compared with one taken in another on
 * the same box: a sender writes it into the message body and the receiving worker process
 * subtracts it from its own reading. Wall-clock time (Date.now, performance.timeOrigin) is
 * not safe for that: it steps with NTP and each process derives its own origin.
 * `performance.now()` runs on the same clock but counts from this process's start and is
 * cheaper per call (no array allocated): it is shifted once, at load, by its offset to
 * hrtime. Receivers read the clock once per frame, hundreds of thousands of times a second.
 */
const offsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export function nowUs(): number {
  return (performance.now() + offsetMs) * 1000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Resolves at a given nowUs() instant (within a timer tick). */
export function sleepUntil(atUs: number): Promise<void> {
  return sleep((atUs - nowUs()) / 1000);
}
