import { setTimeout as delay } from 'node:timers/promises';
import { httpRequest, type HttpResponse } from './http-client';
import { describeExit, type ManagedProcess } from './managed-process';

export interface WaitForReadyOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between polls. */
  intervalMs?: number;
  ca?: string;
  /** The process that should answer: if it exits, stop waiting and show its log. */
  process?: ManagedProcess;
  /** When the response counts as ready; default: status 200. */
  isReady?: (response: HttpResponse) => boolean;
}

/**
 * Polls `url` until it answers ready, the deadline passes, or the process behind it
 * exits. Readiness is the event being waited for, so polling it is the synchronization.
 */
export async function waitForReady(url: string, options: WaitForReadyOptions): Promise<HttpResponse> {
  const deadline = Date.now() + options.timeoutMs;
  const isReady = options.isReady ?? ((response: HttpResponse) => response.status === 200);
  const what = options.process ? `${options.process.name} (pid ${options.process.pid})` : url;
  let last = 'no answer yet';
  for (;;) {
    const exit = options.process?.exitStatus;
    if (exit) {
      throw new Error(`${what} ${describeExit(exit)} before ${url} was ready. Log ${options.process!.logPath}:\n${options.process!.logTail()}`);
    }
    try {
      const remaining = Math.max(1, deadline - Date.now());
      const response = await httpRequest(url, { ca: options.ca, timeoutMs: Math.min(2000, remaining) });
      if (isReady(response)) return response;
      last = `status ${response.status}: ${response.body.slice(0, 300)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() >= deadline) {
      const log = options.process ? ` Log ${options.process.logPath}:\n${options.process.logTail()}` : '';
      throw new Error(`${what} was not ready at ${url} within ${options.timeoutMs} ms (last: ${last}).${log}`);
    }
    await delay(options.intervalMs ?? 100);
  }
}
