/**
 * Peer: Socket.IO 4 with @socket.io/redis-adapter on 2 processes (bench/peers/socketio),
 * the design users would otherwise pick, under the same client load as the bare `ws`
 * ceiling: the same receiver processes, a 1,000-member room split over the server
 * processes, a sender in its own process. Socket.IO acknowledges nothing a sender
 * could pace itself on across processes, so the offered rate is fixed per step and
 * raised step by step; the result is the highest rate it keeps up with:
 *
 *   keeps up = at least `minDeliveredRatio` of the step's deliveries arrive (before
 *              they stop arriving), and p99 send→deliver is at most `maxP99Ms`
 *
 * Latency is measured from each frame's scheduled send time, so a lagging pipeline
 * shows up as latency rather than as a quietly lower offered rate.
 */
import { join } from 'node:path';
import { Child, stopAll } from './children';
import { ReceiverFleet, SenderClient } from './fleet';
import { latencySummary, type LatencySummary } from './histogram';
import { sumCpuSeconds } from './procfs';

export interface SocketIoOptions {
  redisUrl: string;
  /** Room size. Default 1,000, dealt round-robin over the server processes. */
  members?: number;
  /** Default 2. */
  serverProcesses?: number;
  /** Receiver processes. Default 2. */
  fleetProcesses?: number;
  sourceAddresses?: number;
  /** Default 200 bytes, as the bare `ws` ceiling. */
  payloadBytes?: number;
  /** Length of each rate step. Default 3,000 ms. */
  stepMs?: number;
  /** Unmeasured sending at the first rate before the steps (JIT, TCP windows). Default 2,000 ms. */
  warmupMs?: number;
  /** Frames per second sent to the room in the first step; each step multiplies it by `growth`. Defaults 20 and 1.25. */
  startRate?: number;
  growth?: number;
  maxSteps?: number;
  /** The ladder stops after this many failed steps in a row. Default 2. */
  stopAfterFailures?: number;
  /** Default 0.99. */
  minDeliveredRatio?: number;
  /** Default 250 ms. */
  maxP99Ms?: number;
}

export interface SocketIoStep {
  step: number;
  /** Frames per second offered to the room. */
  rate: number;
  offeredDeliveriesPerSecond: number;
  framesSent: number;
  /** Frames the sender was behind its schedule at the end (0 unless the sender itself lagged). */
  senderBehind: number;
  deliveries: number;
  expectedDeliveries: number;
  deliveredRatio: number;
  /** Deliveries of the step per second of the step. */
  deliveriesPerSecond: number;
  latency: LatencySummary;
  /** Members of each server process; the first holds the sender, the others get frames through Redis. */
  latencyByServer: LatencySummary[];
  keptUp: boolean;
  /** Both server processes together, % of one core. */
  serverCpuPercent: number;
  serverCpuMsPer1000Deliveries: number;
  clientCpuPercent: number;
}

export interface SocketIoResult {
  ceiling: 'socketio-redis';
  members: number;
  serverProcesses: number;
  criteria: { minDeliveredRatio: number; maxP99Ms: number };
  steps: SocketIoStep[];
  /** The highest-rate step that kept up, or null when not even the first did. */
  highestKeptUp: SocketIoStep | null;
  /** Of highestKeptUp (0 when none): the figure the fan-out target compares with. */
  deliveriesPerSecond: number;
  p99Ms: number | null;
}

const SERVER = join(__dirname, '..', '..', 'peers', 'socketio', 'server.mjs');

