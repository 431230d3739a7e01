import { measureConnect, type ConnectCeilingResult } from '../../bench/src/ceilings/connect';
import { testUrls } from '../support/message-harness';

// The connect ceiling at a few hundred connections, so it cannot rot between benchmark
// runs: real nginx with TLS in front of bare upgrade servers, driven by the load
// generator. It asserts that every client got through and that the figures were read,
// never a rate.

jest.setTimeout(90_000);

let result: ConnectCeilingResult;

beforeAll(async () => {
  result = await measureConnect({ adminUrl: testUrls().databaseUrl, connections: 200, servers: 2 });
});

describe('connect ceiling smoke run (200 connections, nginx, 2 bare servers)', () => {
  it('connects every client through nginx', () => {
    expect(result).toMatchObject({ ceiling: 'connect', servers: 2, connections: 200, connected: 200 });
    expect(result.connectsPerSecond).toBeGreaterThan(0);
  });

  it("reads nginx's, the servers' and the generator's CPU", () => {
    const cpu = result.cpuSecondsPer1000Connections;
    for (const role of ['nginx', 'servers', 'loadgen'] as const) expect(cpu[role]).toBeGreaterThan(0);
  });
});
