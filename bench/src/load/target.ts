import { randomBytes } from 'node:crypto';
import { generateSigningJwk } from '@parley/auth';
import { createDb, migrateToLatest } from '@parley/db';
import { getFreePort, PrivateRedis, startTopology, type SigningJwk, type Topology, type TopologyOptions } from '@parley/deploy';
import { migrations } from '@parley/migrations';
import pg from 'pg';
import { GatewayGc } from './gateway-gc';

/** Start a fresh topology for the run (the default), stopped again at its end. */
export interface StartTarget {
  kind: 'start';
  /** Gateway processes (default 2). */
  gateways?: number;
  /** An already migrated database to use as is (the test suite's). */
  databaseUrl?: string;
  /**
   * Without databaseUrl: a role that may CREATE DATABASE; a fresh database is created,
   * migrated and dropped at the end (default $DATABASE_URL, else the local postgres).
   */
  adminDatabaseUrl?: string;
  /** Without it a private redis-server is started, so INFO commandstats counts only this run. */
  redisUrl?: string;
  /** Extra gateway / message service environment (wins over the run's defaults). */
  gatewayEnv?: Record<string, string>;
  messageEnv?: Record<string, string>;
  /** Anything else for startTopology. */
  topology?: Partial<TopologyOptions>;
  /** Preload gc-hook.js into the gateways so that Target.collectGarbage can run a full GC in them. */
  collectGarbage?: boolean;
}

/** A topology someone else runs (another scenario's, `npm run stack` with a known key...). */
export interface AttachTarget {
  kind: 'attach';
  /** Each gateway's direct base URL (http://host:port) and, when on this box, its PID. */
  gateways: Array<{ url: string; pid?: number; nodeId?: string }>;
  /** nginx's WebSocket URL and CA, for via=nginx. */
  wssUrl?: string;
  caCertPem?: string;
  /** Base URL of the REST API (message service directly, or nginx) for the catch-up sync. */
  apiUrl: string;
  messagePid?: number;
  nginxPid?: number;
  /** The migrated database the message service uses: users and conversations are seeded into it. */
  databaseUrl: string;
  /** The Redis the fleet uses (for INFO commandstats). */
  redisUrl?: string;
  /** The key the message service signs with (AUTH_SIGNING_KEY), to mint access tokens. */
  signingJwk: SigningJwk;
}

/** An attach target for a topology this process started with startTopology. */
export function attachTo(topology: Topology, options: { databaseUrl: string; redisUrl: string; signingJwk: SigningJwk }): AttachTarget {
  return {
    kind: 'attach',
    gateways: topology.gateways.map((gateway) => ({ url: gateway.url, pid: gateway.pid, nodeId: gateway.nodeId })),
    wssUrl: topology.wssUrl,
    caCertPem: topology.caCertPem,
    apiUrl: topology.messageUrl,
    messagePid: topology.message.pid,
    nginxPid: topology.nginx.pid,
    ...options,
  };
}

