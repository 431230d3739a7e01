import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';

/**
 * A private redis-server on a loopback port, for tests and benchmarks that must not
 * touch the shared Redis: `INFO commandstats` then counts only what they cause, and a
 * test may pause (SIGSTOP), resume (SIGCONT), kill and restart it. Signals go to this
 * child's PID only, and only while it runs; it never outlives this process.
 */
export class PrivateRedis {
  private exited = false;

  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    child.once('exit', () => {
      this.exited = true;
    });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(port: number, timeoutMs = 10_000): Promise<PrivateRedis> {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const server = new PrivateRedis(port, child);
    const killOnExit = () => server.signal('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    // Poll the port until it accepts (a start has no event to wait on); fail at the deadline.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await canConnect(port)) return server;
      if (server.exited || Date.now() > deadline) {
        server.signal('SIGKILL');
        throw new Error(`redis-server did not start on ${port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  signal(signal: NodeJS.Signals): boolean {
    if (this.exited) return false;
    return this.child.kill(signal);
  }

  /** SIGSTOP: the server keeps its sockets but answers nothing. */
  pause(): boolean {
    return this.signal('SIGSTOP');
  }

  resume(): boolean {
    return this.signal('SIGCONT');
  }

  /** Stops the server: SIGTERM (a clean shutdown) or SIGKILL (a crash: sockets reset, nothing said). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    const exit = once(this.child, 'exit');
    this.signal('SIGCONT');
    this.signal(signal);
    await exit;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
