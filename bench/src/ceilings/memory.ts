/**
 * Ceiling: resident memory per idle connection, for the bare `ws` server and for one
 * Socket.IO server process with the Redis adapter (the peer design), read from
 * /proc/<pid>/status (VmRSS) after a full GC, before and after opening the connections
 * from the same receiver processes as the fan-out runs. The memory target holds Parley's
 * gateway to a multiple of the bare `ws` figure.
 */
import type { Child } from './children';
import { ReceiverFleet, type FleetOptions } from './fleet';
import { readRssKiB } from './procfs';
import { startSocketIoServer, uniqueAdapterKey } from './socketio';
import { startWsBroadcastServer } from './ws-broadcast';

export type MemoryServer = 'ws' | 'socketio';

export interface IdleMemoryOptions {
  /** Needed for the Socket.IO server's adapter. */
  redisUrl: string;
  /** Idle connections to open. Default 5,000. */
  connections?: number;
  /** Receiver processes they come from. Default 2. */
  fleetProcesses?: number;
  sourceAddresses?: number;
  /** Wait after the last connection before reading memory. Default 2,000 ms. */
  settleMs?: number;
  /** Default both. */
  servers?: MemoryServer[];
}

export interface IdleMemoryRun {
  server: MemoryServer;
  connections: number;
  /** After start, a warm-up of 100 connections closed again, and a full GC. */
  rssBeforeKiB: number;
  /** With every connection open and idle, after a full GC. */
  rssAfterKiB: number;
  perConnectionKiB: number;
  /**
   * The same split by what the server process reports after the GC: live JS heap, and
   * memory outside it (Buffers and other native allocations V8 is told about). The
   * rest of RSS is heap V8 keeps for reuse, native code's own allocations and stacks.
   */
  perConnectionHeapUsedKiB: number;
  perConnectionExternalKiB: number;
  connectMs: number;
}

export interface IdleMemoryResult {
  ceiling: 'idle-memory';
  runs: IdleMemoryRun[];
}

async function collect(server: Child): Promise<NodeJS.MemoryUsage> {
  const reply = await server.request<{ type: 'gc-done'; collected: boolean; memory: NodeJS.MemoryUsage }>({ type: 'gc' }, 'gc-done');
  if (!reply.collected) throw new Error('the server was started without --expose-gc');
  // Let freed pages go back and the numbers in /proc settle.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return reply.memory;
}

function perConnection(kib: number, connections: number): number {
  return Math.round((kib / Math.max(1, connections)) * 100) / 100;
}

export async function measureIdleMemory(options: IdleMemoryOptions): Promise<IdleMemoryResult> {
  const connections = options.connections ?? 5000;
  const runs: IdleMemoryRun[] = [];
  for (const kind of options.servers ?? ['ws', 'socketio']) {
    const server =
      kind === 'ws' ? await startWsBroadcastServer('coalesced') : await startSocketIoServer('socket.io server (memory)', options.redisUrl, uniqueAdapterKey());
    const fleetOptions: Omit<FleetOptions, 'members'> = {
      kind,
      urls: [server.url],
      processes: options.fleetProcesses ?? 2,
      sourceAddresses: options.sourceAddresses,
      connectConcurrency: 100,
    };
    let fleet: ReceiverFleet | undefined;
    try {
      // Code paths that load lazily on the first connections are not per-connection cost.
      const warm = await ReceiverFleet.start(`${kind} memory warm-up`, { ...fleetOptions, members: 100 });
      await warm.stop();
      await new Promise((resolve) => setTimeout(resolve, 500));
      const before = await collect(server.child);
      const rssBeforeKiB = readRssKiB(server.child.pid);
      fleet = await ReceiverFleet.start(`${kind} memory`, { ...fleetOptions, members: connections });
      await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 2000));
      const after = await collect(server.child);
      const rssAfterKiB = readRssKiB(server.child.pid);
      runs.push({
        server: kind,
        connections: fleet.connected.open,
        rssBeforeKiB,
        rssAfterKiB,
        perConnectionKiB: perConnection(rssAfterKiB - rssBeforeKiB, fleet.connected.open),
        perConnectionHeapUsedKiB: perConnection((after.heapUsed - before.heapUsed) / 1024, fleet.connected.open),
        perConnectionExternalKiB: perConnection((after.external - before.external) / 1024, fleet.connected.open),
        connectMs: fleet.connected.elapsedMs,
      });
    } finally {
      await fleet?.stop();
      await server.child.stop();
    }
  }
  return { ceiling: 'idle-memory', runs };
}
