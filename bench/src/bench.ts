#!/usr/bin/env node
/**
 * `npm run bench`: the performance issue's targets, each Parley figure next to a ceiling
 * measured in the same run on the same box.
 *
 *   npm run bench                       the full run (bounded to about 20 minutes on 2 cores)
 *   npm run bench -- --quick            a smoke run at small sizes (a few minutes)
 *   npm run bench -- --only T2,T5       a subset of the targets (and only the ceilings they need)
 *   npm run bench -- --out-dir /tmp/b   write the report elsewhere than bench/results/
 *
 * First the ceilings (bare `ws`, Socket.IO with the Redis adapter, the storing transaction
 * on PostgreSQL, Redis PUBLISH, idle memory), at the sizes of the Parley scenarios; then
 * each Parley scenario through runScenario, each on a fresh topology of its own (a new
 * database from $DATABASE_URL, a private redis-server, nginx, message service, gateways)
 * so no run inherits another's state. Never two measurements at once: on two cores each
 * would be the other's noise.
 *
 * Writes bench-<date>.json (everything), bench-<date>.md and bench-latest.md; a --quick
 * run writes bench-quick-<date>.* and bench-quick-latest.md instead, so a smoke run never
 * replaces the report of a full one. Progress goes to stderr. Exit code 1 when a run
 * could not be carried out or a check found a lost or duplicated message; unmet targets
 * are reported (plainly) but do not fail the command.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { getFreePort, PrivateRedis } from '@parley/deploy';
import { measureCeilings, type CeilingName, type CeilingsOptions, type CeilingsReport } from './ceilings';
import { runScenario, type LoadResult, type RunOptions } from './load';
import {
  checkClean,
  checkText,
  evaluateTargets,
  formatMarkdown,
  keptUp,
  sustained,
  TARGET_IDS,
  type BenchReport,
  type RunRecord,
  type TargetId,
} from './report';

/** Sizes of one bench run. The full plan follows the issue's targets; quick only shows the code works. */
interface Plan {
  /** Soft limit: rate ladders take no further step once it has passed. */
  budgetMinutes: number;
  ceilings: Omit<CeilingsOptions, 'redisUrl' | 'databaseUrl' | 'only' | 'onProgress'>;
  /** Socket.IO's idle memory is measured at its own (smaller) count: its connects are slow. */
  socketIoMemoryConnections: number;
  /**
   * oneGatewayRepeats: the one-gateway idle run is repeated and T1a takes the median: its
   * RSS slope varies from run to run by up to 2 KiB per connection (how fragmented V8's old
   * space is left after the connect storm), while heap in use does not.
   */
  t1: { oneGatewayUsers: number; spreadUsers: number; oneGatewayRepeats: number };
  t2: { groupSize: number; rates: number[]; stepSeconds: number; finalSeconds: number };
  t3: { users: number; rates: number[]; stepSeconds: number };
  t4: { users: number; rate: number; seconds: number; pgStatsSettleMs: number };
  t5: { senders: number; rate: number; seconds: number };
  t6: { connectUsers: number; reconnectUsers: number; reconnectRate: number; reconnectSeconds: number };
}

const FULL: Plan = {
  budgetMinutes: 20,
  ceilings: {
    // Defaults otherwise: they are the sizes the issue's reference figures were taken at.
    pg: { conversations: 1000, hotSenders: 50 },
    ws: { members: 1000 },
    socketio: { members: 1000 },
    memory: { connections: 19_000, servers: ['ws'] },
    connect: { connections: 10_000, servers: 3 },
  },
  socketIoMemoryConnections: 10_000,
  t1: { oneGatewayUsers: 19_000, spreadUsers: 50_000, oneGatewayRepeats: 3 },
  t2: { groupSize: 1000, rates: [25, 50, 100, 200, 300, 400, 600, 800], stepSeconds: 5, finalSeconds: 10 },
  t3: { users: 10_000, rates: [1000, 2000, 4000, 6000, 8000], stepSeconds: 5 },
  // The one run whose PostgreSQL transactions per message are exact (statistics settled).
  t4: { users: 10_000, rate: 1000, seconds: 10, pgStatsSettleMs: 11_000 },
  t5: { senders: 50, rate: 3000, seconds: 10 },
  t6: { connectUsers: 10_000, reconnectUsers: 10_000, reconnectRate: 500, reconnectSeconds: 10 },
};

