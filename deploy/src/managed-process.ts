import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartProcessOptions {
  /** Names the log file (`<logDir>/<name>.log`) and error messages. */
  name: string;
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  logDir: string;
  cwd?: string;
  /**
   * Own process group: a Ctrl-C in the terminal then reaches only the parent, which can
   * stop its children in order (gateways drain before nginx goes away).
   */
  detached?: boolean;
}

/**
 * A child process this code started. Signals go to its PID only, and only while it has
 * not exited, so a recycled PID is never hit.
 */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout and stderr, interleaved as written. */
  readonly logPath: string;
  readonly exitStatus: ExitStatus | undefined;
  /** Sends a signal; false when the process had already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  /** Resolves when the process has exited (at once if it already has). */
  waitForExit(): Promise<ExitStatus>;
  /** Sends `signal`, then SIGKILL if it has not exited after `graceMs`. */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<ExitStatus>;
  /** The last lines of the log, for error messages. */
  logTail(lines?: number): string;
}

export function describeExit(status: ExitStatus): string {
  return status.signal ? `killed by ${status.signal}` : `exited with code ${status.code}`;
}

/** Starts a child with stdout and stderr going straight to a log file (no pipe to drain). */
export async function startProcess(options: StartProcessOptions): Promise<ManagedProcess> {
  const logPath = path.join(options.logDir, `${options.name}.log`);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['ignore', fd, fd],
      detached: options.detached ?? false,
    });
    await once(child, 'spawn');
  } catch (error) {
    throw new Error(`could not start ${options.name} (${options.command}): ${(error as Error).message}`);
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.name}: no pid`);
  // After a successful spawn, 'error' only reports a signal that could not be sent; kill()
  // already returns false for that, so the event must not crash the parent.
  child.on('error', () => {});

  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });

  const handle: ManagedProcess = {
    name: options.name,
    pid,
    logPath,
    get exitStatus() {
      return exitStatus;
    },
    kill(signal = 'SIGTERM') {
      if (exitStatus) return false;
      return child.kill(signal);
    },
    waitForExit: () => exited,
    async stop(signal, graceMs) {
      if (exitStatus) return exitStatus;
      handle.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const first = await Promise.race([exited, deadline]);
      clearTimeout(timer);
      if (first !== 'timeout') return first;
      handle.kill('SIGKILL');
      return exited;
    },
    logTail(lines = 20) {
      try {
        return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '(no log)';
      }
    },
  };
  return handle;
}
