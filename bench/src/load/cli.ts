#!/usr/bin/env node
/**
 * The load generator on the command line:
 *
 *   npm run build
 *   node bench/dist/load/cli.js --scenario chat --users 1000 --rate 500 --duration 10
 *
 * Starts a fresh topology (a new database from $DATABASE_URL, a private redis-server,
 * 2 gateways, nginx) unless --attach names a JSON file describing a running one (the
 * AttachTarget fields of target.ts; `signingJwkFile` may stand for `signingJwk`). Progress
 * and a human summary go to stderr, the LoadResult JSON to stdout (and to --out). Exits 1
 * when the check failed (a lost or duplicated message, a client that could not connect).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatSummary } from './result';
import { runScenario, type RunOptions } from './run';
import type { ScenarioName } from './result';
import type { AttachTarget, StartTarget } from './target';

const USAGE = `usage: node bench/dist/load/cli.js --scenario idle|chat|fanout|hot|connect|reconnect [options]
  --users N            sockets, one user each (default 100)
  --rate R             offered messages/s over all senders (default 100)
  --duration S         measured send window, seconds (default 10)
  --warmup S           sends before the window (default 1)
  --senders N          fanout (default 1) / hot (default 50)
  --group-size N       fanout members (default --users)
  --body-bytes N       message body length (default 64)
  --via direct|nginx   straight to the gateways or through nginx
  --gateways N         gateways to start (default 2)
  --workers N          generator processes (default: by the open-file limit)
  --addresses N        source addresses 127.0.0.1..N (default 8)
  --concurrency N      handshakes in flight per worker
  --idle-seconds S     settle after connecting before reading RSS
  --kill-at S          reconnect: when to SIGKILL a gateway (seconds into sending)
  --kill-gateway I     reconnect: which one (default 0)
  --pg-settle-ms MS    idle pause for exact pg_stat_database figures (default 11000; 0 skips)
  --drain-quiet-ms MS  --drain-timeout-ms MS  --ack-timeout-ms MS
  --database-url URL   a migrated database to use as is (default: a fresh one from $DATABASE_URL)
  --redis-url URL      a Redis to use (default: a private redis-server)
  --attach FILE        attach to a running topology described in FILE
  --out FILE           also write the JSON there
  --quiet              no progress lines`;

function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      users: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      senders: { type: 'string' },
      'group-size': { type: 'string' },
      'body-bytes': { type: 'string' },
      via: { type: 'string' },
      gateways: { type: 'string' },
      workers: { type: 'string' },
      addresses: { type: 'string' },
      concurrency: { type: 'string' },
      'idle-seconds': { type: 'string' },
      'kill-at': { type: 'string' },
      'kill-gateway': { type: 'string' },
      'pg-settle-ms': { type: 'string' },
      'drain-quiet-ms': { type: 'string' },
      'drain-timeout-ms': { type: 'string' },
      'ack-timeout-ms': { type: 'string' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      attach: { type: 'string' },
      out: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help || !values.scenario) {
    process.stderr.write(`${USAGE}\n`);
    return Promise.resolve(values.help ? 0 : 2);
  }
  const number = (name: keyof typeof values) => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${name} must be a number`);
    return value;
  };
  let target: StartTarget | AttachTarget;
  if (values.attach) {
    const spec = JSON.parse(readFileSync(values.attach, 'utf8')) as Omit<AttachTarget, 'kind'> & { signingJwkFile?: string };
    const signingJwk = spec.signingJwk ?? (spec.signingJwkFile ? JSON.parse(readFileSync(spec.signingJwkFile, 'utf8')) : undefined);
    if (!signingJwk) throw new Error(`${values.attach}: signingJwk or signingJwkFile is required to mint tokens`);
    target = { ...spec, kind: 'attach', signingJwk };
  } else {
    target = {
      kind: 'start',
      gateways: number('gateways') ?? 2,
      ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}),
      ...(values['redis-url'] ? { redisUrl: values['redis-url'] } : {}),
    };
  }
  const options: RunOptions = {
    scenario: values.scenario as ScenarioName,
    users: number('users'),
    ratePerSecond: number('rate'),
    durationSeconds: number('duration'),
    warmupSeconds: number('warmup'),
    senders: number('senders'),
    groupSize: number('group-size'),
    bodyBytes: number('body-bytes'),
    via: values.via as 'direct' | 'nginx' | undefined,
    workers: number('workers'),
    sourceAddresses: number('addresses'),
    connectConcurrency: number('concurrency'),
    idleSeconds: number('idle-seconds'),
    killAtSeconds: number('kill-at'),
    killGateway: number('kill-gateway'),
    pgStatsSettleMs: number('pg-settle-ms'),
    drainQuietMs: number('drain-quiet-ms'),
    drainTimeoutMs: number('drain-timeout-ms'),
    ackTimeoutMs: number('ack-timeout-ms'),
    target,
    ...(values.quiet ? {} : { log: (line: string) => process.stderr.write(`[load] ${line}\n`) }),
  };
  // Leave undefined options out, so the scenario's defaults apply.
  for (const key of Object.keys(options) as Array<keyof RunOptions>) if (options[key] === undefined) delete options[key];
  return runScenario(options).then((result) => {
    const json = `${JSON.stringify(result, null, 2)}\n`;
    if (values.out) writeFileSync(values.out, json);
    process.stdout.write(json);
    process.stderr.write(`${formatSummary(result)}\n`);
    return result.ok ? 0 : 1;
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
