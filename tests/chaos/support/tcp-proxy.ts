import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  inbound: Socket;
  outbound: Socket;
  /** The first bytes the client sent (a Redis client's first command names it: CLIENT SETNAME). */
  label: string;
}

/** CRLFs in `*3 $6 CLIENT $7 setname $n <name>`: the whole first command has arrived. */
const FIRST_COMMAND_LINES = 7;

/**
 * A loopback TCP proxy the test controls, to cut some clients off from a server (Redis)
 * without touching the server or the others: `cut(match)` destroys every connection whose
 * label matches and refuses new ones that match (they connect, send their first command,
 * and are reset), until `heal()`.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private blocked: ((label: string) => boolean) | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    const proxy = new TcpProxy(server, address.port);
    server.on('connection', (inbound) => proxy.accept(inbound, targetHost, targetPort));
    return proxy;
  }

  /** Connections open now whose label matches. */
  count(match: (label: string) => boolean): number {
    return [...this.pairs].filter((pair) => match(pair.label)).length;
  }

  /** Cuts matching connections now and refuses matching ones until `heal()`; returns how many were cut. */
  cut(match: (label: string) => boolean): number {
    this.blocked = match;
    let cut = 0;
    for (const pair of [...this.pairs]) {
      if (match(pair.label)) {
        this.destroy(pair);
        cut += 1;
      }
    }
    return cut;
  }

  heal(): void {
    this.blocked = undefined;
  }

  async close(): Promise<void> {
    for (const pair of [...this.pairs]) this.destroy(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(inbound: Socket, host: string, port: number): void {
    const outbound = createConnection({ host, port });
    const pair: Pair = { inbound, outbound, label: '' };
    this.pairs.add(pair);
    let labelled = false;
    inbound.on('data', (chunk: Buffer) => {
      if (!labelled) {
        pair.label += chunk.toString('latin1');
        labelled = pair.label.split('\r\n').length - 1 >= FIRST_COMMAND_LINES || pair.label.length > 1024;
        if (labelled && this.blocked?.(pair.label)) {
          this.destroy(pair);
          return;
        }
      }
      outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => inbound.write(chunk));
    const end = () => this.destroy(pair);
    inbound.on('error', end);
    outbound.on('error', end);
    inbound.on('close', end);
    outbound.on('close', end);
  }

  private destroy(pair: Pair): void {
    this.pairs.delete(pair);
    pair.inbound.destroy();
    pair.outbound.destroy();
  }
}
