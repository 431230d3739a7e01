import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateSigningJwk } from '@parley/auth';
import { describeExit, startProcess, type ExitStatus, type ManagedProcess } from './managed-process';
import { configIdOf, renderNginxConfig } from './nginx-config';
import { findNginx, installNginxConfig, startNginx } from './nginx-process';
import { getFreePort } from './ports';
import { waitForReady } from './readiness';
import { createSelfSignedCert } from './tls';

/** The repository root, found from this file (deploy/src or deploy/dist). */
export const REPO_ROOT = path.resolve(__dirname, '../..');

const HOST = '127.0.0.1';

/** A private signing JWK, as `generateSigningJwk` makes and `AUTH_SIGNING_KEY` takes. */
export type SigningJwk = Awaited<ReturnType<typeof generateSigningJwk>>;

export interface TopologyOptions {
  /** An already migrated database; the topology creates nothing in it. */
  databaseUrl: string;
  redisUrl: string;
  /** Gateway replicas to start (default 2). */
  gateways?: number;
  /** Bus and Redis key prefix shared by all processes (default `parley:`); give tests their own. */
  busPrefix?: string;
  /** nginx's TLS port on 127.0.0.1 (default: a free one). */
  listenPort?: number;
  maxConnsPerIp?: number;
  /** Gateway ping interval; nginx's WebSocket timeouts follow it (default 25000). */
  heartbeatMs?: number;
  /** Gateway DRAIN_WINDOW_MS (default 2000, so a local stop is quick). */
  drainWindowMs?: number;
  /** LOG_LEVEL of the services (default `info`). */
  logLevel?: string;
  /** Deadline for each /readyz (default 30000 ms). */
  readyTimeoutMs?: number;
  /** Where logs, the certificate and nginx's prefix go (default: a new temp directory). */
  workDir?: string;
  /**
   * The Ed25519 signing key (a private JWK) the message service signs tokens with
   * (default: a fresh one). Benchmarks pass their own to mint tokens without logging in.
   */
  signingJwk?: SigningJwk;
  /** The web client's static files, served by nginx at `/` (default: packages/web/dist of this repository). */
  webRoot?: string;
  /** Where services/{message,gateway}/dist live (default: this repository). */
  repoRoot?: string;
  /** Base environment of the children (default: this process's); the topology's own variables win. */
  env?: NodeJS.ProcessEnv;
  /** Extra variables for the message service or the gateways (they win over the topology's). */
  messageEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  /** nginx binary (default: found on PATH or in the sbin directories). */
  nginxPath?: string;
  nginxWorkers?: number;
  /** nginx `worker_connections` (default 4096): each proxied socket takes two, its client's and the upstream's. */
  nginxWorkerConnections?: number;
  /**
   * How long nginx's old workers keep the sockets they hold after a reload (default 300 s).
   * When it runs out those clients reconnect through the current config, which spreads
   * them over the current fleet: a scale test shortens it to see the rebalance.
   */
  nginxWorkerShutdownTimeoutSeconds?: number;
  /** Start children in their own process groups (see StartProcessOptions.detached). */
  detached?: boolean;
}

export interface GatewayHandle {
  nodeId: string;
  port: number;
  pid: number;
  /** Direct URL of this replica (http://127.0.0.1:port), bypassing nginx. */
  url: string;
  logPath: string;
  /** Signals this replica by PID; false if it had already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  waitForExit(): Promise<ExitStatus>;
}

export interface ServiceHandle {
  pid: number;
  logPath: string;
  waitForExit(): Promise<ExitStatus>;
}

export interface Topology {
  /** Logs (`<name>.log` per process), the certificate and nginx's prefix (`nginx/`). */
  workDir: string;
  /** nginx's TLS front door, e.g. https://127.0.0.1:8443 */
  httpsUrl: string;
  /** The WebSocket endpoint through nginx, e.g. wss://127.0.0.1:8443/ws */
  wssUrl: string;
  /** The message service directly, bypassing nginx. */
  messageUrl: string;
  /** The self-signed certificate nginx serves; trust it as a CA. */
  caCertPem: string;
  message: ServiceHandle & { port: number };
  /** The replicas started so far (a snapshot), killed ones included. */
  readonly gateways: GatewayHandle[];
  nginx: ServiceHandle & {
    configPath: string;
    prefix: string;
    /** Re-renders the config for the current fleet, checks it, reloads, and waits until it serves. */
    reload(): Promise<void>;
  };
  /** Starts one more replica, waits for its /readyz, puts it behind nginx and reloads. */
  addGateway(): Promise<GatewayHandle>;
  /** Takes a replica out of nginx (reload), then drains it with SIGTERM. */
  removeGateway(nodeId: string): Promise<ExitStatus>;
  /** Stops what this topology started, by PID: gateways (drain), nginx, then the message service. */
  stop(options?: { removeWorkDir?: boolean }): Promise<void>;
}