const QUICK: Plan = {
  budgetMinutes: 8,
  ceilings: {
    // The ceilings CLI's quick options, with the room and memory sizes of the quick scenarios.
    redis: { durationMs: 500, warmupMs: 200, inFlight: [1, 16], batches: [100] },
    pg: { durationMs: 1000, warmupMs: 300, conversations: 100, connections: 8 },
    ws: { members: 200, durationMs: 1000, warmupMs: 300 },
    socketio: { members: 200, stepMs: 1000, warmupMs: 300, startRate: 50, growth: 2, maxSteps: 2 },
    memory: { connections: 2000, settleMs: 300, servers: ['ws'] },
    connect: { connections: 1000, servers: 3 },
  },
  socketIoMemoryConnections: 1000,
  t1: { oneGatewayUsers: 2000, spreadUsers: 3000, oneGatewayRepeats: 1 },
  t2: { groupSize: 200, rates: [25, 50], stepSeconds: 2, finalSeconds: 2 },
  t3: { users: 1000, rates: [500, 1000], stepSeconds: 2 },
  t4: { users: 1000, rate: 500, seconds: 2, pgStatsSettleMs: 0 },
  t5: { senders: 50, rate: 1000, seconds: 2 },
  t6: { connectUsers: 1000, reconnectUsers: 1000, reconnectRate: 200, reconnectSeconds: 4 },
};

/** The ceilings each target is held against (Redis PUBLISH is context for every run: only in a full selection). */
const CEILINGS_OF: Record<TargetId, CeilingName[]> = { T1: ['memory'], T2: ['ws', 'socketio'], T3: ['pg'], T4: [], T5: ['pg'], T6: ['connect'] };

const USAGE = `usage: npm run bench -- [--quick] [--only T1,T2,...] [--out-dir DIR] [--skip-ceilings] [--budget-min N]
  --quick          small sizes, a few minutes: shows the bench works, measures no target
  --only LIST      targets to run (${TARGET_IDS.join(',')}); the ceilings they need come with them
  --out-dir DIR    where the report goes (default bench/results)
  --skip-ceilings  Parley runs only (ratios then show as not measured)
  --budget-min N   rate ladders take no further step after N minutes (default ${FULL.budgetMinutes}; quick ${QUICK.budgetMinutes})`;

interface Args {
  quick: boolean;
  only: TargetId[];
  outDir: string;
  skipCeilings: boolean;
  budgetMinutes: number | undefined;
}

function parse(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      'out-dir': { type: 'string' },
      'skip-ceilings': { type: 'boolean' },
      'budget-min': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(0);
  }
  const only = values.only ? values.only.split(',').map((name) => name.trim().toUpperCase()) : [...TARGET_IDS];
  for (const name of only) {
    if (!TARGET_IDS.includes(name as TargetId)) {
      process.stderr.write(`unknown target '${name}'\n${USAGE}\n`);
      process.exit(2);
    }
  }
  const budget = values['budget-min'] === undefined ? undefined : Number(values['budget-min']);
  if (budget !== undefined && !(budget > 0)) {
    process.stderr.write(`--budget-min must be a positive number\n`);
    process.exit(2);
  }
  return {
    quick: values.quick ?? false,
    only: TARGET_IDS.filter((id) => only.includes(id)),
    outDir: resolve(values['out-dir'] ?? join(__dirname, '..', 'results')),
    skipCeilings: values['skip-ceilings'] ?? false,
    budgetMinutes: budget,
  };
}

