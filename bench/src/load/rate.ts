import { nowUs } from './clock';
import { Histogram } from './histogram';

export interface FixedRateOptions {
  /** Offered sends per second (0: none). */
  ratePerSecond: number;
  /** nowUs() instant of the first send. */
  startUs: number;
  /** No send is due at or after this instant. */
  endUs: number;
  /** Called once per due send with its intended instant; it must not wait for a reply. */
  onSend: (intendedUs: number) => void;
  /** Most sends made in one timer turn when far behind, so acks and pushes still get read. */
  maxBurst?: number;
}

export interface FixedRateOutcome {
  /** Sends that were due in the window, all of which onSend was called for. */
  scheduled: number;
  /** How late each onSend call was against its intended instant: the generator's own lag. */
  lag: Histogram;
}

/**
 * An open-loop scheduler: send i is due at startUs + i / rate whatever happened to the
 * sends before it, so a slow server meets the same offered load instead of a politely
 * slowed one (the coordinated-omission trap of back-to-back loops). When a timer fires
 * late every send already due goes out at once, and the lateness is recorded, so a
 * saturated generator shows as lag instead of silently offering less.
 */
export function runAtFixedRate(options: FixedRateOptions): Promise<FixedRateOutcome> {
  const lag = new Histogram();
  const total = options.ratePerSecond > 0 ? Math.floor(((options.endUs - options.startUs) * options.ratePerSecond) / 1e6) : 0;
  const intervalUs = options.ratePerSecond > 0 ? 1e6 / options.ratePerSecond : 0;
  const maxBurst = options.maxBurst ?? 5000;
  let issued = 0;
  return new Promise((resolve, reject) => {
    const tick = () => {
      try {
        const now = nowUs();
        let burst = 0;
        while (issued < total && burst < maxBurst) {
          const intended = options.startUs + issued * intervalUs;
          if (intended > now) break;
          lag.record(nowUs() - intended);
          options.onSend(intended);
          issued += 1;
          burst += 1;
        }
        if (issued >= total) {
          resolve({ scheduled: total, lag });
          return;
        }
        const next = options.startUs + issued * intervalUs;
        setTimeout(tick, Math.max(0, (next - nowUs()) / 1000));
      } catch (error) {
        reject(error as Error);
      }
    };
    setTimeout(tick, Math.max(0, (options.startUs - nowUs()) / 1000));
  });
}
