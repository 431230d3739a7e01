import { join } from 'node:path';
import { Child, stopAll } from './children';
import type { ClientKind, ConnectedReply, RanReply, SnapshotReply } from './fleet-worker';
import { Histogram } from '../load/histogram';

const WORKER = join(__dirname, 'fleet-worker.js');

/** Source addresses 127.0.0.2, 127.0.0.3, …: loopback answers on all of 127/8, and each gives its own ephemeral port range. */
export function loopbackAddresses(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `127.0.0.${2 + index}`);
}

export interface FleetOptions {
  kind: ClientKind;
  /** Receivers are dealt round-robin over these server URLs (one per server process). */
  urls: readonly string[];
  members: number;
  /** Client processes the members are split over (each stays far below the open-file limit). */
  processes: number;
  sourceAddresses?: number;
  connectConcurrency?: number;
  /** Fail unless every member connected. */
  requireAll?: boolean;
}

export interface FleetSnapshot {
  received: number;
  stale: number;
  open: number;
  closed: number;
  histogram: Histogram;
  /** Latency of the members of each server URL, in the order given. */
  byUrl: Histogram[];
}

/** Receivers in forked processes: every socket is a room member that counts what it gets. */
export class ReceiverFleet {
  private constructor(
    private readonly workers: Child[],
    readonly connected: { open: number; failed: number; elapsedMs: number; firstError?: string },
  ) {}

  static async start(name: string, options: FleetOptions): Promise<ReceiverFleet> {
    const processes = Math.max(1, Math.min(options.processes, options.members));
    const workers: Child[] = [];
    try {
      const addresses = loopbackAddresses(options.sourceAddresses ?? 8);
      const replies = await Promise.all(
        Array.from({ length: processes }, (_, index) => {
          const first = Math.floor((index * options.members) / processes);
          const last = Math.floor(((index + 1) * options.members) / processes);
          const worker = Child.start(`${name} receivers ${index + 1}/${processes}`, WORKER);
          workers.push(worker);
          return worker.request<ConnectedReply>(
            {
              type: 'connect',
              kind: options.kind,
              urls: options.urls,
              count: last - first,
              firstIndex: first,
              localAddresses: addresses,
              concurrency: options.connectConcurrency ?? 50,
            },
            'connected',
            120_000,
          );
        }),
      );
      const connected = {
        open: replies.reduce((sum, r) => sum + r.open, 0),
        failed: replies.reduce((sum, r) => sum + r.failed, 0),
        elapsedMs: Math.max(...replies.map((r) => r.elapsedMs)),
        firstError: replies.find((r) => r.firstError)?.firstError,
      };
      if ((options.requireAll ?? true) && connected.failed > 0) {
        throw new Error(`${name}: ${connected.failed} of ${options.members} receivers failed to connect (${connected.firstError})`);
      }
      return new ReceiverFleet(workers, connected);
    } catch (error) {
      await stopAll(workers);
      throw error;
    }
  }

  get pids(): number[] {
    return this.workers.map((worker) => worker.pid);
  }

  /** Every receiver counts only frames of `step` from now on, and its histogram starts empty. */
  async beginStep(step: number): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.request({ type: 'step', step }, 'stepped')));
  }

  async snapshot(): Promise<FleetSnapshot> {
    const replies = await Promise.all(this.workers.map((worker) => worker.request<SnapshotReply>({ type: 'snapshot' }, 'snapshot')));
    const histogram = new Histogram();
    for (const r of replies) histogram.merge(r.histogram);
    const byUrl = (replies[0]?.byUrl ?? []).map((_, index) => {
      const merged = new Histogram();
      for (const r of replies) if (r.byUrl[index]) merged.merge(r.byUrl[index]!);
      return merged;
    });
    return {
      received: replies.reduce((sum, r) => sum + r.received, 0),
      stale: replies.reduce((sum, r) => sum + r.stale, 0),
      open: replies.reduce((sum, r) => sum + r.open, 0),
      closed: replies.reduce((sum, r) => sum + r.closed, 0),
      histogram,
      byUrl,
    };
  }

  /**
   * Polls until the step's deliveries reach `expected`, or none arrived for `idleMs`
   * (what is still missing is lost or stuck), or `maxWaitMs` passed.
   */
  async waitForDeliveries(expected: number, options: { maxWaitMs: number; idleMs: number }): Promise<FleetSnapshot> {
    const deadline = Date.now() + options.maxWaitMs;
    let last = await this.snapshot();
    let lastProgress = Date.now();
    while (last.received < expected && Date.now() < deadline && Date.now() - lastProgress < options.idleMs) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const next = await this.snapshot();
      if (next.received > last.received) lastProgress = Date.now();
      last = next;
    }
    return last;
  }

  async stop(): Promise<void> {
    await stopAll(this.workers);
  }
}

/** The sending client, in a process of its own. */
export class SenderClient {
  private constructor(private readonly worker: Child) {}

  static async start(name: string, options: { kind: ClientKind; url: string; payloadBytes: number; window: number }): Promise<SenderClient> {
    const worker = Child.start(`${name} sender`, WORKER);
    try {
      await worker.request(
        { type: 'sender', kind: options.kind, url: options.url, localAddress: '127.0.0.1', payloadBytes: options.payloadBytes, window: options.window },
        'sender-ready',
        30_000,
      );
      return new SenderClient(worker);
    } catch (error) {
      await worker.stop();
      throw error;
    }
  }

  get pid(): number {
    return this.worker.pid;
  }

  /** Sends frames of `step` for `durationMs`: at `rate` per second, or (rate 0) as fast as the window allows. */
  run(step: number, durationMs: number, rate: number): Promise<RanReply> {
    return this.worker.request<RanReply>({ type: 'run', step, durationMs, rate }, 'ran', durationMs + 30_000);
  }

  stop(): Promise<void> {
    return this.worker.stop();
  }
}
