#!/usr/bin/env node
// `npm run topology -- --gateways 3`: migrates DATABASE_URL, then runs the full local
// topology (message service, N gateways, nginx with TLS) until Ctrl-C.
import { parseArgs } from 'node:util';
import { createDb, migrateToLatest } from '@parley/db';
import { migrations } from '@parley/migrations';
import { describeExit } from './managed-process';
import { startTopology, type GatewayHandle } from './topology';

const USAGE = `Usage: npm run topology -- [options]

Environment: DATABASE_URL (required; migrated first), REDIS_URL (default redis://127.0.0.1:6379)

Options:
  --gateways N          gateway replicas (default 2)
  --port P              nginx TLS port on 127.0.0.1 (default: a free port)
  --max-conns-per-ip N  open connections per client address before nginx answers 429 (default 200)
  --heartbeat-ms N      gateway ping interval (default 25000)
  --bus-prefix P        Redis channel and key prefix (default parley:)
  --log-level L         services' log level (default info)
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
  const db = createDb({ connectionString: databaseUrl, maxConnections: 1, applicationName: 'parley-topology' });
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    print(USAGE);
    return;
  }
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) throw new Error('DATABASE_URL is not set (e.g. postgres://user@127.0.0.1:5432/parley)');
  const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

  await migrate(databaseUrl);
  const topology = await startTopology({
    databaseUrl,
    redisUrl,
    gateways: integer(values.gateways, 'gateways') ?? 2,
    listenPort: integer(values.port, 'port'),
    maxConnsPerIp: integer(values['max-conns-per-ip'], 'max-conns-per-ip'),
    heartbeatMs: integer(values['heartbeat-ms'], 'heartbeat-ms'),
    busPrefix: values['bus-prefix'],
    logLevel: values['log-level'],
    env: process.env,
    // Ctrl-C reaches only this process, which then stops the children in order.
    detached: true,
  });

  let stopping = false;
  const isStopping = () => stopping;
  print(`\nParley topology is up (logs in ${topology.workDir})`);
  print(`  https   ${topology.httpsUrl}   (self-signed: ${topology.workDir}/cert.pem)`);
  print(`  wss     ${topology.wssUrl}`);
  print(`  message ${topology.messageUrl}  pid ${topology.message.pid}`);
  print(`  nginx   pid ${topology.nginx.pid}  config ${topology.nginx.configPath}`);
  print('gateways:');
  for (const gateway of topology.gateways) {
    print(describeGateway(gateway));
    watch(gateway, isStopping);
  }
  print(`\ncurl --cacert ${topology.workDir}/cert.pem ${topology.httpsUrl}/readyz`);
  print(`kill -USR2 ${process.pid} adds a gateway; Ctrl-C stops.`);

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    print('\nstopping: gateways drain, then nginx, then the message service');
    await topology.stop();
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
  // SIGHUP too: a closed terminal must not leave the (detached) children running.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(0));
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
  process.stderr.write(`parley topology: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
