/**
 * The same-run ceilings Parley's benchmark figures are held against, one function each,
 * and `measureCeilings` to run a selection of them in sequence (never two at once: on
 * two cores each would be the other's noise). Every result is plain JSON.
 */
import { cpus, release } from 'node:os';
import { measureConnect, type ConnectCeilingOptions, type ConnectCeilingResult } from './connect';
import { measureIdleMemory, type IdleMemoryOptions, type IdleMemoryResult } from './memory';
import { measurePgStore, type PgStoreOptions, type PgStoreResult } from './pg-store';
import { measureRedisPublish, type RedisPublishOptions, type RedisPublishResult } from './redis-publish';
import { measureSocketIo, type SocketIoOptions, type SocketIoResult } from './socketio';
import { measureWsBroadcast, type WsBroadcastOptions, type WsBroadcastResult } from './ws-broadcast';

export * from './connect';
export * from './histogram';
export * from './memory';
export * from './pg-store';
export * from './redis-publish';
export * from './socketio';
export * from './ws-broadcast';

export type CeilingName = 'redis' | 'pg' | 'ws' | 'socketio' | 'memory' | 'connect';
export const CEILING_NAMES: readonly CeilingName[] = ['redis', 'pg', 'ws', 'socketio', 'memory', 'connect'];

export interface CeilingsOptions {
  redisUrl: string;
  /** A PostgreSQL role that may CREATE DATABASE. */
  databaseUrl: string;
  only?: readonly CeilingName[];
  redis?: Omit<RedisPublishOptions, 'redisUrl'>;
  pg?: Omit<PgStoreOptions, 'adminUrl'>;
  ws?: WsBroadcastOptions;
  socketio?: Omit<SocketIoOptions, 'redisUrl'>;
  memory?: Omit<IdleMemoryOptions, 'redisUrl'>;
  connect?: Omit<ConnectCeilingOptions, 'adminUrl'>;
  /** Told when each ceiling starts and ends, for progress output. */
  onProgress?: (message: string) => void;
}

export interface CeilingsReport {
  date: string;
  host: { cpus: number; cpuModel: string; kernel: string; node: string };
  redis?: RedisPublishResult;
  pg?: PgStoreResult;
  ws?: WsBroadcastResult;
  socketio?: SocketIoResult;
  memory?: IdleMemoryResult;
  connect?: ConnectCeilingResult;
  /** A ceiling that failed, with why; the others still ran. */
  errors: Partial<Record<CeilingName, string>>;
  durationMs: number;
}