/** What a run needs of the system under test, whoever started it. */
export interface Target {
  kind: 'start' | 'attach';
  attach: AttachTarget;
  /** SIGKILLs gateway `index` by PID (the reconnect scenario). */
  killGateway(index: number): void;
  /** A full GC in every gateway, when started with collectGarbage. */
  collectGarbage?: () => Promise<void>;
  stop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** nginx as every benchmark run gets it (the connect ceiling's nginx too). */
export const BENCH_NGINX = {
  // Many sockets share a few source addresses: nginx's per-address cap is for the public edge.
  maxConnsPerIp: 65_535,
  // A proxied socket costs nginx two connections (client and upstream), and a worker may
  // open at most the per-process file limit (about 20,000 here): 4 workers of 9,000
  // hold 18,000 sockets where the default 2 x 4,096 held about 4,000.
  nginxWorkers: 4,
  nginxWorkerConnections: 9_000,
} as const;

/**
 * A new database, migrated, for one run; `drop` removes it. `adminUrl` is a role that may
 * CREATE DATABASE (default $DATABASE_URL, else the local postgres).
 */
export async function createMigratedDatabase(
  adminUrl: string | undefined,
  log: (line: string) => void,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = adminUrl ?? process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `parley_load_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`;
  const creator = new pg.Client({ connectionString: admin });
  await creator.connect();
  await creator.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
  await creator.end();
  const drop = async () => {
    const dropper = new pg.Client({ connectionString: admin });
    await dropper.connect();
    await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await dropper.end();
  };
  const url = withDatabase(admin, name);
  try {
    const db = createDb({ connectionString: url, maxConnections: 1 });
    await migrateToLatest(db.kysely, migrations);
    await db.close();
  } catch (error) {
    await drop().catch(() => undefined);
    throw error;
  }
  log(`database ${name} created and migrated`);
  return { url, drop };
}

/** The topology for a run: started (fresh database, private Redis) or attached to. */
export async function openTarget(spec: StartTarget | AttachTarget, log: (line: string) => void): Promise<Target> {
  if (spec.kind === 'attach') {
    return {
      kind: 'attach',
      attach: spec,
      killGateway(index) {
        const pid = spec.gateways[index]?.pid;
        if (!pid) throw new Error(`gateway ${index} has no PID to kill`);
        process.kill(pid, 'SIGKILL');
      },
      stop: async () => {},
    };
  }

  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    let databaseUrl = spec.databaseUrl;
    if (!databaseUrl) {
      const fresh = await createMigratedDatabase(spec.adminDatabaseUrl, log);
      cleanups.push(fresh.drop);
      databaseUrl = fresh.url;
    }
    let redisUrl = spec.redisUrl;
    if (!redisUrl) {
      const redis = await PrivateRedis.start(await getFreePort('127.0.0.1'));
      cleanups.push(() => redis.stop());
      redisUrl = redis.url;
      log(`private redis-server at ${redisUrl}`);
    }
    const gatewayGc = spec.collectGarbage ? new GatewayGc() : undefined;
    if (gatewayGc) cleanups.push(async () => gatewayGc.remove());
    const signingJwk = await generateSigningJwk(`load-${randomBytes(3).toString('hex')}`);
    const unlimited = '1000000';
    const topology = await startTopology({
      databaseUrl,
      redisUrl,
      gateways: spec.gateways ?? 2,
      busPrefix: `parley-load-${randomBytes(4).toString('hex')}:`,
      signingJwk,
      // PARLEY_LOAD_LOG_LEVEL=info (with PARLEY_LOAD_KEEP_LOGS=1) keeps every request's log line.
      logLevel: process.env['PARLEY_LOAD_LOG_LEVEL'] ?? 'warn',
      drainWindowMs: 500,
      ...BENCH_NGINX,
      ...spec.topology,
      messageEnv: { LOGIN_RATE_LIMIT_MAX: unlimited, LOGIN_RATE_LIMIT_PER_IP_MAX: unlimited, REGISTER_RATE_LIMIT_MAX: unlimited, ...spec.messageEnv },
      // The per-socket frame limit protects against abusive clients; a hot-conversation
      // sender offers more than 20 frames/s on purpose. A gateway may hold up to the
      // per-process open-file limit.
      gatewayEnv: { RATE_LIMIT_FRAMES_PER_SECOND: '100000', MAX_CONNECTIONS: '19500', ...gatewayGc?.env, ...spec.gatewayEnv },
    });
    cleanups.push(() => topology.stop({ removeWorkDir: process.env['PARLEY_LOAD_KEEP_LOGS'] !== '1' }));
    log(`topology up: ${topology.gateways.length} gateway(s), nginx at ${topology.httpsUrl}, logs in ${topology.workDir}`);
    return {
      kind: 'start',
      attach: attachTo(topology, { databaseUrl, redisUrl, signingJwk }),
      killGateway(index) {
        const gateway = topology.gateways[index];
        if (!gateway) throw new Error(`no gateway ${index}`);
        gateway.kill('SIGKILL');
      },
      ...(gatewayGc ? { collectGarbage: () => gatewayGc.collect(topology.gateways.map((gateway) => gateway.pid)) } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
