import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Below the kernel's ephemeral range; the bottom keeps clear of well-known services. */
const LOWEST_CHOSEN_PORT = 10_000;
const ATTEMPTS = 50;

/** Ports this process has handed out, so two callers never get the same one. */
const handedOut = new Set<number>();

/**
 * A free TCP port for a server the caller is about to start.
 *
 * It is chosen below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port
 * from inside it can be taken between this check and the caller's bind as the source port
 * of any outgoing connection (a service connecting to PostgreSQL, a load generator), which
 * under load is likely and made nginx fail with "Address already in use". Outside it, only
 * another explicit listener can take it. Falls back to a kernel-chosen port when the range
 * leaves no room below it.
 */
export async function getFreePort(host = '127.0.0.1'): Promise<number> {
  const highest = ephemeralRangeStart() - 1;
  if (highest - LOWEST_CHOSEN_PORT >= ATTEMPTS) {
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      const port = LOWEST_CHOSEN_PORT + Math.floor(Math.random() * (highest - LOWEST_CHOSEN_PORT + 1));
      if (handedOut.has(port)) continue;
      if ((await tryListen(host, port)) !== undefined) return handOut(port);
    }
  }
  const port = await tryListen(host, 0);
  if (port === undefined) throw new Error(`no free TCP port on ${host}`);
  return handOut(port);
}

function handOut(port: number): number {
  handedOut.add(port);
  return port;
}

/** The first port of the ephemeral range; Linux's default when it cannot be read. */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const parsed = Number(low);
    return Number.isInteger(parsed) && parsed > 0 ? parsed : 32_768;
  } catch {
    return 32_768;
  }
}

/** Binds and releases `port` (0: any); the bound port, or undefined when it is taken. */
function tryListen(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(undefined);
      else reject(error);
    });
    server.listen(port, host, () => {
      const address = server.address();
      server.close(() => resolve(address && typeof address === 'object' ? address.port : undefined));
    });
  });
}
