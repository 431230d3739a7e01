import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { httpRequest } from '@parley/deploy';
import type { Redis } from 'ioredis';
import type pg from 'pg';

/**
 * The processes' own figures, read from outside them: what the kernel accounts for a
 * process (/proc), what Redis counts per command (INFO commandstats), what PostgreSQL
 * counts per database (pg_stat_database) and what a gateway exports (/metrics). Nothing
 * here is instrumented in the product, so the figures hold for any build under test.
 */

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime and stime in /proc/<pid>/stat. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcSample {
  pid: number;
  /** VmRSS from /proc/<pid>/status; null once the process is gone. */
  rssBytes: number | null;
  /** utime + stime from /proc/<pid>/stat, in seconds; null once the process is gone. */
  cpuSeconds: number | null;
}

export function readProc(pid: number): ProcSample {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { pid, rssBytes: rss ? Number(rss[1]) * 1024 : null, cpuSeconds: (utime + stime) / ticksPerSecond() };
  } catch {
    return { pid, rssBytes: null, cpuSeconds: null };
  }
}

/** Direct children of a process (nginx's workers under its master), from /proc. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) children.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // Gone, or not ours to read: no children to count.
  }
  return children;
}

/** Sum of CPU seconds between two samples of the same processes (processes that vanished count as 0). */
export function cpuDelta(before: readonly ProcSample[], after: readonly ProcSample[]): number {
  let total = 0;
  for (const end of after) {
    const start = before.find((sample) => sample.pid === end.pid);
    if (end.cpuSeconds !== null) total += end.cpuSeconds - (start?.cpuSeconds ?? 0);
  }
  return total;
}

/** Calls per command since the server started (or since CONFIG RESETSTAT). */
export async function redisCommandStats(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info('commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  return calls;
}

/** Commands the measurement itself sends, left out of the figures. */
const OWN_COMMANDS = new Set(['info', 'config', 'client', 'hello', 'select', 'ping']);

/** Per-command calls between two readings, without the measurement's own INFO and handshake. */
export function redisCommandDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    if (OWN_COMMANDS.has(name.split('|')[0]!)) continue;
    const change = calls - (before[name] ?? 0);
    if (change > 0) delta[name] = change;
  }
  return delta;
}

/** redis-server's PID when it runs on this box (INFO server), for its CPU time. */
export async function redisServerPid(redis: Redis): Promise<number | undefined> {
  const info = await redis.info('server');
  const pid = /^process_id:(\d+)/m.exec(info);
  if (!pid) return undefined;
  return readProc(Number(pid[1])).cpuSeconds === null ? undefined : Number(pid[1]);
}

/**
 * Committed transactions of one database, as the statistics system holds them now. Read
 * from another database's session so the reading itself is not counted. PostgreSQL 15+
 * backends flush their counts at most once a second and, once idle, up to 10 s later: a
 * reading is exact only after every backend of the database has been idle that long.
 */
export async function pgXactCommit(client: pg.Client, databaseName: string): Promise<number> {
  const result = await client.query<{ xact_commit: string }>('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [
    databaseName,
  ]);
  return Number(result.rows[0]?.xact_commit ?? NaN);
}

/** Server PIDs of the backends connected to one database. */
export async function pgBackendPids(client: pg.Client, databaseName: string): Promise<number[]> {
  const result = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
    databaseName,
  ]);
  return result.rows.map((row) => row.pid);
}

/** A gateway's /metrics, each metric summed over its labels (histograms as _count and _sum). */
export async function gatewayMetrics(url: string): Promise<Record<string, number>> {
  const response = await httpRequest(`${url}/metrics`, { timeoutMs: 5000 });
  const totals: Record<string, number> = {};
  for (const line of response.body.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf)$/.exec(line);
    if (!match || match[1]!.endsWith('_bucket')) continue;
    totals[match[1]!] = (totals[match[1]!] ?? 0) + Number(match[3]);
  }
  return totals;
}
