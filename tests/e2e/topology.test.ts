import { randomBytes } from 'node:crypto';
import { httpRequest, startTopology, type GatewayHandle, type Topology } from '@parley/deploy';
import { CloseCodes, WS_AUTH_SUBPROTOCOL_PREFIX, WS_SUBPROTOCOL, type AuthResponse } from '@parley/protocol';
import WebSocket from 'ws';
import { testUrls } from '../support/message-harness';
import { isRunning } from './support/fleet';

// The full local topology as real processes: the message service, gateway replicas and
// nginx with TLS in front, on the test database and Redis. Every request goes through
// nginx unless it says otherwise.

jest.setTimeout(60000);

let topology: Topology;
let accessToken: string;
const sockets: WebSocket[] = [];

interface OpenSocket {
  socket: WebSocket;
  nodeId: string;
}

beforeAll(async () => {
  const { databaseUrl, redisUrl } = testUrls();
  topology = await startTopology({
    databaseUrl,
    redisUrl,
    gateways: 2,
    busPrefix: `parley-test:${randomBytes(6).toString('hex')}:`,
    logLevel: 'warn',
    drainWindowMs: 500,
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await topology?.stop({ removeWorkDir: true });
});

function https(pathname: string, init: { method?: string; body?: unknown } = {}) {
  return httpRequest(`${topology.httpsUrl}${pathname}`, {
    method: init.method,
    ca: topology.caCertPem,
    headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

/** Opens a socket through nginx and resolves with the node that says hello. */
function openSocket(): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(topology.wssUrl, [WS_SUBPROTOCOL, `${WS_AUTH_SUBPROTOCOL_PREFIX}${accessToken}`], {
      ca: topology.caCertPem,
      origin: topology.httpsUrl,
    });
    sockets.push(socket);
    socket.once('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; nodeId?: string };
      if (frame.type === 'hello' && frame.nodeId) resolve({ socket, nodeId: frame.nodeId });
      else reject(new Error(`expected hello, got ${String(data)}`));
    });
    socket.once('unexpected-response', (_request, response) =>
      reject(new Error(`upgrade refused with ${response.statusCode}`)),
    );
    socket.on('error', reject);
    socket.once('close', (code) => reject(new Error(`closed with ${code} before hello`)));
  });
}

describe('local topology: nginx, gateways, message service', () => {
  it('serves the message service readiness over TLS through nginx, with nginx request ids', async () => {
    const response = await https('/readyz');
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
    // The service adopts nginx's $request_id (32 hex) instead of minting a UUID of its own.
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(topology.httpsUrl.startsWith('https://')).toBe(true);
    expect(topology.wssUrl).toBe(`${topology.httpsUrl.replace('https', 'wss')}/ws`);
  });

  it('registers over https and holds authenticated sockets spread over both gateways', async () => {
    const username = `topo_${randomBytes(4).toString('hex')}`;
    const register = await https('/v1/auth/register', {
      method: 'POST',
      body: { username, password: 'correct horse battery staple' },
    });
    expect(register.status).toBe(201);
    accessToken = (JSON.parse(register.body) as AuthResponse).tokens.accessToken;

    const opened: OpenSocket[] = [];
    for (let index = 0; index < 4; index++) opened.push(await openSocket());
    const nodeIds = topology.gateways.map((gateway) => gateway.nodeId).sort();
    expect([...new Set(opened.map((socket) => socket.nodeId))].sort()).toEqual(nodeIds);
  });

  it('routes new sockets around a killed gateway', async () => {
    const [victim, survivor] = topology.gateways as [GatewayHandle, GatewayHandle];
    expect(victim.kill('SIGKILL')).toBe(true);
    expect((await victim.waitForExit()).signal).toBe('SIGKILL');
    for (let index = 0; index < 3; index++) expect((await openSocket()).nodeId).toBe(survivor.nodeId);
  });

  let onAdded: OpenSocket | undefined;

  it('adds a replica with a reload, and new sockets reach it', async () => {
    const added = await topology.addGateway();
    expect(topology.gateways.map((gateway) => gateway.nodeId)).toContain(added.nodeId);
    expect((await httpRequest(`${added.url}/readyz`)).status).toBe(200);
    // least_conn counts start again at a reload, so the new replica shares new sockets
    // with the survivor rather than taking all of them: one of three proves it is in rotation.
    const opened = [await openSocket(), await openSocket(), await openSocket()];
    onAdded = opened.find((socket) => socket.nodeId === added.nodeId);
    expect(onAdded).toBeDefined();
  });

  it('removes a replica: out of nginx first, then its sockets are drained with 1012', async () => {
    const [, survivor, added] = topology.gateways as [GatewayHandle, GatewayHandle, GatewayHandle];
    const closed = new Promise<number>((resolve) => onAdded!.socket.once('close', (code) => resolve(code)));

    const exit = await topology.removeGateway(added.nodeId);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await closed).toBe(CloseCodes.SERVER_DRAINING.code);
    for (let index = 0; index < 3; index++) expect((await openSocket()).nodeId).toBe(survivor.nodeId);
  });

  it('stop() ends every process it started', async () => {
    const pids = [topology.message.pid, topology.nginx.pid, ...topology.gateways.map((gateway) => gateway.pid)];
    expect(pids.filter(isRunning)).toEqual([topology.message.pid, topology.nginx.pid, topology.gateways[1]!.pid]);
    for (const socket of sockets) socket.terminate();
    await topology.stop();
    expect(pids.filter(isRunning)).toEqual([]);
  });
});
