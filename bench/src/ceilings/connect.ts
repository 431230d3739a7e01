/**
 * Ceiling: new connections per second through the same nginx (same TLS certificate kind,
 * same config, same worker settings as every benchmark topology) to bare upgrade servers
 * that only say `hello`, driven by the load generator's own connect scenario. Parley's
 * connect figure is held against it: the difference is what a gateway adds to a
 * connection; the ceiling itself is what TLS, nginx and the generator cost on this box.
 */
import { generateSigningJwk } from '@parley/auth';
import {
  createSelfSignedCert,
  findNginx,
  getFreePort,
  installNginxConfig,
  renderNginxConfig,
  startNginx,
  waitForReady,
  type ManagedProcess,
} from '@parley/deploy';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compiledScript } from '../compiled-script';
import { runScenario } from '../load/run';
import { BENCH_NGINX, createMigratedDatabase } from '../load/target';
import { Child, stopAll } from './children';

const HOST = '127.0.0.1';

export interface ConnectCeilingOptions {
  /** A PostgreSQL role that may CREATE DATABASE: the generator seeds its users (and their tokens) there. */
  adminUrl: string;
  /** Connections to open. Default 10,000. */
  connections?: number;
  /** Bare servers behind nginx (as many as the Parley run's gateways). Default 3. */
  servers?: number;
  /** Generator processes (default: the load generator's own choice). */
  workers?: number;
}

export interface ConnectCeilingResult {
  ceiling: 'connect';
  servers: number;
  connections: number;
  connected: number;
  connectsPerSecond: number | null;
  /** Handshake start to `hello`, ms. */
  connectMs: { p50: number | null; p99: number | null };
  /** CPU seconds per 1,000 connections in the connect phase, by role. */
  cpuSecondsPer1000Connections: { nginx: number | null; servers: number | null; loadgen: number | null };
}

async function startServer(index: number): Promise<{ child: Child; port: number }> {
  const child = Child.start(`bare upgrade server ${index}`, compiledScript(__dirname, 'connect-server.js'), { env: { PORT: '0' } });
  try {
    const listening = await child.next<{ type: 'listening'; port: number }>('listening', 30_000);
    return { child, port: listening.port };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

export async function measureConnect(options: ConnectCeilingOptions): Promise<ConnectCeilingResult> {
  const connections = options.connections ?? 10_000;
  const serverCount = options.servers ?? 3;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-connect-ceiling-'));
  const prefix = path.join(workDir, 'nginx');
  const servers: Array<{ child: Child; port: number }> = [];
  let nginx: ManagedProcess | undefined;
  let database: { url: string; drop: () => Promise<void> } | undefined;
  try {
    // nginx's workers run as nobody and must reach their temp dirs in here.
    await mkdir(prefix, { recursive: true });
    await chmod(workDir, 0o755);
    await chmod(prefix, 0o755);
    database = await createMigratedDatabase(options.adminUrl, () => {});
    for (let index = 0; index < serverCount; index += 1) servers.push(await startServer(index));
    const tls = await createSelfSignedCert({ dir: workDir });
    const listenPort = await getFreePort(HOST);
    const upstreams = servers.map((server) => `${HOST}:${server.port}`);
    const configPath = path.join(prefix, 'parley.conf');
    const nginxBinary = findNginx();
    await installNginxConfig(
      nginxBinary,
      prefix,
      configPath,
      renderNginxConfig({
        gateways: upstreams,
        messageServices: [upstreams[0]!],
        listen: `${HOST}:${listenPort}`,
        certPath: tls.certPath,
        keyPath: tls.keyPath,
        prefix,
        maxConnsPerIp: BENCH_NGINX.maxConnsPerIp,
        workerProcesses: BENCH_NGINX.nginxWorkers,
        workerConnections: BENCH_NGINX.nginxWorkerConnections,
      }),
    );
    nginx = await startNginx({ nginx: nginxBinary, prefix, configPath, logDir: workDir, env: process.env });
    const httpsUrl = `https://${HOST}:${listenPort}`;
    await waitForReady(`${httpsUrl}/readyz`, { timeoutMs: 30_000, process: nginx, ca: tls.certPem });

    const result = await runScenario({
      scenario: 'connect',
      users: connections,
      via: 'nginx',
      workers: options.workers,
      pgStatsSettleMs: 0,
      target: {
        kind: 'attach',
        // Reported as "gateways" by the generator: here they are the bare servers.
        gateways: servers.map((server) => ({ url: `http://${HOST}:${server.port}`, pid: server.child.pid })),
        wssUrl: `wss://${HOST}:${listenPort}/ws`,
        caCertPem: tls.certPem,
        apiUrl: httpsUrl,
        nginxPid: nginx.pid,
        databaseUrl: database.url,
        signingJwk: await generateSigningJwk(`connect-ceiling-${randomBytes(3).toString('hex')}`),
      },
    });
    const per1000 = result.figures.cpuSecondsPer1000Connections;
    const connectedCount = result.clients.connected;
    const loadgen = result.figures.cpuSeconds.loadgen;
    return {
      ceiling: 'connect',
      servers: serverCount,
      connections,
      connected: connectedCount,
      connectsPerSecond: result.clients.connectsPerSecond,
      connectMs: { p50: result.clients.connectMs.p50, p99: result.clients.connectMs.p99 },
      cpuSecondsPer1000Connections: {
        nginx: per1000?.nginx ?? null,
        servers: per1000?.gateways ?? null,
        loadgen: loadgen === null || connectedCount === 0 ? null : Number(((loadgen / connectedCount) * 1000).toFixed(3)),
      },
    };
  } finally {
    await nginx?.stop('SIGQUIT', 5000).catch(() => undefined);
    await stopAll(servers.map((server) => server.child));
    await database?.drop().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }
}
