import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { getFreePort } from './ports';

const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

const listenOn = (port: number) =>
  new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

describe('getFreePort', () => {
  it('hands out distinct ports below the ephemeral range that a server can then bind', async () => {
    const ports: number[] = [];
    for (let index = 0; index < 20; index += 1) ports.push(await getFreePort());

    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) expect(port).toBeLessThan(ephemeralStart);
    const servers = await Promise.all(ports.map(listenOn));
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });
});
