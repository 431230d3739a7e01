import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import path from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { httpRequest } from './http-client';
import type { ManagedProcess } from './managed-process';
import { configIdOf, renderNginxConfig } from './nginx-config';
import { findNginx, installNginxConfig, startNginx } from './nginx-process';
import { getFreePort } from './ports';
import { waitForReady } from './readiness';
import { createSelfSignedCert, type SelfSignedCert } from './tls';

// The rendered config under a real nginx, with small Node servers standing in for the
// gateways and the message service so every proxied header and status can be seen.

const MAX_CONNS_PER_IP = 6;
const CLIENT_HEADER_TIMEOUT_S = 2;

interface FakeGateway {
  name: string;
  address: string;
  upgrades: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A WebSocket server that greets each socket with its name and the upgrade headers it saw. */
async function startFakeGateway(name: string): Promise<FakeGateway> {
  const server = http.createServer((_request, response) => response.writeHead(426).end());
  const wss = new WebSocketServer({ server });
  const upgrades: http.IncomingHttpHeaders[] = [];
  wss.on('connection', (socket, request) => {
    upgrades.push(request.headers);
    socket.send(JSON.stringify({ name, headers: request.headers }));
  });
  const address = await listen(server);
  return {
    name,
    address,
    upgrades,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.close();
      await once(server, 'close');
    },
  };
}

interface Echoed {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  socketPort: number;
}

let workDir: string;
let prefix: string;
let configPath: string;
let tls: SelfSignedCert;
let nginxBinary: string;
let nginx: ManagedProcess;
let baseUrl: string;
let wsUrl: string;
let listenAddress: string;
let gateways: FakeGateway[];
let deadGateway: string;
let messageServer: http.Server;
let messageAddress: string;
let webRoot: string;
const openSockets: WebSocket[] = [];

function render(gatewayAddresses: string[]): string {
  return renderNginxConfig({
    gateways: gatewayAddresses,
    messageServices: [messageAddress],
    listen: listenAddress,
    certPath: tls.certPath,
    keyPath: tls.keyPath,
    prefix,
    webRoot,
    maxConnsPerIp: MAX_CONNS_PER_IP,
    // One worker: upstream keep-alive reuse is then observable from one socket's port.
    workerProcesses: 1,
    workerConnections: 1024,
    clientHeaderTimeoutSeconds: CLIENT_HEADER_TIMEOUT_S,
  });
}

beforeAll(async () => {
  nginxBinary = findNginx();
  workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-nginx-proxy-'));
  prefix = path.join(workDir, 'nginx');
  await mkdir(prefix);
  // Run as root, nginx's workers are `nobody` and must reach their temp dirs (bodies over 16k).
  await chmod(workDir, 0o755);
  await chmod(prefix, 0o755);
  tls = await createSelfSignedCert({ dir: workDir });
  webRoot = path.join(workDir, 'web');
  await mkdir(webRoot);
  await chmod(webRoot, 0o755);
  await writeFile(path.join(webRoot, 'index.html'), '<!doctype html><title>app shell</title>');
  await writeFile(path.join(webRoot, 'app.js'), 'console.log("app");');

  messageServer = http.createServer((request, response) => {
    let bodyBytes = 0;
    request.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
    request.on('end', () => {
      const echoed: Echoed = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        bodyBytes,
        socketPort: request.socket.remotePort ?? 0,
      };
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echoed));
    });
  });
  messageAddress = await listen(messageServer);
  gateways = [await startFakeGateway('a'), await startFakeGateway('b')];
  deadGateway = `127.0.0.1:${await getFreePort()}`;
  const port = await getFreePort();
  listenAddress = `127.0.0.1:${port}`;
  baseUrl = `https://${listenAddress}`;
  wsUrl = `wss://${listenAddress}/ws`;

  configPath = path.join(prefix, 'parley.conf');
  // The dead replica first: the first sockets must be moved on from it.
  await installNginxConfig(nginxBinary, prefix, configPath, render([deadGateway, ...gateways.map((g) => g.address)]));
  nginx = await startNginx({ nginx: nginxBinary, prefix, configPath, logDir: workDir, env: {} });
  await waitForReady(`${baseUrl}/nginx/config-id`, { timeoutMs: 10000, ca: tls.certPem, process: nginx });
});

