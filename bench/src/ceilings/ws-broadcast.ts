/**
 * Ceiling: a bare `ws` server broadcasting to one room, with the same client process
 * design as the other fan-out runs (receivers in forked processes over 127.0.0.x, a
 * sender in its own process). Measured twice: one frame per write syscall, and frames
 * for a socket coalesced into one write per event-loop turn.
 */
import { join } from 'node:path';
import { Child } from './children';
import { ReceiverFleet, SenderClient } from './fleet';
import { latencySummary, type LatencySummary } from './histogram';
import { readCpuSeconds, sumCpuSeconds } from './procfs';

export type BroadcastMode = 'per-frame' | 'coalesced';

export interface WsBroadcastOptions {
  /** Room size; every member is a connected receiver. Default 1,000. */
  members?: number;
  /** Default both. */
  modes?: BroadcastMode[];
  /** Measured time per mode. Default 5,000 ms. */
  durationMs?: number;
  /** Unmeasured sending before it, so JIT and TCP windows settle. Default 1,000 ms. */
  warmupMs?: number;
  /** Frames the sender may have unacknowledged. Default 16. */
  window?: number;
  /** Frame size in bytes, about that of a chat message event. Default 200. */
  payloadBytes?: number;
  /** Receiver processes. Default 2. */
  fleetProcesses?: number;
  /** Source addresses 127.0.0.2… the receivers are spread over. Default 8. */
  sourceAddresses?: number;
}

export interface WsBroadcastRun {
  mode: BroadcastMode;
  members: number;
  window: number;
  payloadBytes: number;
  /** Frames the sender sent in the measured step. */
  framesSent: number;
  /** Frames received in the step, once every in-flight frame had arrived (or stopped arriving). */
  deliveries: number;
  expectedDeliveries: number;
  lost: number;
  /** Length of the measured step, at the sender. */
  elapsedMs: number;
  /** Deliveries counted while the step ran, per second of it: the ceiling. */
  deliveriesPerSecond: number;
  /** send→deliver over every frame of the step. */
  latency: LatencySummary;
  /** CPU the server used in the step: % of one core, and ms per 1,000 deliveries. */
  serverCpuPercent: number;
  serverCpuMsPer1000Deliveries: number;
  /** CPU of the receivers and the sender together, % of one core (the box has two). */
  clientCpuPercent: number;
}

export interface WsBroadcastResult {
  ceiling: 'ws-broadcast';
  runs: WsBroadcastRun[];
}

const SERVER = join(__dirname, 'ws-broadcast-server.js');

/** Starts the bare `ws` broadcast server in a child process; resolves once it listens. */
export async function startWsBroadcastServer(mode: BroadcastMode): Promise<{ child: Child; url: string }> {
  const child = Child.start(`ws server (${mode})`, SERVER, { env: { BROADCAST_MODE: mode, PORT: '0' }, execArgv: ['--expose-gc'] });
  try {
    const listening = await child.next<{ type: 'listening'; port: number }>('listening', 30_000);
    return { child, url: `ws://127.0.0.1:${listening.port}` };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

export async function measureWsBroadcast(options: WsBroadcastOptions = {}): Promise<WsBroadcastResult> {
  const runs: WsBroadcastRun[] = [];
  for (const mode of options.modes ?? ['per-frame', 'coalesced']) runs.push(await measureMode(mode, options));
  return { ceiling: 'ws-broadcast', runs };
}

async function measureMode(mode: BroadcastMode, options: WsBroadcastOptions): Promise<WsBroadcastRun> {
  const members = options.members ?? 1000;
  const window = options.window ?? 16;
  const payloadBytes = options.payloadBytes ?? 200;
  const durationMs = options.durationMs ?? 5000;
  const warmupMs = options.warmupMs ?? 1000;
  const server = await startWsBroadcastServer(mode);
  let fleet: ReceiverFleet | undefined;
  let sender: SenderClient | undefined;
  try {
    fleet = await ReceiverFleet.start(`ws ${mode}`, {
      kind: 'ws',
      urls: [server.url],
      members,
      processes: options.fleetProcesses ?? 2,
      sourceAddresses: options.sourceAddresses,
    });
    sender = await SenderClient.start(`ws ${mode}`, { kind: 'ws', url: `${server.url}/send`, payloadBytes, window });
    if (warmupMs > 0) {
      await fleet.beginStep(0);
      await sender.run(0, warmupMs, 0);
      await fleet.waitForDeliveries(Infinity, { maxWaitMs: 2000, idleMs: 200 });
    }
    await fleet.beginStep(1);
    const clientPids = [...fleet.pids, sender.pid];
    const serverCpu0 = readCpuSeconds(server.child.pid);
    const clientCpu0 = sumCpuSeconds(clientPids);
    const ran = await sender.run(1, durationMs, 0);
    const during = await fleet.snapshot();
    const serverCpu = readCpuSeconds(server.child.pid) - serverCpu0;
    const clientCpu = sumCpuSeconds(clientPids) - clientCpu0;
    const expected = ran.sent * members;
    const final = await fleet.waitForDeliveries(expected, { maxWaitMs: 10_000, idleMs: 1000 });
    const seconds = ran.elapsedMs / 1000;
    return {
      mode,
      members,
      window,
      payloadBytes,
      framesSent: ran.sent,
      deliveries: final.received,
      expectedDeliveries: expected,
      lost: expected - final.received,
      elapsedMs: Math.round(ran.elapsedMs),
      deliveriesPerSecond: Math.round(during.received / seconds),
      latency: latencySummary(final.histogram),
      serverCpuPercent: Math.round((serverCpu / seconds) * 100),
      serverCpuMsPer1000Deliveries: round((serverCpu * 1000 * 1000) / Math.max(1, during.received), 3),
      clientCpuPercent: Math.round((clientCpu / seconds) * 100),
    };
  } finally {
    await sender?.stop();
    await fleet?.stop();
    await server.child.stop();
  }
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