const started = performance.now();
const clock = () => {
  const seconds = Math.floor((performance.now() - started) / 1000);
  return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
};
const say = (line: string) => process.stderr.write(`[${clock()}] ${line}\n`);
const n = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined ? '-' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** One line per finished run: the figure its target is judged by, and the check. */
function figureLine(record: RunRecord): string {
  const r = record.result;
  if (!r) return `${record.id}: did not run: ${(record.error ?? '').split('\n')[0]}`;
  const check = `check ${checkText(r)} (lost ${r.check.lost}, duplicates ${r.check.duplicates})`;
  const took = `${n(record.durationMs / 1000, 0)} s`;
  switch (r.scenario) {
    case 'idle': {
      const kib = (bytes: number | null) => (bytes === null ? '-' : n(bytes / 1024, 2));
      const gc = r.figures.gatewayRssAfterGc ? ` after a full GC (${kib(r.figures.gatewayRssPerConnectionBeforeGcBytes)} before it)` : '';
      return `${record.id}: ${n(r.clients.connected)}/${n(r.clients.requested)} connected, gateway RSS ${kib(r.figures.gatewayRssPerConnectionBytes)} KiB per connection${gc}; ${check}; ${took}`;
    }
    case 'connect':
      return `${record.id}: ${n(r.clients.connected)}/${n(r.clients.requested)} connected, ${n(r.clients.connectsPerSecond)} connections/s; ${check}; ${took}`;
    case 'reconnect': {
      const x = r.reconnect;
      return `${record.id}: dropped ${n(x?.dropped)}, caught up ${n(x?.caughtUp)}, all caught up ${x?.allCaughtUpMs === null || !x ? 'never' : `${n(x.allCaughtUpMs / 1000, 2)} s`} after the kill; ${check}; ${took}`;
    }
    default:
      return (
        `${record.id}: ${keptUp(r) ? 'kept up' : 'did NOT keep up'}: offered ${n(r.offered.ratePerSecond)}/s, acked ${n(sustained(r, 'acks'))}/s, ` +
        `${n(sustained(r, 'deliveries'))} deliveries/s, send→ack p50 ${n(r.latency.sendToAckMs.p50, 2)} p99 ${n(r.latency.sendToAckMs.p99, 2)} ms, ` +
        `send→deliver p99 ${n(r.latency.sendToDeliverMs.p99, 2)} ms${r.check.seqGaps ? `, seq gaps ${r.check.seqGaps}` : ''}; ${check}; ${took}`
      );
  }
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  // Exit through process.exit so the exit hooks kill private redis-servers and ceiling children by PID.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const plan = args.quick ? QUICK : FULL;
  const budgetMs = (args.budgetMinutes ?? plan.budgetMinutes) * 60_000;
  const databaseUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const cpus = os.cpus();
  const report: BenchReport = {
    kind: 'parley-bench',
    date: new Date().toISOString(),
    quick: args.quick,
    argv: process.argv.slice(2),
    box: {
      cpuModel: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      kernel: os.release(),
      node: process.version,
      memoryMiB: Math.round(os.totalmem() / 1048576),
      loadAverageAtStart: os.loadavg().map((value) => Number(value.toFixed(2))),
    },
    targetsRun: args.only,
    ceilings: null,
    ceilingsError: null,
    runs: [],
    targets: [],
    notes: [],
    durationMs: 0,
  };
  say(
    `bench${args.quick ? ' --quick' : ''}: targets ${args.only.join(',')}; ${report.box.cores} × ${report.box.cpuModel}, load average ${report.box.loadAverageAtStart.join(' ')}`,
  );

  // Ceilings.
  const only = new Set<CeilingName>(args.only.flatMap((id) => CEILINGS_OF[id]));
  if (args.only.length === TARGET_IDS.length) only.add('redis');
  if (!args.skipCeilings && only.size > 0) {
    // A private redis-server, like every Parley run gets: the same binary and settings,
    // and nothing else on it.
    const redis = await PrivateRedis.start(await getFreePort('127.0.0.1'));
    try {
      const progress = (message: string) => say(`ceiling ${message}`);
      const common = { redisUrl: redis.url, databaseUrl, onProgress: progress };
      const ceilings: CeilingsReport = await measureCeilings({ ...plan.ceilings, ...common, only: [...only] });
      if (only.has('memory') && plan.socketIoMemoryConnections > 0) {
        const memory = plan.ceilings.memory ?? {};
        const io = await measureCeilings({
          ...common,
          only: ['memory'],
          memory: { ...memory, connections: plan.socketIoMemoryConnections, servers: ['socketio'] },
        });
        if (io.memory) ceilings.memory = { ceiling: 'idle-memory', runs: [...(ceilings.memory?.runs ?? []), ...io.memory.runs] };
        if (io.errors.memory) ceilings.errors.memory = [ceilings.errors.memory, `socketio: ${io.errors.memory}`].filter(Boolean).join('\n');
        ceilings.durationMs += io.durationMs;
      }
      report.ceilings = ceilings;
      const c = ceilings;
      const coalesced = c.ws?.runs.find((run) => run.mode === 'coalesced');
      say(
        `ceilings done in ${n(c.durationMs / 1000)} s:` +
          (c.redis ? ` Redis PUBLISH ${n(c.redis.best.unpipelined)}/s unpipelined, ${n(c.redis.best.pipelined)}/s pipelined;` : '') +
          (c.pg ? ` pg spread ${JSON.stringify(c.pg.table.spread)} hot ${JSON.stringify(c.pg.table.hot)} tx/s;` : '') +
          (coalesced ? ` ws coalesced ${n(coalesced.deliveriesPerSecond)} deliveries/s;` : '') +
          (c.socketio ? ` Socket.IO ${n(c.socketio.deliveriesPerSecond)} deliveries/s kept up;` : '') +
          (c.connect ? ` connect ${n(c.connect.connectsPerSecond)}/s to bare servers through nginx;` : '') +
          (c.memory ? ` idle ${c.memory.runs.map((run) => `${run.server} ${run.perConnectionKiB} KiB`).join(', ')} per connection;` : '') +
          (Object.keys(c.errors).length ? ` FAILED: ${Object.keys(c.errors).join(', ')}` : ''),
      );
    } catch (error) {
      report.ceilingsError = (error as Error).stack ?? String(error);
      say(`ceilings failed: ${(error as Error).message}`);
    } finally {
      await redis.stop();
    }
  }

  // Parley runs, one at a time, each on its own topology.
  const run = async (id: string, target: TargetId, label: string, options: RunOptions, gateways: number): Promise<LoadResult | null> => {
    say(`${id}: ${label}`);
    const begun = performance.now();
    const record: RunRecord = { id, target, label, startedAt: new Date().toISOString(), durationMs: 0, result: null, error: null };
    try {
      record.result = await runScenario({ ...options, target: { kind: 'start', gateways }, log: (line) => say(`  ${id}: ${line}`) });
    } catch (error) {
      record.error = (error as Error).stack ?? String(error);
    }
    record.durationMs = Math.round(performance.now() - begun);
    report.runs.push(record);
    say(figureLine(record));
    return record.result;
  };
  const overBudget = () => performance.now() - started > budgetMs;
  /** Steps the rate up until a step does not keep up (or fails, or the budget is spent). */
  const ladder = async (target: TargetId, rates: number[], step: (rate: number) => Promise<LoadResult | null>) => {
    for (const [index, rate] of rates.entries()) {
      if (index > 0 && overBudget()) {
        report.notes.push(`${target}: the ${args.budgetMinutes ?? plan.budgetMinutes}-minute budget was spent; rate steps ${rates.slice(index).join(', ')} not run`);
        say(`${target}: budget spent, no further rate steps`);
        return;
      }
      const result = await step(rate);
      if (!result || !keptUp(result)) return;
    }
  };
  const common = { pgStatsSettleMs: 0 } satisfies Partial<RunOptions>;
  const want = new Set(args.only);

  if (want.has('T1')) {
    const { oneGatewayUsers, spreadUsers, oneGatewayRepeats } = plan.t1;
    for (let repeat = 1; repeat <= oneGatewayRepeats; repeat += 1) {
      const id = repeat === 1 ? 'T1.idle.1gw' : `T1.idle.1gw.${repeat}`;
      await run(id, 'T1', `idle, ${n(oneGatewayUsers)} users on one gateway (run ${repeat} of ${oneGatewayRepeats})`, { ...common, scenario: 'idle', users: oneGatewayUsers }, 1);
    }
    await run('T1.idle.3gw', 'T1', `idle, ${n(spreadUsers)} users over 3 gateways`, { ...common, scenario: 'idle', users: spreadUsers }, 3);
  }

  if (want.has('T2')) {
    const { groupSize, rates, stepSeconds, finalSeconds } = plan.t2;
    await ladder('T2', rates, (rate) =>
      run(`T2.step.${rate}`, 'T2', `fanout, group of ${n(groupSize)} over 3 gateways, ${rate} msg/s into it`, {
        ...common,
        scenario: 'fanout',
        groupSize,
        ratePerSecond: rate,
        durationSeconds: stepSeconds,
      }, 3),
    );
    const best = report.runs
      .filter((record) => record.id.startsWith('T2.step.') && record.result && keptUp(record.result))
      .map((record) => Number(record.id.slice('T2.step.'.length)))
      .reduce((a, b) => Math.max(a, b), 0);
    if (best > 0) {
      const rate = Math.max(1, Math.round(best * 0.8));
      await run('T2.at-80pct', 'T2', `fanout, group of ${n(groupSize)} over 3 gateways, ${rate} msg/s (80% of the best kept-up ${best} msg/s)`, {
        ...common,
        scenario: 'fanout',
        groupSize,
        ratePerSecond: rate,
        durationSeconds: finalSeconds,
      }, 3);
    } else {
      report.notes.push('T2: no fan-out rate step kept up, so there is no 80% run');
      say('T2: no rate step kept up; no 80% run');
    }
  }

  if (want.has('T3')) {
    const { users, rates, stepSeconds } = plan.t3;
    await ladder('T3', rates, (rate) =>
      run(`T3.step.${rate}`, 'T3', `chat, ${n(users)} users over 3 gateways, ${n(rate)} msg/s`, {
        ...common,
        scenario: 'chat',
        users,
        ratePerSecond: rate,
        durationSeconds: stepSeconds,
      }, 3),
    );
  }

  if (want.has('T4')) {
    const { users, rate, seconds, pgStatsSettleMs } = plan.t4;
    await run('T4.chat', 'T4', `chat, ${n(users)} users over 3 gateways, ${n(rate)} msg/s${pgStatsSettleMs ? ' (PostgreSQL statistics settled: exact transactions per message)' : ''}`, {
      scenario: 'chat',
      users,
      ratePerSecond: rate,
      durationSeconds: seconds,
      pgStatsSettleMs,
    }, 3);
  }

  if (want.has('T5')) {
    const { senders, rate, seconds } = plan.t5;
    await run('T5.hot', 'T5', `hot, one group, ${senders} senders over 3 gateways, ${n(rate)} msg/s`, {
      ...common,
      scenario: 'hot',
      senders,
      ratePerSecond: rate,
      durationSeconds: seconds,
    }, 3);
  }

  if (want.has('T6')) {
    const { connectUsers, reconnectUsers, reconnectRate, reconnectSeconds } = plan.t6;
    await run('T6.connect', 'T6', `connect storm, ${n(connectUsers)} users through nginx, 3 gateways`, { ...common, scenario: 'connect', users: connectUsers }, 3);
    await run('T6.reconnect', 'T6', `reconnect, ${n(reconnectUsers)} clients through nginx over 3 gateways, one gateway SIGKILLed, chat at ${n(reconnectRate)} msg/s`, {
      ...common,
      scenario: 'reconnect',
      users: reconnectUsers,
      ratePerSecond: reconnectRate,
      durationSeconds: reconnectSeconds,
    }, 3);
  }

  // The report.
  report.targets = evaluateTargets(report);
  report.durationMs = Math.round(performance.now() - started);
  mkdirSync(args.outDir, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, '-');
  const base = args.quick ? 'bench-quick' : 'bench';
  const markdown = formatMarkdown(report);
  const jsonPath = join(args.outDir, `${base}-${stamp}.json`);
  const markdownPath = join(args.outDir, `${base}-${stamp}.md`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(markdownPath, markdown);
  writeFileSync(join(args.outDir, `${base}-latest.md`), markdown);

  say(`done in ${n(report.durationMs / 60_000, 1)} min; targets:`);
  for (const t of report.targets) {
    say(`  ${t.id} ${t.met === true ? 'met' : t.met === false ? 'NOT MET' : 'NOT MEASURED'}: ${t.parley} (${t.required}${t.ratio !== '—' ? `, ratio ${t.ratio}` : ''})${t.note ? ` — ${t.note}` : ''}`);
  }
  say(`report: ${markdownPath}, ${jsonPath}`);
  const failedRuns = report.runs.filter((record) => !record.result || !checkClean(record.result));
  if (failedRuns.length) say(`runs that failed or whose check is not clean: ${failedRuns.map((record) => record.id).join(', ')}`);
  return failedRuns.length || report.ceilingsError || Object.keys(report.ceilings?.errors ?? {}).length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