afterAll(async () => {
  for (const socket of openSockets) socket.terminate();
  await nginx?.stop('SIGTERM', 5000);
  await Promise.all((gateways ?? []).map((gateway) => gateway.close()));
  messageServer?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function get(pathname: string, options: { method?: string; body?: Buffer } = {}) {
  return httpRequest(`${baseUrl}${pathname}`, { ca: tls.certPem, ...options });
}

/** Opens a socket through nginx; resolves with the greeting, or the refusal's status and body. */
function connect(): Promise<{ socket: WebSocket; greeting: { name: string; headers: http.IncomingHttpHeaders } } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl, { ca: tls.certPem });
    socket.once('message', (data) => {
      openSockets.push(socket);
      resolve({ socket, greeting: JSON.parse(String(data)) });
    });
    socket.once('unexpected-response', (request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => {
        request.destroy();
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    // `on`, not `once`: a later error on an open socket must not go unhandled.
    socket.on('error', reject);
  });
}

async function connectOrFail() {
  const result = await connect();
  if (!('socket' in result)) throw new Error(`upgrade refused: ${result.status} ${result.body}`);
  return result;
}

describe('the rendered config under a real nginx', () => {
  it('terminates TLS and sends the REST routes to the message service with forwarding headers', async () => {
    const response = await get('/v1/conversations?limit=5');
    expect(response.status).toBe(200);
    const echoed = JSON.parse(response.body) as Echoed;
    expect(echoed.url).toBe('/v1/conversations?limit=5');
    expect(echoed.headers['x-real-ip']).toBe('127.0.0.1');
    expect(echoed.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echoed.headers['x-forwarded-proto']).toBe('https');
    expect(echoed.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);

    for (const route of ['/.well-known/jwks.json', '/openapi.json', '/readyz', '/healthz']) {
      expect(JSON.parse((await get(route)).body).url).toBe(route);
    }
  });

  it('overwrites a client-supplied X-Forwarded-For and X-Request-Id', async () => {
    const response = await httpRequest(`${baseUrl}/v1/x`, {
      ca: tls.certPem,
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'forged' },
    });
    const echoed = JSON.parse(response.body) as Echoed;
    expect(echoed.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echoed.headers['x-request-id']).not.toBe('forged');
  });

  it('keeps the connection to the message service alive between requests', async () => {
    const first = JSON.parse((await get('/v1/a')).body) as Echoed;
    const second = JSON.parse((await get('/v1/b')).body) as Echoed;
    expect(first.headers.connection).toBeUndefined();
    expect(second.socketPort).toBe(first.socketPort);
  });

  it('passes bodies up to 2 MiB and refuses larger ones with 413 in the API error shape', async () => {
    const allowed = await get('/v1/sync', { method: 'POST', body: Buffer.alloc(1_900_000, 'a') });
    expect(allowed.status).toBe(200);
    expect((JSON.parse(allowed.body) as Echoed).bodyBytes).toBe(1_900_000);

    const tooLarge = await get('/v1/sync', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024 + 1, 'a') });
    expect(tooLarge.status).toBe(413);
    expect(JSON.parse(tooLarge.body).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('serves the web client at / with its security headers, and index.html for app routes', async () => {
    const shell = await get('/');
    expect(shell.status).toBe(200);
    expect(shell.body).toContain('app shell');
    expect(shell.headers['content-type']).toMatch(/^text\/html/);
    expect(shell.headers['content-security-policy']).toContain("default-src 'self'");
    expect(shell.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(shell.headers['x-content-type-options']).toBe('nosniff');
    expect(shell.headers['cache-control']).toBe('no-cache');

    const script = await get('/app.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
    expect(script.body).toContain('console.log');

    const route = await get('/chats/some-conversation');
    expect(route.status).toBe(200);
    expect(route.body).toContain('app shell');
  });

  it('leaves API paths to the message service and serves its own status to loopback', async () => {
    const api = JSON.parse((await get('/v1/nope')).body) as Echoed;
    expect(api.url).toBe('/v1/nope');
    expect((await get('/nginx/status')).body).toMatch(/Active connections: \d+/);
  });

  it('upgrades /ws to a gateway, skipping the dead replica, with least_conn across the live ones', async () => {
    const opened = [];
    for (let index = 0; index < 4; index++) opened.push(await connectOrFail());
    const names = opened.map((result) => result.greeting.name);
    expect(names.filter((name) => name === 'a')).toHaveLength(2);
    expect(names.filter((name) => name === 'b')).toHaveLength(2);
    const headers = opened[0]!.greeting.headers;
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-real-ip']).toBe('127.0.0.1');
    expect(headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(headers.upgrade).toBe('websocket');
  });

  it('refuses sockets over the per-address limit with 429', async () => {
    // Four sockets are open from the previous test; fill up to the limit, then one more.
    while (openSockets.length < MAX_CONNS_PER_IP) await connectOrFail();
    const refused = await connect();
    expect('status' in refused && refused.status).toBe(429);
    expect('body' in refused && JSON.parse(refused.body).error.code).toBe('RATE_LIMITED');

    // Once nginx has seen one socket close there is room again.
    openSockets.pop()!.close();
    let reconnected;
    const deadline = Date.now() + 5000;
    do reconnected = await connect();
    while (!('socket' in reconnected) && Date.now() < deadline);
    expect('socket' in reconnected).toBe(true);
  });

  it('cuts a client that trickles its upgrade headers (slowloris) at client_header_timeout, however it keeps sending', async () => {
    const [host, port] = listenAddress.split(':') as [string, string];
    const socket = tlsConnect({ host, port: Number(port), rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const startedAt = Date.now();
    socket.write('GET /ws HTTP/1.1\r\nHost: localhost\r\n');
    // One more header line every 200 ms: each byte resets no timer.
    let line = 0;
    const trickle = setInterval(() => socket.write(`X-Slow-${line++}: 1\r\n`), 200);
    socket.on('error', () => undefined); // a write racing the close
    try {
      await once(socket, 'close');
    } finally {
      clearInterval(trickle);
    }
    const heldMs = Date.now() - startedAt;
    expect(line).toBeGreaterThan(3); // it really kept sending
    expect(heldMs).toBeGreaterThanOrEqual(CLIENT_HEADER_TIMEOUT_S * 1000 - 100);
    expect(heldMs).toBeLessThan(CLIENT_HEADER_TIMEOUT_S * 1000 + 2000);
  });

  it('takes a new replica after a re-render and a reload, and sends new sockets to it', async () => {
    for (const socket of openSockets.splice(0)) socket.terminate();
    const c = await startFakeGateway('c');
    gateways.push(c);
    const text = render([deadGateway, ...gateways.map((gateway) => gateway.address)]);
    await installNginxConfig(nginxBinary, prefix, configPath, text);
    expect(nginx.kill('SIGHUP')).toBe(true);
    await waitForReady(`${baseUrl}/nginx/config-id`, {
      timeoutMs: 10000,
      ca: tls.certPem,
      isReady: (response) => response.body.trim() === configIdOf(text),
    });
    // least_conn over three idle replicas: three held sockets land one on each.
    const opened = [await connectOrFail(), await connectOrFail(), await connectOrFail()];
    expect(opened.map((result) => result.greeting.name).sort()).toEqual(['a', 'b', 'c']);
    expect(c.upgrades).toHaveLength(1);
  });

  it('answers 503 UNAVAILABLE in the API error shape when no gateway is up', async () => {
    for (const socket of openSockets.splice(0)) socket.terminate();
    await Promise.all(gateways.map((gateway) => gateway.close()));
    gateways = [];
    const refused = await connect();
    expect('status' in refused && refused.status).toBe(503);
    expect('body' in refused && JSON.parse(refused.body).error.code).toBe('UNAVAILABLE');
  });
});
