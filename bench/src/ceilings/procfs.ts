import { readFileSync } from 'node:fs';

/**
 * What the kernel says a process costs, read from /proc: resident memory from
 * /proc/<pid>/status and CPU time from /proc/<pid>/stat, so a figure is measured from
 * outside the process and includes everything it allocated, not what it reports.
 */

/** VmRSS of a process, in KiB. */
export function readRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

// USER_HZ is 100 on every Linux this runs on; sysconf is not reachable from Node.
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU seconds a process has used so far. */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 (utime) and 15 (stime) of stat(5), counted here from field 3.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** Total CPU seconds of several processes (a fleet, a pair of servers). */
export function sumCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
}
