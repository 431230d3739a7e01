import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const HOOK = join(__dirname, 'gc-hook.js');

/**
 * Full GCs in gateways started with gc-hook.js preloaded: `env` goes into their
 * environment, `collect(pids)` collects in each and resolves once all have.
 */
export class GatewayGc {
  private readonly directory = mkdtempSync(join(tmpdir(), 'parley-gc-'));
  private readonly counts = new Map<number, number>();

  get env(): Record<string, string> {
    const inherited = process.env['NODE_OPTIONS'];
    return { NODE_OPTIONS: `${inherited ? `${inherited} ` : ''}--require ${HOOK}`, PARLEY_BENCH_GC_DIR: this.directory };
  }

  async collect(pids: number[], timeoutMs = 10_000): Promise<void> {
    await Promise.all(pids.map((pid) => this.collectOne(pid, timeoutMs)));
    // Let freed pages go back and the numbers in /proc settle (as the ceilings do).
    await sleep(200);
  }

  remove(): void {
    rmSync(this.directory, { recursive: true, force: true });
  }

  private async collectOne(pid: number, timeoutMs: number): Promise<void> {
    const want = (this.counts.get(pid) ?? 0) + 1;
    process.kill(pid, 'SIGUSR2');
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.readCount(pid) >= want) {
        this.counts.set(pid, want);
        return;
      }
      await sleep(20);
    }
    throw new Error(`gateway ${pid} did not report a GC within ${timeoutMs} ms (started without gc-hook.js?)`);
  }

  private readCount(pid: number): number {
    try {
      return (JSON.parse(readFileSync(join(this.directory, `${pid}.json`), 'utf8')) as { count: number }).count;
    } catch {
      return 0; // Not written yet, or caught mid-write.
    }
  }
}
