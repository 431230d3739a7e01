import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * Child processes of a ceiling run: each is forked with an IPC channel, asked things by
 * message, and stopped by its own PID. Every child still running when this process
 * exits is killed, so an aborted run leaves nothing behind.
 */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

export interface IpcMessage {
  type: string;
  [key: string]: unknown;
}

export class Child {
  private readonly waiters: Array<{ type: string; resolve: (message: IpcMessage) => void; reject: (error: Error) => void }> = [];
  private exitError: Error | undefined;

  private constructor(
    readonly name: string,
    private readonly process: ChildProcess,
  ) {
    process.on('message', (message: IpcMessage) => {
      if (message.type === 'error') {
        // A child reports a fatal error once, then exits: every pending request fails with it.
        this.exitError = new Error(`${name}: ${String(message['message'])}`);
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.exitError);
        return;
      }
      const index = this.waiters.findIndex((waiter) => waiter.type === message.type);
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(message);
    });
    process.once('exit', (code, signal) => {
      running.delete(process);
      this.exitError ??= new Error(`${name} exited (code ${code}, signal ${signal})`);
    });
  }

  /** Forks a script (compiled JS or .mjs) with extra environment; stdout and stderr are shared. */
  static start(name: string, script: string, options: { env?: Record<string, string>; execArgv?: string[]; args?: string[] } = {}): Child {
    installExitHook();
    const child = fork(script, options.args ?? [], {
      env: { ...process.env, ...options.env },
      execArgv: options.execArgv ?? [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    running.add(child);
    return new Child(name, child);
  }

  get pid(): number {
    return this.process.pid!;
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  send(message: IpcMessage): void {
    if (!this.alive) throw this.exitError ?? new Error(`${this.name} is not running`);
    this.process.send(message);
  }

  /** The next message of this type, or a rejection when the child exits or the time is up. */
  next<T extends { type: string }>(type: string, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(this.exitError ?? new Error(`${this.name} exited while waiting for '${type}'`));
      };
      const waiter = {
        type,
        resolve: (message: IpcMessage) => {
          cleanup();
          resolve(message as T);
        },
        reject: (error: Error) => {
          cleanup();
          reject(error);
        },
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.process.off('exit', onExit);
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
      };
      if (!this.alive) {
        onExit();
        return;
      }
      this.waiters.push(waiter);
      this.process.once('exit', onExit);
    });
  }

  /** Sends a request and waits for the reply of the given type. */
  async request<T extends { type: string }>(message: IpcMessage, replyType: string, timeoutMs?: number): Promise<T> {
    const reply = this.next<T>(replyType, timeoutMs);
    this.send(message);
    return reply;
  }

  /** Asks the child to exit, then SIGTERM, then SIGKILL, each to this PID only. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.process, 'exit');
    try {
      this.process.send({ type: 'exit' });
    } catch {
      // The channel may already be closed; the signals below still reach the PID.
    }
    const escalate = setTimeout(() => this.process.kill('SIGTERM'), graceMs);
    const kill = setTimeout(() => this.process.kill('SIGKILL'), graceMs * 2);
    await exited;
    clearTimeout(escalate);
    clearTimeout(kill);
  }
}

export async function stopAll(children: ReadonlyArray<Child | undefined>): Promise<void> {
  await Promise.all(children.map((child) => child?.stop()));
}