/** Starts one Socket.IO server process with the Redis adapter; resolves once it listens. */
export async function startSocketIoServer(name: string, redisUrl: string, adapterKey: string): Promise<{ child: Child; url: string }> {
  const child = Child.start(name, SERVER, { env: { PORT: '0', REDIS_URL: redisUrl, ADAPTER_KEY: adapterKey }, execArgv: ['--expose-gc'] });
  try {
    const listening = await child.next<{ type: 'listening'; port: number }>('listening', 30_000);
    return { child, url: `http://127.0.0.1:${listening.port}` };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/** A key of this run's own, so the adapter's channels never meet another run's on a shared Redis. */
export function uniqueAdapterKey(): string {
  return `ceiling-sio-${process.pid}-${Date.now().toString(36)}`;
}

export async function measureSocketIo(options: SocketIoOptions): Promise<SocketIoResult> {
  const members = options.members ?? 1000;
  const serverProcesses = options.serverProcesses ?? 2;
  const payloadBytes = options.payloadBytes ?? 200;
  const stepMs = options.stepMs ?? 3000;
  const growth = options.growth ?? 1.25;
  const maxSteps = options.maxSteps ?? 14;
  const stopAfterFailures = options.stopAfterFailures ?? 2;
  const criteria = { minDeliveredRatio: options.minDeliveredRatio ?? 0.99, maxP99Ms: options.maxP99Ms ?? 250 };
  const adapterKey = uniqueAdapterKey();
  const servers: Array<{ child: Child; url: string }> = [];
  let fleet: ReceiverFleet | undefined;
  let sender: SenderClient | undefined;
  try {
    for (let index = 0; index < serverProcesses; index += 1) {
      servers.push(await startSocketIoServer(`socket.io server ${index + 1}/${serverProcesses}`, options.redisUrl, adapterKey));
    }
    fleet = await ReceiverFleet.start('socket.io', {
      kind: 'socketio',
      urls: servers.map((server) => server.url),
      members,
      processes: options.fleetProcesses ?? 2,
      sourceAddresses: options.sourceAddresses,
    });
    sender = await SenderClient.start('socket.io', { kind: 'socketio', url: servers[0]!.url, payloadBytes, window: 0 });
    const serverPids = servers.map((server) => server.child.pid);
    const clientPids = [...fleet.pids, sender.pid];

    let rate = options.startRate ?? 20;
    if ((options.warmupMs ?? 2000) > 0) {
      await fleet.beginStep(0);
      await sender.run(0, options.warmupMs ?? 2000, rate);
      await fleet.waitForDeliveries(Infinity, { maxWaitMs: 3000, idleMs: 300 });
    }
    const steps: SocketIoStep[] = [];
    let failures = 0;
    for (let step = 1; step <= maxSteps && failures < stopAfterFailures; step += 1) {
      const offered = Math.round(rate);
      await fleet.beginStep(step);
      const serverCpu0 = sumCpuSeconds(serverPids);
      const clientCpu0 = sumCpuSeconds(clientPids);
      const ran = await sender.run(step, stepMs, offered);
      const expected = ran.sent * members;
      const done = await fleet.waitForDeliveries(expected, { maxWaitMs: 10_000, idleMs: 1000 });
      const serverCpu = sumCpuSeconds(serverPids) - serverCpu0;
      const clientCpu = sumCpuSeconds(clientPids) - clientCpu0;
      // The schedule's length, not the time to the last send (which falls one interval short).
      const seconds = ran.sent / offered;
      const latency = latencySummary(done.histogram);
      const deliveredRatio = expected === 0 ? 0 : done.received / expected;
      const keptUp = deliveredRatio >= criteria.minDeliveredRatio && latency.p99Ms <= criteria.maxP99Ms && ran.behind === 0;
      // CPU is read after the backlog drained, so it is per delivery of this step, not per second of it.
      steps.push({
        step,
        rate: offered,
        offeredDeliveriesPerSecond: offered * members,
        framesSent: ran.sent,
        senderBehind: ran.behind,
        deliveries: done.received,
        expectedDeliveries: expected,
        deliveredRatio: Math.round(deliveredRatio * 10_000) / 10_000,
        deliveriesPerSecond: Math.round(done.received / seconds),
        latency,
        latencyByServer: done.byUrl.map((histogram) => latencySummary(histogram)),
        keptUp,
        serverCpuPercent: Math.round((serverCpu / seconds) * 100),
        serverCpuMsPer1000Deliveries: Math.round(((serverCpu * 1e6) / Math.max(1, done.received)) * 1000) / 1000,
        clientCpuPercent: Math.round((clientCpu / seconds) * 100),
      });
      failures = keptUp ? 0 : failures + 1;
      rate *= growth;
    }
    const highestKeptUp = steps.filter((step) => step.keptUp).at(-1) ?? null;
    return {
      ceiling: 'socketio-redis',
      members,
      serverProcesses,
      criteria,
      steps,
      highestKeptUp,
      deliveriesPerSecond: highestKeptUp?.deliveriesPerSecond ?? 0,
      p99Ms: highestKeptUp?.latency.p99Ms ?? null,
    };
  } finally {
    await sender?.stop();
    await fleet?.stop();
    await stopAll(servers.map((server) => server.child));
  }
}