export async function measureCeilings(options: CeilingsOptions): Promise<CeilingsReport> {
  const started = performance.now();
  const report: CeilingsReport = {
    date: new Date().toISOString(),
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', kernel: release(), node: process.version },
    errors: {},
    durationMs: 0,
  };
  const only = new Set(options.only ?? CEILING_NAMES);
  const step = async <T>(name: CeilingName, run: () => Promise<T>, store: (result: T) => void) => {
    if (!only.has(name)) return;
    const begun = performance.now();
    options.onProgress?.(`${name}: running`);
    try {
      store(await run());
      options.onProgress?.(`${name}: done in ${((performance.now() - begun) / 1000).toFixed(1)} s`);
    } catch (error) {
      report.errors[name] = (error as Error).stack ?? String(error);
      options.onProgress?.(`${name}: failed: ${(error as Error).message}`);
    }
  };
  await step('redis', () => measureRedisPublish({ ...options.redis, redisUrl: options.redisUrl }), (result) => (report.redis = result));
  await step('pg', () => measurePgStore({ ...options.pg, adminUrl: options.databaseUrl }), (result) => (report.pg = result));
  await step('ws', () => measureWsBroadcast(options.ws), (result) => (report.ws = result));
  await step('socketio', () => measureSocketIo({ ...options.socketio, redisUrl: options.redisUrl }), (result) => (report.socketio = result));
  await step('memory', () => measureIdleMemory({ ...options.memory, redisUrl: options.redisUrl }), (result) => (report.memory = result));
  await step('connect', () => measureConnect({ ...options.connect, adminUrl: options.databaseUrl }), (result) => (report.connect = result));
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

/** A plain-text summary of a report, one line per figure. */
export function formatCeilings(report: CeilingsReport): string {
  const lines = [`Ceilings, ${report.date}, ${report.host.cpus} × ${report.host.cpuModel}, Linux ${report.host.kernel}, Node ${report.host.node}`];
  if (report.redis) {
    lines.push(`Redis ${report.redis.redisVersion} PUBLISH (${report.redis.payloadBytes} B, subscriber on ${report.redis.channels} channels):`);
    for (const run of report.redis.runs) {
      const shape = run.mode === 'unpipelined' ? `unpipelined, ${run.inFlight} in flight` : `pipelined, batches of ${run.batch}`;
      lines.push(`  ${run.client.padEnd(7)} ${shape.padEnd(30)} ${thousands(run.publishesPerSecond).padStart(9)} /s   Redis CPU ${run.serverCpuPercent}%, ${run.serverCpuMicrosPerPublish} µs/publish`);
    }
  }
  if (report.pg) {
    const server = report.pg.server;
    lines.push(`PostgreSQL ${server.version} storing transaction (synchronous_commit ${server.synchronousCommit}, ${server.walSyncMethod}):`);
    for (const run of report.pg.runs) {
      const where = run.layout === 'spread' ? `${run.conversations} conversations` : '1 hot conversation';
      lines.push(
        `  ${run.variant.padEnd(16)} ${where.padEnd(18)} ${thousands(run.transactionsPerSecond).padStart(7)} tx/s  p50 ${run.latency.p50Ms} ms p99 ${run.latency.p99Ms} ms  ` +
          `${run.connections} conns, ${run.roundTripsPerMessage} round trips${run.gapless ? '' : '  SEQ GAPS'}${run.errors ? `  ${run.errors} errors` : ''}`,
      );
    }
  }
  if (report.ws) {
    lines.push('Bare ws broadcast:');
    for (const run of report.ws.runs) {
      lines.push(
        `  ${run.mode.padEnd(10)} ${run.members} members  ${thousands(run.deliveriesPerSecond).padStart(9)} deliveries/s  p50 ${run.latency.p50Ms} ms p99 ${run.latency.p99Ms} ms  ` +
          `window ${run.window}, server CPU ${run.serverCpuPercent}%, clients ${run.clientCpuPercent}%${run.lost ? `  ${run.lost} lost` : ''}`,
      );
    }
  }
  if (report.socketio) {
    const io = report.socketio;
    lines.push(`Socket.IO + Redis adapter, ${io.serverProcesses} processes, ${io.members} members (keeps up: ≥ ${io.criteria.minDeliveredRatio * 100}% delivered, p99 ≤ ${io.criteria.maxP99Ms} ms):`);
    for (const step of io.steps) {
      lines.push(
        `  ${thousands(step.offeredDeliveriesPerSecond).padStart(9)} offered  ${thousands(step.deliveriesPerSecond).padStart(9)} delivered/s  ${(step.deliveredRatio * 100).toFixed(1)}%  ` +
          `p50 ${step.latency.p50Ms} ms p99 ${step.latency.p99Ms} ms  server CPU ${step.serverCpuPercent}%  ${step.keptUp ? 'keeps up' : 'falls behind'}`,
      );
    }
    lines.push(`  highest kept up: ${io.highestKeptUp ? `${thousands(io.deliveriesPerSecond)} deliveries/s, p99 ${io.p99Ms} ms` : 'none'}`);
  }
  if (report.memory) {
    lines.push('Idle RSS per connection:');
    for (const run of report.memory.runs) {
      lines.push(
        `  ${run.server.padEnd(9)} ${run.perConnectionKiB} KiB  (${thousands(run.connections)} connections, ${thousands(run.rssBeforeKiB)} → ${thousands(run.rssAfterKiB)} KiB; ` +
          `JS heap ${run.perConnectionHeapUsedKiB} KiB, external ${run.perConnectionExternalKiB} KiB per connection)`,
      );
    }
  }
  if (report.connect) {
    const run = report.connect;
    const cpu = run.cpuSecondsPer1000Connections;
    lines.push(
      `Connect through nginx (TLS) to ${run.servers} bare upgrade servers, the load generator's connect scenario:`,
      `  ${thousands(run.connected)}/${thousands(run.connections)} connected, ${thousands(run.connectsPerSecond ?? 0)} /s  p50 ${run.connectMs.p50} ms p99 ${run.connectMs.p99} ms  ` +
        `CPU s per 1,000: generator ${cpu.loadgen}, nginx ${cpu.nginx}, servers ${cpu.servers}`,
    );
  }
  for (const [name, error] of Object.entries(report.errors)) lines.push(`${name}: FAILED: ${error.split('\n')[0]}`);
  lines.push(`(${(report.durationMs / 1000).toFixed(0)} s)`);
  return lines.join('\n');
}
