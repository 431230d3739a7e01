import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { TARGET } from './edge-settings';

/**
 * Resolves a host name to its IPv4 and IPv6 addresses (an address resolves to itself).
 * Resolves `[]` when the name has no address; rejects when the answer is unknown (a
 * resolver timeout, a server failure), so the caller keeps what it had.
 */
export type Resolver = (host: string) => Promise<string[]>;

// getaddrinfo's "no such name" and "no address for it", as Node reports them: the name
// is known to have no replica (a Compose service scaled to zero, a Service with no ready pod).
const NO_ADDRESS = new Set(['ENOTFOUND', 'ENODATA']);

export const dnsResolver: Resolver = async (host) => {
  const literal = host.replace(/^\[|\]$/g, '');
  if (isIP(literal)) return [literal];
  try {
    // lookup (getaddrinfo) reads /etc/hosts and the container's resolver, as any process would.
    const found = await dns.lookup(host, { all: true });
    return found.map((entry) => entry.address);
  } catch (error) {
    if (NO_ADDRESS.has((error as NodeJS.ErrnoException).code ?? '')) return [];
    throw error;
  }
};

/**
 * Every `address:port` the targets resolve to, sorted and without duplicates, so the
 * same fleet always renders the same config. A name without addresses contributes
 * nothing; a lookup that fails rejects the whole discovery, so that a resolver hiccup
 * for one name never drops that name's replicas from the config.
 */
export async function discover(targetList: readonly string[], resolve: Resolver = dnsResolver): Promise<string[]> {
  const found = new Set<string>();
  for (const target of targetList) {
    const match = TARGET.exec(target);
    if (!match) throw new Error(`not a host:port target: ${JSON.stringify(target)}`);
    const [host, port] = [match[1]!, match[2]!];
    for (const address of await resolve(host)) found.add(isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`);
  }
  return [...found].sort();
}
