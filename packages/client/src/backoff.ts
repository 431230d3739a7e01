/** Shape of the reconnect (and retry) delays. */
export interface BackoffOptions {
  /** Ceiling of the first delay, in ms. */
  initialMs: number;
  /** Largest ceiling, in ms: delays never exceed it. */
  maxMs: number;
  /** Growth of the ceiling per attempt (2 doubles it). */
  factor: number;
  /**
   * Share of the ceiling that is random, 0–1. A delay is drawn uniformly from
   * `[ceiling × (1 − jitter), ceiling)`: 0.5 keeps at least half the ceiling (so retries
   * really do slow down) while spreading a crowd of clients over the other half.
   */
  jitter: number;
}

/** 0.5 s, 1 s, 2 s, ... up to 30 s, each with up to half of it randomized. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.5,
});

/** Checks options, throwing a `RangeError` that names the bad one. */
export function validateBackoff(options: BackoffOptions): BackoffOptions {
  const { initialMs, maxMs, factor, jitter } = options;
  if (!(Number.isFinite(initialMs) && initialMs > 0)) throw new RangeError('backoff.initialMs must be > 0');
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs)) throw new RangeError('backoff.maxMs must be >= initialMs');
  if (!(Number.isFinite(factor) && factor >= 1)) throw new RangeError('backoff.factor must be >= 1');
  if (!(Number.isFinite(jitter) && jitter >= 0 && jitter <= 1)) throw new RangeError('backoff.jitter must be in [0, 1]');
  return options;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): capped exponential
 * growth with jitter. `random` returns a number in [0, 1), like `Math.random`.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt));
  // factor ** exponent may overflow to Infinity; the cap absorbs it.
  const ceiling = Math.min(options.maxMs, options.initialMs * options.factor ** exponent);
  const floor = ceiling * (1 - options.jitter);
  const draw = Math.min(Math.max(random(), 0), 1);
  return Math.floor(floor + (ceiling - floor) * draw);
}

/** A backoff sequence: each `next()` is one attempt later than the previous; `reset()` starts over. */
export class Backoff {
  private attempts = 0;
  private readonly options: BackoffOptions;

  constructor(
    options: Partial<BackoffOptions> = {},
    private readonly random: () => number = Math.random,
  ) {
    this.options = validateBackoff({ ...DEFAULT_BACKOFF, ...options });
  }

  /** Attempts made since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** The next delay, in ms. */
  next(): number {
    const delay = backoffDelay(this.attempts, this.options, this.random);
    this.attempts += 1;
    return delay;
  }

  /** Back to the first, shortest delay (after a connection proved healthy). */
  reset(): void {
    this.attempts = 0;
  }
}