interface Replica {
  handle: GatewayHandle;
  process: ManagedProcess;
  inRotation: boolean;
}

function requireBuilt(file: string): string {
  if (!existsSync(file)) throw new Error(`${file} not found: run \`npm run build\` first`);
  return file;
}

/**
 * Starts the full local topology as child processes: the message service, N gateways
 * on free ports, and nginx in front with a fresh self-signed certificate. Resolves once
 * every /readyz answers 200 (nginx's through TLS). If anything fails to start, whatever
 * was started is stopped again before the error is thrown.
 */
export async function startTopology(options: TopologyOptions): Promise<Topology> {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  const messageServer = requireBuilt(path.join(repoRoot, 'services/message/dist/server.js'));
  const gatewayServer = requireBuilt(path.join(repoRoot, 'services/gateway/dist/server.js'));
  const nginxBinary = options.nginxPath ?? findNginx();
  const readyTimeoutMs = options.readyTimeoutMs ?? 30000;
  const drainWindowMs = options.drainWindowMs ?? 2000;
  const heartbeatMs = options.heartbeatMs ?? 25000;
  const logLevel = options.logLevel ?? 'info';
  const busPrefix = options.busPrefix ?? 'parley:';
  const baseEnv = options.env ?? process.env;
  const detached = options.detached ?? false;
  const topologyId = randomBytes(2).toString('hex');

  const workDir = options.workDir ?? (await mkdtemp(path.join(os.tmpdir(), 'parley-topology-')));
  const prefix = path.join(workDir, 'nginx');
  await mkdir(prefix, { recursive: true });
  // Run as root, nginx's workers drop to `nobody` and must reach their temp dirs in here
  // (mkdtemp makes 0700). A caller's own workDir is left as they made it.
  if (!options.workDir) await chmod(workDir, 0o755);
  await chmod(prefix, 0o755);
  const configPath = path.join(prefix, 'parley.conf');

  const started: ManagedProcess[] = [];
  const fleet: Replica[] = [];
  const stopAll = async () => {
    const gateways = started.filter((child) => child.name.startsWith('gateway-'));
    await Promise.all(gateways.map((child) => child.stop('SIGTERM', drainWindowMs + 10000)));
    for (const name of ['nginx', 'message']) {
      await Promise.all(started.filter((child) => child.name === name).map((child) => child.stop('SIGTERM', 10000)));
    }
  };

  try {
    const messagePort = await getFreePort(HOST);
    const listenPort = options.listenPort ?? (await getFreePort(HOST));
    const httpsUrl = `https://${HOST}:${listenPort}`;
    const messageUrl = `http://${HOST}:${messagePort}`;
    const origins = [httpsUrl, `https://localhost:${listenPort}`].join(',');
    const signingKey = options.signingJwk ?? (await generateSigningJwk(`topology-${topologyId}`));

    const message = await startProcess({
      name: 'message',
      command: process.execPath,
      args: [messageServer],
      env: {
        ...baseEnv,
        DATABASE_URL: options.databaseUrl,
        REDIS_URL: options.redisUrl,
        AUTH_SIGNING_KEY: JSON.stringify(signingKey),
        HOST,
        PORT: String(messagePort),
        BUS_PREFIX: busPrefix,
        // nginx and the gateways call from loopback; believe their X-Forwarded-For only.
        TRUST_PROXY: '127.0.0.1,::1',
        CORS_ORIGINS: origins,
        LOG_LEVEL: logLevel,
        ...options.messageEnv,
      },
      logDir: workDir,
      detached,
    });
    started.push(message);
    await waitForReady(`${messageUrl}/readyz`, { timeoutMs: readyTimeoutMs, process: message });

    let nextIndex = 1;
    const startGateway = async (): Promise<Replica> => {
      const index = nextIndex++;
      const nodeId = `gw-${index}-${topologyId}`;
      const port = await getFreePort(HOST);
      const child = await startProcess({
        name: `gateway-${index}`,
        command: process.execPath,
        args: [gatewayServer],
        env: {
          ...baseEnv,
          HOST,
          PORT: String(port),
          NODE_ID: nodeId,
          REDIS_URL: options.redisUrl,
          BUS_PREFIX: busPrefix,
          MESSAGE_SERVICE_URL: messageUrl,
          ALLOWED_ORIGINS: origins,
          HEARTBEAT_INTERVAL_MS: String(heartbeatMs),
          DRAIN_WINDOW_MS: String(drainWindowMs),
          LOG_LEVEL: logLevel,
          ...options.gatewayEnv,
        },
        logDir: workDir,
        detached,
      });
      started.push(child);
      const url = `http://${HOST}:${port}`;
      try {
        await waitForReady(`${url}/readyz`, { timeoutMs: readyTimeoutMs, process: child });
      } catch (error) {
        await child.stop('SIGKILL', 5000);
        throw error;
      }
      const handle: GatewayHandle = {
        nodeId,
        port,
        pid: child.pid,
        url,
        logPath: child.logPath,
        kill: (signal) => child.kill(signal),
        waitForExit: () => child.waitForExit(),
      };
      return { handle, process: child, inRotation: true };
    };
    // allSettled: on a failure, every start still in flight has registered its child before cleanup.
    const starts = await Promise.allSettled(Array.from({ length: options.gateways ?? 2 }, () => startGateway()));
    for (const start of starts) {
      if (start.status === 'rejected') throw start.reason;
      fleet.push(start.value);
    }

    const tls = await createSelfSignedCert({ dir: workDir });
    const render = () =>
      renderNginxConfig({
        gateways: fleet.filter((replica) => replica.inRotation).map((replica) => `${HOST}:${replica.handle.port}`),
        messageServices: [`${HOST}:${messagePort}`],
        listen: `${HOST}:${listenPort}`,
        certPath: tls.certPath,
        keyPath: tls.keyPath,
        prefix,
        webRoot: options.webRoot ?? path.join(repoRoot, 'packages/web/dist'),
        maxConnsPerIp: options.maxConnsPerIp,
        heartbeatMs,
        workerProcesses: options.nginxWorkers ?? 2,
        ...(options.nginxWorkerConnections ? { workerConnections: options.nginxWorkerConnections } : {}),
        workerShutdownTimeoutSeconds: options.nginxWorkerShutdownTimeoutSeconds,
      });
    await installNginxConfig(nginxBinary, prefix, configPath, render());
    const nginx = await startNginx({ nginx: nginxBinary, prefix, configPath, logDir: workDir, env: baseEnv, detached });
    started.push(nginx);
    await waitForReady(`${httpsUrl}/readyz`, { timeoutMs: readyTimeoutMs, process: nginx, ca: tls.certPem });

    // Config changes run one at a time, so two reloads never race over the file.
    let configQueue: Promise<unknown> = Promise.resolve();
    const serially = <T>(task: () => Promise<T>): Promise<T> => {
      const result = configQueue.then(task);
      configQueue = result.catch(() => undefined);
      return result;
    };
    const reload = async () => {
      const text = render();
      await installNginxConfig(nginxBinary, prefix, configPath, text);
      if (!nginx.kill('SIGHUP')) throw new Error(`nginx is not running (${describeExit(nginx.exitStatus!)})`);
      const id = configIdOf(text);
      // New connections reach the new workers once they answer with the new id.
      await waitForReady(`${httpsUrl}/nginx/config-id`, {
        timeoutMs: readyTimeoutMs,
        process: nginx,
        ca: tls.certPem,
        isReady: (response) => response.status === 200 && response.body.trim() === id,
      });
    };

    let stopping: Promise<void> | undefined;
    return {
      workDir,
      httpsUrl,
      wssUrl: `wss://${HOST}:${listenPort}/ws`,
      messageUrl,
      caCertPem: tls.certPem,
      message: { pid: message.pid, port: messagePort, logPath: message.logPath, waitForExit: () => message.waitForExit() },
      get gateways() {
        return fleet.map((replica) => replica.handle);
      },
      nginx: {
        pid: nginx.pid,
        configPath,
        prefix,
        logPath: nginx.logPath,
        waitForExit: () => nginx.waitForExit(),
        reload: () => serially(reload),
      },
      addGateway: () =>
        serially(async () => {
          const replica = await startGateway();
          fleet.push(replica);
          await reload();
          return replica.handle;
        }),
      removeGateway: (nodeId) =>
        serially(async () => {
          const replica = fleet.find((candidate) => candidate.handle.nodeId === nodeId && candidate.inRotation);
          if (!replica) throw new Error(`no gateway ${nodeId} in rotation`);
          if (fleet.filter((candidate) => candidate.inRotation).length === 1) {
            throw new Error('cannot remove the last gateway in rotation');
          }
          replica.inRotation = false;
          try {
            await reload();
          } catch (error) {
            replica.inRotation = true;
            throw error;
          }
          return replica.process.stop('SIGTERM', drainWindowMs + 10000);
        }),
      async stop(stopOptions = {}) {
        stopping ??= stopAll();
        await stopping;
        if (stopOptions.removeWorkDir) await rm(workDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll();
    if (error instanceof Error) error.message += `\n(topology logs in ${workDir})`;
    throw error;
  }
}
