#!/usr/bin/env node
// `npm run stack -- --gateways 3`: checks what the local topology needs, creates and
// migrates the database, then runs the message service, N gateways and nginx with TLS
// until Ctrl-C, which stops every process it started.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createDb, migrateToLatest } from '@parley/db';
import { migrations } from '@parley/migrations';
import { describeExit } from './managed-process';
import { preflight } from './preflight';
import { REPO_ROOT, startTopology, type GatewayHandle } from './topology';

const DEFAULT_DATABASE_URL = 'postgres://127.0.0.1:5432/parley';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const USAGE = `Usage: npm run stack -- [options]

Runs the full local topology: the message service, N gateways and nginx (TLS) in front,
against a local PostgreSQL and Redis. Ctrl-C stops every process it started.

Environment:
  DATABASE_URL  default ${DEFAULT_DATABASE_URL} (created if missing, then migrated)
  REDIS_URL     default ${DEFAULT_REDIS_URL}

Options:
  --gateways N          gateway replicas (default 2)
  --port P              nginx TLS port on 127.0.0.1 (default 8443)
  --max-conns-per-ip N  open connections per client address before nginx answers 429 (default 200)
  --heartbeat-ms N      gateway ping interval (default 25000)
  --bus-prefix P        Redis channel and key prefix (default parley:)
  --log-level L         services' log level (default info)
  --nginx PATH          nginx binary (default: found on PATH or in the sbin directories)
  --keep-logs           keep the logs and certificate directory after stopping
  -h, --help            this text

While running: kill -USR2 <pid> adds a gateway replica; Ctrl-C stops everything.`;

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new Error(`--${name} must be a positive integer`);
  return parsed;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function migrate(databaseUrl: string): Promise<void> {
  const db = createDb({ connectionString: databaseUrl, maxConnections: 1, applicationName: 'parley-stack' });
  try {
    const { applied } = await migrateToLatest(db.kysely, migrations);
    print(applied.length ? `migrations applied: ${applied.join(', ')}` : 'database already up to date');
  } finally {
    await db.close();
  }
}

function describeGateway(gateway: GatewayHandle): string {
  return `  ${gateway.nodeId}  ${gateway.url}  pid ${gateway.pid}  log ${gateway.logPath}`;
}

function watch(gateway: GatewayHandle, isStopping: () => boolean): void {
  void gateway.waitForExit().then((status) => {
    if (!isStopping()) print(`gateway ${gateway.nodeId} ${describeExit(status)}; nginx routes around it`);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      gateways: { type: 'string' },
      port: { type: 'string' },
      'max-conns-per-ip': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'bus-prefix': { type: 'string' },
      'log-level': { type: 'string' },
      nginx: { type: 'string' },
      'keep-logs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    print(USAGE);
    return;
  }
  const databaseUrl = process.env['DATABASE_URL'] || DEFAULT_DATABASE_URL;
  const redisUrl = process.env['REDIS_URL'] || DEFAULT_REDIS_URL;
  const gateways = integer(values.gateways, 'gateways') ?? 2;
  const listenPort = integer(values.port, 'port') ?? 8443;

  const { nginx, createdDatabase } = await preflight({
    databaseUrl,
    redisUrl,
    nginxPath: values.nginx,
    builtFiles: ['services/message/dist/server.js', 'services/gateway/dist/server.js', 'packages/web/dist/index.html'].map(
      (file) => path.join(REPO_ROOT, file),
    ),
  });
  if (createdDatabase) print(`created database ${new URL(databaseUrl).pathname.slice(1)}`);
  await migrate(databaseUrl);
  // Signals are ours from here on: a Ctrl-C while the children start must still stop them.
  let stopping = false;
  const stopRequested = new Promise<number>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => resolve(0));
  });
  const topology = await startTopology({
    databaseUrl,
    redisUrl,
    gateways,
    listenPort,
    nginxPath: nginx,
    maxConnsPerIp: integer(values['max-conns-per-ip'], 'max-conns-per-ip'),
    heartbeatMs: integer(values['heartbeat-ms'], 'heartbeat-ms'),
    busPrefix: values['bus-prefix'],
    logLevel: values['log-level'],
    env: process.env,
    // Ctrl-C reaches only this process, which then stops the children in order.
    detached: true,
  });

  const isStopping = () => stopping;
  print(`\nParley is up: ${gateways} gateway(s) behind nginx (logs in ${topology.workDir})`);
  print(`  web     ${topology.httpsUrl}/   (self-signed certificate: accept it in the browser, or trust ${topology.workDir}/cert.pem)`);
  print(`  api     ${topology.httpsUrl}/v1`);
  print(`  wss     ${topology.wssUrl}`);
  print(`  message ${topology.messageUrl}  pid ${topology.message.pid}`);
  print(`  nginx   pid ${topology.nginx.pid}  config ${topology.nginx.configPath}`);
  print('gateways:');
  for (const gateway of topology.gateways) {
    print(describeGateway(gateway));
    watch(gateway, isStopping);
  }
  print(`\ncurl --cacert ${topology.workDir}/cert.pem ${topology.httpsUrl}/readyz`);
  print(`kill -USR2 ${process.pid} adds a gateway; Ctrl-C stops everything.`);

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    print('\nstopping: gateways drain, then nginx, then the message service');
    // After a failure the logs are what explains it: keep them.
    const keep = values['keep-logs'] === true || code !== 0;
    await topology.stop({ removeWorkDir: !keep });
    print(keep ? `stopped; logs kept in ${topology.workDir}` : 'stopped');
    process.exit(code);
  };
  for (const [name, service] of [
    ['message service', topology.message],
    ['nginx', topology.nginx],
  ] as const) {
    void service.waitForExit().then((status) => {
      if (stopping) return;
      process.stderr.write(`${name} ${describeExit(status)}; stopping the topology\n`);
      void shutdown(1);
    });
  }
  // SIGHUP counts too (above): a closed terminal must not leave the detached children running.
  void stopRequested.then((code) => shutdown(code));
  process.on('SIGUSR2', () => {
    if (stopping) return;
    topology.addGateway().then(
      (gateway) => {
        print(`added gateway (nginx reloaded):\n${describeGateway(gateway)}`);
        watch(gateway, isStopping);
      },
      (error: unknown) => process.stderr.write(`could not add a gateway: ${(error as Error).message}\n`),
    );
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`parley stack: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
