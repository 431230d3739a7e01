#!/usr/bin/env node
/**
 * Runs the same-run ceilings and prints them: the JSON report on stdout, a summary on
 * stderr (so `> ceilings.json` keeps only the JSON).
 *
 *   npm run build && node bench/dist/ceilings/cli.js [--only redis,pg,ws,socketio,memory,connect] [--quick] [--out file.json]
 *
 * REDIS_URL: the Redis to measure and to carry the Socket.IO adapter; unset, a private
 * redis-server is started on a free port for the run. DATABASE_URL: a PostgreSQL role
 * that may CREATE DATABASE (default postgres://postgres@127.0.0.1:5432/postgres); a
 * scratch database is created and dropped. --quick: seconds-long, small runs that only
 * show the code works.
 */
import { writeFileSync } from 'node:fs';
import { getFreePort, PrivateRedis } from '@parley/deploy';
import { CEILING_NAMES, formatCeilings, measureCeilings, type CeilingName, type CeilingsOptions } from './index';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: cli.js [--only ${CEILING_NAMES.join('|')}[,…]] [--quick] [--out file.json]\n`);
  process.exit(2);
}

function parse(argv: string[]): { only?: CeilingName[]; quick: boolean; out?: string } {
  const parsed: { only?: CeilingName[]; quick: boolean; out?: string } = { quick: false };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    const value = () => argv[++index] ?? usage(`${argument} needs a value`);
    if (argument === '--only') {
      const names = value().split(',');
      for (const name of names) if (!CEILING_NAMES.includes(name as CeilingName)) usage(`unknown ceiling '${name}'`);
      parsed.only = names as CeilingName[];
    } else if (argument === '--quick') parsed.quick = true;
    else if (argument === '--out') parsed.out = value();
    else usage(`unknown argument '${argument}'`);
  }
  return parsed;
}

const QUICK: Omit<CeilingsOptions, 'redisUrl' | 'databaseUrl'> = {
  redis: { durationMs: 500, warmupMs: 200, inFlight: [1, 16], batches: [100] },
  pg: { durationMs: 1000, warmupMs: 300, conversations: 100, connections: 8 },
  ws: { members: 100, durationMs: 1000, warmupMs: 300 },
  socketio: { members: 100, stepMs: 1000, warmupMs: 300, startRate: 50, growth: 2, maxSteps: 2 },
  memory: { connections: 300, settleMs: 300 },
  connect: { connections: 300 },
};

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  // Exit through process.exit so the exit hooks kill the private Redis and every child by PID.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  let privateRedis: PrivateRedis | undefined;
  let redisUrl = process.env['REDIS_URL'];
  if (!redisUrl) {
    privateRedis = await PrivateRedis.start(await getFreePort());
    redisUrl = privateRedis.url;
  }
  try {
    const report = await measureCeilings({
      ...(args.quick ? QUICK : {}),
      redisUrl,
      databaseUrl: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      only: args.only,
      onProgress: (message) => process.stderr.write(`${message}\n`),
    });
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (args.out) writeFileSync(args.out, json);
    process.stdout.write(json);
    process.stderr.write(`\n${formatCeilings(report)}\n`);
    if (Object.keys(report.errors).length > 0) process.exitCode = 1;
  } finally {
    await privateRedis?.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
