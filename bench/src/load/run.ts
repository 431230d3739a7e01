import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { nowUs, sleep, sleepUntil } from './clock';
import { Histogram } from './histogram';
import type { ClientSpec, WorkerPlan, WorkerResult } from './ipc';
import { WorkerHandle } from './pool';
import {
  childPids,
  cpuDelta,
  gatewayMetrics,
  pgBackendPids,
  pgXactCommit,
  readProc,
  redisCommandDelta,
  redisCommandStats,
  redisServerPid,
  type ProcSample,
} from './process-figures';
import type { LoadResult } from './result';
import { layoutOf, resolveOptions, type ConversationRef, type ScenarioOptions } from './scenarios';
import { seedDirects, seedGroup, seedUsers, storedSeqs } from './seed';
import { SeqSet } from './seq-set';
import { openTarget, type AttachTarget, type StartTarget } from './target';

export interface RunOptions extends ScenarioOptions {
  /** The system under test (default: start a fresh 2-gateway topology). */
  target?: StartTarget | AttachTarget;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** Sockets a worker may hold: the open-file limit less room for everything else a Node process opens. */
function socketsPerWorker(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\d+)/m.exec(limits);
    if (soft) return Math.max(100, Number(soft[1]) - 1000);
  } catch {
    // Not Linux: assume the limit of these machines.
  }
  return 19_000;
}

const sum = (values: Array<number | null>) => (values.some((value) => value === null) ? null : values.reduce<number>((a, b) => a + b!, 0));
const per = (value: number | null, by: number, scale = 1) => (value === null || by <= 0 ? null : (value / by) * scale);
const round = (value: number | null, digits = 6) => (value === null || !Number.isFinite(value) ? null : Number(value.toFixed(digits)));

interface Snapshot {
  atUs: number;
  gateways: ProcSample[];
  message: ProcSample[];
  nginx: ProcSample[];
  redis: ProcSample[];
  postgres: ProcSample[];
  loadgen: ProcSample[];
  redisCommands: Record<string, number> | null;
  metrics: Array<Record<string, number> | null>;
}

/**
 * Runs one scenario end to end: starts (or attaches to) the topology, seeds users and
 * conversations, forks the worker processes, connects, sends at the offered rate, drains,
 * checks that every acked message reached every online member exactly once, reads the
 * processes' own figures, and cleans up what it started. Resolves with a JSON-serialisable
 * LoadResult (see result.ts); rejects only when the run could not be carried out at all.
 */
export async function runScenario(options: RunOptions): Promise<LoadResult> {
  const log = options.log ?? (() => {});
  const resolved = resolveOptions(options);
  const layout = layoutOf(resolved);
  const startedAt = new Date();
  const warnings: string[] = [];
  const runId = randomBytes(3).toString('hex');
  const phases = { seedMs: 0, connectMs: 0, sendMs: 0, drainMs: 0 };

  const spec = options.target ?? { kind: 'start' };
  // Idle memory is read after a full GC in each gateway, as the ceilings read theirs.
  const target = await openTarget(spec.kind === 'start' && resolved.scenario === 'idle' ? { ...spec, collectGarbage: true } : spec, log);
  const attach = target.attach;
  const workers: WorkerHandle[] = [];
  const pool = new pg.Pool({ connectionString: attach.databaseUrl, max: 4 });
  const databaseName = new URL(attach.databaseUrl).pathname.slice(1);
  // Statistics are read from another database's session so the readings are not counted.
  const statsUrl = new URL(attach.databaseUrl);
  statsUrl.pathname = '/postgres';
  let stats = new pg.Client({ connectionString: statsUrl.toString() });
  let statsUp = false;
  const redis = attach.redisUrl ? new Redis(attach.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 }) : undefined;
  try {
    await stats.connect().then(
      () => (statsUp = true),
      () => undefined,
    );
    if (!statsUp) {
      // Without access to the postgres database, read from the run's own: each reading then
      // counts itself (one transaction in thousands).
      stats = new pg.Client({ connectionString: attach.databaseUrl });
      await stats.connect().then(
        () => (statsUp = true),
        () => warnings.push('could not open a statistics session: no PostgreSQL figures'),
      );
    }
    if (redis) await redis.connect();
    const gateways = attach.gateways;
    if (gateways.length === 0) throw new Error('no gateways to connect to');
    if (resolved.via === 'nginx' && !attach.wssUrl) throw new Error('via nginx needs the target to have a wssUrl');

    // Seed.
    const seedStarted = performance.now();
    const users = await seedUsers(pool, attach.signingJwk, layout.users, `load_${runId}`);
    const directIds = await seedDirects(
      pool,
      layout.pairs.map(([a, b]) => [users[a]!.id, users[b]!.id] as const),
    );
    const groupIds: string[] = [];
    for (const group of layout.groups) groupIds.push(await seedGroup(pool, group.members.map((member) => users[member]!.id), group.title));
    // Statistics for the bulk-loaded tables, as after any bulk load: until autovacuum gets
    // to them the planner sees empty tables, and the connect-time routing query alone
    // seq-scans every conversation (7.8 ms per connect at 9,500 conversations).
    await pool.query('ANALYZE');
    const conversationOf = (ref: ConversationRef) => (ref.kind === 'direct' ? directIds[ref.pair]! : groupIds[ref.group]!);
    phases.seedMs = Math.round(performance.now() - seedStarted);
    log(`seeded ${users.length} users, ${directIds.length} direct and ${groupIds.length} group conversations`);

    // Clients, spread round-robin over gateways, source addresses and workers.
    const wsUrls = gateways.map((gateway) => `${gateway.url.replace(/^http/, 'ws')}/ws`);
    const workerCount = Math.max(resolved.workers ?? 1, Math.ceil(layout.users / socketsPerWorker()));
    const specs: ClientSpec[][] = Array.from({ length: workerCount }, () => []);
    for (let index = 0; index < layout.users; index += 1) {
      const home = index % gateways.length;
      const direct = resolved.via === 'direct';
      const sendsTo = layout.sendsTo[index];
      specs[index % workerCount]!.push({
        index,
        userId: users[index]!.id,
        accessToken: users[index]!.accessToken,
        url: direct ? wsUrls[home]! : attach.wssUrl!,
        fallbackUrls: direct ? wsUrls.filter((_, other) => other !== home) : [],
        localAddress: `127.0.0.${1 + (index % resolved.sourceAddresses)}`,
        conversations: layout.memberOf[index]!.map(conversationOf),
        ...(sendsTo ? { sendsTo: conversationOf(sendsTo) } : {}),
      });
    }
    const plans: WorkerPlan[] = specs.map((clients, worker) => ({
      runId,
      worker,
      clients,
      ...(attach.caCertPem ? { caCertPem: attach.caCertPem } : {}),
      connectConcurrency: resolved.connectConcurrency,
      handshakeTimeoutMs: resolved.handshakeTimeoutMs,
      ackTimeoutMs: resolved.ackTimeoutMs,
      maxInFlightPerSocket: 32,
      bodyBytes: resolved.bodyBytes,
      reconnect: resolved.scenario === 'reconnect',
      apiUrl: attach.apiUrl,
    }));
    for (let index = 0; index < workerCount; index += 1) workers.push(WorkerHandle.start(index));
    await Promise.all(workers.map((worker, index) => worker.request({ type: 'init', plan: plans[index]! }, 'ok')));

    // Figures: which processes, and a snapshot of each.
    const nginxPids = attach.nginxPid ? [attach.nginxPid, ...childPids(attach.nginxPid)] : [];
    const redisPid = redis ? await redisServerPid(redis).catch(() => undefined) : undefined;
    const gatewayAlive = gateways.map(() => true);
    const snapshot = async (): Promise<Snapshot> => {
      const postgresPids = statsUp ? await pgBackendPids(stats, databaseName).catch(() => []) : [];
      return {
        atUs: nowUs(),
        gateways: gateways.map((gateway) => (gateway.pid ? readProc(gateway.pid) : { pid: 0, rssBytes: null, cpuSeconds: null })),
        message: attach.messagePid ? [readProc(attach.messagePid)] : [],
        nginx: nginxPids.map(readProc),
        redis: redisPid ? [readProc(redisPid)] : [],
        postgres: postgresPids.map(readProc),
        loadgen: workers.map((worker) => readProc(worker.pid)),
        redisCommands: redis ? await redisCommandStats(redis).catch(() => null) : null,
        metrics: await Promise.all(
          gateways.map((gateway, index) => (gatewayAlive[index] ? gatewayMetrics(gateway.url).catch(() => null) : Promise.resolve(null))),
        ),
      };
    };
    // Gateway RSS as read before the GC, when there is one, for the report beside the figure after it.
    const rssBeforeGc = new Map<Snapshot, Array<number | null>>();
    const settledSnapshot = async (): Promise<Snapshot> => {
      if (!target.collectGarbage) return snapshot();
      const before = gateways.map((gateway) => (gateway.pid ? readProc(gateway.pid).rssBytes : null));
      await target.collectGarbage();
      const taken = await snapshot();
      rssBeforeGc.set(taken, before);
      return taken;
    };
    const baseline = await settledSnapshot();

    // Connect. Except in the connect storm, a first tenth of the clients goes first: RSS per
    // connection is then the slope between the two stages, free of what a gateway grows by
    // on its first connections anyway (JIT, pools, buffers).
    log(`connecting ${layout.users} clients via ${resolved.via} from ${workerCount} worker(s)`);
    const connectStarted = performance.now();
    const twoStage = resolved.scenario !== 'connect' && layout.users >= 10 * gateways.length;
    const stages = twoStage
      ? [(worker: number) => Math.ceil(plans[worker]!.clients.length / 10), () => Infinity]
      : [() => Infinity];
    const connectLatency = new Histogram();
    const connectFailed: Record<string, number> = {};
    let connected = 0;
    let connectSpanUs = 0;
    let framesBeforeHello = 0;
    let firstStageSnapshot: Snapshot | undefined;
    for (const [stage, howMany] of stages.entries()) {
      const replies = await Promise.all(workers.map((worker, index) => worker.request({ type: 'connect', count: howMany(index) }, 'connected')));
      let firstAttemptUs = Infinity;
      let lastHelloUs = 0;
      for (const { report } of replies) {
        connectLatency.merge(report.latency);
        connected += report.connected;
        framesBeforeHello += report.framesBeforeHello;
        for (const [reason, n] of Object.entries(report.failed)) connectFailed[reason] = (connectFailed[reason] ?? 0) + n;
        if (report.attempted > 0) firstAttemptUs = Math.min(firstAttemptUs, report.firstAttemptUs);
        lastHelloUs = Math.max(lastHelloUs, report.lastHelloUs);
      }
      if (lastHelloUs > firstAttemptUs) connectSpanUs += lastHelloUs - firstAttemptUs;
      if (twoStage && stage === 0) {
        await sleep(Math.min(1000, resolved.idleSeconds * 1000));
        firstStageSnapshot = await settledSnapshot();
      }
    }
    phases.connectMs = Math.round(performance.now() - connectStarted);
    const connectsPerSecond = connected > 0 && connectSpanUs > 0 ? (connected / connectSpanUs) * 1e6 : null;
    log(`connected ${connected}/${layout.users} in ${phases.connectMs} ms`);
    if (connected < layout.users) warnings.push(`${layout.users - connected} client(s) failed to connect: ${JSON.stringify(connectFailed)}`);
    if (framesBeforeHello > 0) warnings.push(`${framesBeforeHello} server frame(s) arrived before hello (docs/protocol.md: hello is the first frame)`);

    // Settle, then the connected RSS. The PostgreSQL reading needs every backend idle for the
    // statistics flush interval first (the connects' routing queries), so that pause is longer.
    const connectedAt = performance.now();
    await sleep(resolved.idleSeconds * 1000);
    const connectedSnapshot = await settledSnapshot();
    const sends = resolved.ratePerSecond > 0 && layout.senders > 0;
    let sendSnapshot = connectedSnapshot;
    let endSnapshot = connectedSnapshot;
    let windowStartUs = connectedSnapshot.atUs;
    let xactBefore: number | null = null;
    let xactAfter: number | null = null;
    let killedAtUs: number | null = null;
    let killedNodeId: string | null = null;
    let scheduledTotal = 0;

    if (sends) {
      if (resolved.pgStatsSettleMs > 0) await sleep(resolved.pgStatsSettleMs - (performance.now() - connectedAt));
      else warnings.push('pgStatsSettleMs=0: PostgreSQL transactions per message are approximate (statistics flush up to 10 s late)');
      xactBefore = statsUp ? await pgXactCommit(stats, databaseName).catch(() => null) : null;
      const startUs = nowUs() + 300_000;
      const measureFromUs = startUs + resolved.warmupSeconds * 1e6;
      const endUs = measureFromUs + resolved.durationSeconds * 1e6;
      const senderCounts = plans.map((plan) => plan.clients.filter((client) => client.sendsTo !== undefined).length);
      const totalSenders = senderCounts.reduce((a, b) => a + b, 0);
      log(`sending ${resolved.ratePerSecond}/s for ${resolved.warmupSeconds}+${resolved.durationSeconds} s from ${totalSenders} sender(s)`);
      const sendStarted = performance.now();
      const ran = Promise.all(
        workers.map((worker, index) =>
          worker.request(
            { type: 'run', ratePerSecond: (resolved.ratePerSecond * senderCounts[index]!) / totalSenders, startUs, measureFromUs, endUs },
            'ran',
          ),
        ),
      );
      const windowStart = sleepUntil(measureFromUs).then(async () => {
        sendSnapshot = await snapshot();
        windowStartUs = measureFromUs;
      });
      let kill: Promise<void> = Promise.resolve();
      if (resolved.killAtSeconds !== null && resolved.killGateway !== null) {
        const index = resolved.killGateway;
        kill = sleepUntil(startUs + resolved.killAtSeconds * 1e6).then(() => {
          killedNodeId = gateways[index]?.nodeId ?? String(index);
          gatewayAlive[index] = false;
          killedAtUs = nowUs();
          target.killGateway(index);
          log(`killed gateway ${killedNodeId}`);
        });
      }
      scheduledTotal = (await ran).reduce((total, reply) => total + reply.scheduled, 0);
      await Promise.all([windowStart, kill]);
      phases.sendMs = Math.round(performance.now() - sendStarted);

      // Drain: until nothing is pending or recovering and no push has come for a while.
      const drainStarted = performance.now();
      for (;;) {
        const statuses = await Promise.all(workers.map((worker) => worker.request({ type: 'status' }, 'status')));
        const pending = statuses.reduce((total, { status }) => total + status.pendingAcks + status.recovering, 0);
        const lastDeliveryUs = Math.max(...statuses.map(({ status }) => status.lastDeliveryUs));
        if (pending === 0 && nowUs() - lastDeliveryUs >= resolved.drainQuietMs * 1000) break;
        if (performance.now() - drainStarted > resolved.drainTimeoutMs) {
          warnings.push(`the drain timed out after ${resolved.drainTimeoutMs} ms with ${pending} send(s) or recoveries pending`);
          break;
        }
        await sleep(100);
      }
      phases.drainMs = Math.round(performance.now() - drainStarted);
      endSnapshot = await snapshot();
      if (resolved.pgStatsSettleMs > 0) await sleep(resolved.pgStatsSettleMs);
      xactAfter = statsUp ? await pgXactCommit(stats, databaseName).catch(() => null) : null;
    } else {
      sendSnapshot = baseline;
      windowStartUs = baseline.atUs;
    }

    const collected: WorkerResult[] = (await Promise.all(workers.map((worker) => worker.request({ type: 'collect' }, 'collected')))).map(
      (reply) => reply.result,
    );
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));

    // Merge the workers' results.
    const ack = new Histogram();
    const deliver = new Histogram();
    const lag = new Histogram();
    const reconnectLatency = new Histogram();
    const caughtUpLatency = new Histogram();
    const sendTotals = { sent: 0, acked: 0, ackedInWindow: 0, timedOut: 0, closedBeforeReply: 0, duplicateAcks: 0 };
    const failed: Record<string, number> = {};
    const notSent: Record<string, number> = {};
    const closes: Record<string, number> = {};
    const deliveries = { total: 0, inWindow: 0, unexpected: 0, lastUs: 0 };
    const reconnect = { dropped: 0, reconnected: 0, caughtUp: 0, syncErrors: 0, lastCaughtUpUs: 0 };
    const failedReconnects: Record<string, number> = {};
    const acked = new Map<string, SeqSet>();
    const add = (into: Record<string, number>, from: Record<string, number>) => {
      for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
    };
    for (const result of collected) {
      ack.merge(result.ack);
      deliver.merge(result.deliver);
      lag.merge(result.lag);
      reconnectLatency.merge(result.reconnect.reconnectLatency);
      caughtUpLatency.merge(result.reconnect.caughtUpLatency);
      for (const key of Object.keys(sendTotals) as Array<keyof typeof sendTotals>) sendTotals[key] += result.sends[key];
      add(failed, result.sends.failed);
      add(notSent, result.sends.notSent);
      add(closes, result.closes);
      deliveries.total += result.deliveries.total;
      deliveries.inWindow += result.deliveries.inWindow;
      deliveries.unexpected += result.deliveries.unexpected;
      deliveries.lastUs = Math.max(deliveries.lastUs, result.deliveries.lastUs);
      for (const key of ['dropped', 'reconnected', 'caughtUp', 'syncErrors'] as const) reconnect[key] += result.reconnect[key];
      reconnect.lastCaughtUpUs = Math.max(reconnect.lastCaughtUpUs, result.reconnect.lastCaughtUpUs);
      add(failedReconnects, result.reconnect.failedAttempts);
      for (const [conversationId, seqs] of Object.entries(result.acked)) {
        let set = acked.get(conversationId);
        if (!set) acked.set(conversationId, (set = new SeqSet()));
        for (const seq of seqs) set.add(seq);
      }
    }

    // The check: every acked message of a conversation reached each of its online sockets once.
    let expected = 0;
    let lost = 0;
    let lostOnDropped = 0;
    let duplicates = 0;
    for (const result of collected) {
      for (const receipt of result.receipts) {
        const want = acked.get(receipt.conversationId);
        duplicates += receipt.duplicates;
        if (!want) continue;
        const have = SeqSet.fromData(receipt.live);
        if (receipt.synced.length) have.addAll(SeqSet.fromData(receipt.synced));
        const missing = want.countMissingFrom(have);
        expected += want.size;
        lost += missing;
        if (receipt.dropped) lostOnDropped += missing;
      }
    }
    const conversationIds = [...directIds, ...groupIds];
    const storage = sends ? await storedSeqs(pool, conversationIds).catch(() => null) : null;

    // Figures over the measured window.
    const windowEndUs = sends ? endSnapshot.atUs : connectedSnapshot.atUs;
    const windowSeconds = Math.max(0, (windowEndUs - windowStartUs) / 1e6);
    const from = sends ? sendSnapshot : baseline;
    const to = sends ? endSnapshot : connectedSnapshot;
    const cpuOf = (role: 'gateways' | 'message' | 'nginx' | 'redis' | 'postgres' | 'loadgen') =>
      to[role].length === 0 || to[role].every((sample) => sample.cpuSeconds === null) ? null : cpuDelta(from[role], to[role]);
    const cpu = {
      gateways: cpuOf('gateways'),
      message: cpuOf('message'),
      nginx: resolved.via === 'nginx' || nginxPids.length ? cpuOf('nginx') : null,
      redis: cpuOf('redis'),
      postgres: cpuOf('postgres'),
      loadgen: cpuOf('loadgen'),
    };
    const server = [cpu.gateways, cpu.message, cpu.nginx, cpu.redis, cpu.postgres].filter((value): value is number => value !== null);
    const serverCpu = server.length ? server.reduce((a, b) => a + b, 0) : null;
    const per1000 = (value: number | null) => round(per(value, deliveries.inWindow, 1000));
    const perConnect = (value: number | null) => round(per(value, connected, 1000));
    const redisCommands = from.redisCommands && to.redisCommands ? redisCommandDelta(from.redisCommands, to.redisCommands) : {};
    const redisTotal = from.redisCommands && to.redisCommands ? Object.values(redisCommands).reduce((a, b) => a + b, 0) : null;
    const metricDelta = (name: string) =>
      sum(
        gateways.map((_, index) => {
          const before = from.metrics[index];
          const after = to.metrics[index];
          if (!gatewayAlive[index]) return 0;
          return before && after ? (after[name] ?? 0) - (before[name] ?? 0) : null;
        }),
      );
    const rssOf = (sample: Snapshot | undefined, index: number) => sample?.gateways[index]?.rssBytes ?? null;
    const connectionsOf = (sample: Snapshot | undefined, index: number) => sample?.metrics[index]?.['parley_gateway_connections'] ?? null;
    const gatewayFigures = gateways.map((gateway, index) => {
      const connections = connectionsOf(connectedSnapshot, index);
      // The slope between the two connect stages when there were two, else growth from before connecting.
      const fromRss = firstStageSnapshot ? rssOf(firstStageSnapshot, index) : rssOf(baseline, index);
      const fromConnections = firstStageSnapshot ? connectionsOf(firstStageSnapshot, index) : 0;
      const toRss = rssOf(connectedSnapshot, index);
      const added = connections !== null && fromConnections !== null ? connections - fromConnections : null;
      const growth = fromRss !== null && toRss !== null ? toRss - fromRss : null;
      const fromRssBeforeGc = rssBeforeGc.get(firstStageSnapshot ?? baseline)?.[index] ?? null;
      const toRssBeforeGc = rssBeforeGc.get(connectedSnapshot)?.[index] ?? null;
      const growthBeforeGc = fromRssBeforeGc !== null && toRssBeforeGc !== null ? toRssBeforeGc - fromRssBeforeGc : null;
      const fromCpu = from.gateways[index]!.cpuSeconds;
      const toCpu = to.gateways[index]!.cpuSeconds;
      return {
        nodeId: gateway.nodeId ?? null,
        pid: gateway.pid ?? null,
        connections,
        rssBaselineBytes: rssOf(baseline, index),
        connectionsFirstStage: firstStageSnapshot ? fromConnections : null,
        rssFirstStageBytes: firstStageSnapshot ? fromRss : null,
        rssConnectedBytes: toRss,
        rssEndBytes: to.gateways[index]!.rssBytes,
        rssPerConnectionBytes: round(growth !== null && added ? growth / added : null, 1),
        rssPerConnectionBeforeGcBytes: round(growthBeforeGc !== null && added ? growthBeforeGc / added : null, 1),
        growth,
        growthBeforeGc,
        added,
        cpuSeconds: round(fromCpu !== null && toCpu !== null ? toCpu - fromCpu : null, 3),
      };
    });
    const rssGrowth = sum(gatewayFigures.map((g) => g.growth));
    const rssGrowthBeforeGc = target.collectGarbage ? sum(gatewayFigures.map((g) => g.growthBeforeGc)) : null;
    const connectionsAdded = sum(gatewayFigures.map((g) => g.added));
    const xactCommit = xactBefore !== null && xactAfter !== null ? xactAfter - xactBefore : null;

    const lagSummary = lag.summary();
    if (lagSummary.p99 !== null && lagSummary.p99 > 10) {
      warnings.push(`the generator ran behind its schedule (lag p99 ${lagSummary.p99} ms): it, not the server, may have been the limit`);
    }
    const notSentTotal = Object.values(notSent).reduce((a, b) => a + b, 0);
    if (notSentTotal > 0) warnings.push(`${notSentTotal} due send(s) were not made: ${JSON.stringify(notSent)}`);
    if (sendTotals.timedOut > 0) warnings.push(`${sendTotals.timedOut} send(s) got no reply within ${resolved.ackTimeoutMs} ms`);
    if (target.kind === 'attach' && !attach.redisUrl) warnings.push('no Redis URL: no Redis figures');

    const seqGaps = storage?.gaps ?? null;
    const ok =
      connected === layout.users &&
      lost === 0 &&
      duplicates === 0 &&
      deliveries.unexpected === 0 &&
      sendTotals.duplicateAcks === 0 &&
      (seqGaps ?? 0) === 0 &&
      (!sends || sendTotals.acked > 0);

    return {
      scenario: resolved.scenario,
      startedAt: startedAt.toISOString(),
      options: {
        scenario: resolved.scenario,
        users: resolved.users,
        ratePerSecond: resolved.ratePerSecond,
        durationSeconds: resolved.durationSeconds,
        warmupSeconds: resolved.warmupSeconds,
        senders: layout.senders,
        groupSize: resolved.groupSize,
        bodyBytes: resolved.bodyBytes,
        via: resolved.via,
        gateways: gateways.length,
        workers: workerCount,
        sourceAddresses: resolved.sourceAddresses,
        connectConcurrency: resolved.connectConcurrency,
        idleSeconds: resolved.idleSeconds,
        ackTimeoutMs: resolved.ackTimeoutMs,
        drainQuietMs: resolved.drainQuietMs,
        drainTimeoutMs: resolved.drainTimeoutMs,
        pgStatsSettleMs: resolved.pgStatsSettleMs,
        killAtSeconds: resolved.killAtSeconds,
        killGateway: resolved.killGateway,
        target: target.kind,
      },
      box: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
      },
      ok,
      warnings,
      phases,
      clients: {
        requested: layout.users,
        connected,
        failed: connectFailed,
        workers: workerCount,
        sourceAddresses: resolved.sourceAddresses,
        via: resolved.via,
        connectsPerSecond: round(connectsPerSecond, 1),
        connectMs: connectLatency.summary(),
      },
      offered: {
        ratePerSecond: resolved.ratePerSecond,
        durationSeconds: resolved.durationSeconds,
        warmupSeconds: resolved.warmupSeconds,
        senders: layout.senders,
        scheduled: scheduledTotal,
      },
      sends: {
        sent: sendTotals.sent,
        acked: sendTotals.acked,
        failed,
        timedOut: sendTotals.timedOut,
        closedBeforeReply: sendTotals.closedBeforeReply,
        notSent,
        ackedPerSecond: round(per(sendTotals.ackedInWindow, windowSeconds), 1),
      },
      latency: { sendToAckMs: ack.summary(), sendToDeliverMs: deliver.summary(), scheduleLagMs: lagSummary },
      deliveries: {
        total: deliveries.total,
        inWindow: deliveries.inWindow,
        windowSeconds: round(windowSeconds, 3) ?? 0,
        perSecond: round(per(deliveries.inWindow, windowSeconds), 1),
      },
      check: {
        expected,
        lost,
        lostOnDroppedSockets: lostOnDropped,
        duplicates,
        unexpected: deliveries.unexpected,
        duplicateAcks: sendTotals.duplicateAcks,
        stored: storage?.stored ?? null,
        seqGaps,
      },
      reconnect:
        resolved.scenario === 'reconnect'
          ? {
              killedNodeId,
              killedAtSeconds: resolved.killAtSeconds ?? 0,
              dropped: reconnect.dropped,
              reconnected: reconnect.reconnected,
              caughtUp: reconnect.caughtUp,
              syncErrors: reconnect.syncErrors,
              failedAttempts: failedReconnects,
              allCaughtUpMs:
                killedAtUs !== null && reconnect.caughtUp > 0 && reconnect.caughtUp === reconnect.dropped
                  ? round((reconnect.lastCaughtUpUs - killedAtUs) / 1000, 1)
                  : null,
              reconnectMs: reconnectLatency.summary(),
              caughtUpMs: caughtUpLatency.summary(),
            }
          : null,
      closes,
      figures: {
        gateways: gatewayFigures.map(({ growth: _growth, added: _added, ...figures }) => figures),
        gatewayRssPerConnectionBytes: round(rssGrowth !== null && connectionsAdded ? rssGrowth / connectionsAdded : null, 1),
        gatewayRssAfterGc: target.collectGarbage !== undefined,
        gatewayRssPerConnectionBeforeGcBytes: round(rssGrowthBeforeGc !== null && connectionsAdded ? rssGrowthBeforeGc / connectionsAdded : null, 1),
        cpuSeconds: {
          gateways: round(cpu.gateways, 3),
          message: round(cpu.message, 3),
          nginx: round(cpu.nginx, 3),
          redis: round(cpu.redis, 3),
          postgres: round(cpu.postgres, 3),
          server: round(serverCpu, 3),
          loadgen: round(cpu.loadgen, 3),
        },
        cpuSecondsPer1000Deliveries: {
          gateways: per1000(cpu.gateways),
          message: per1000(cpu.message),
          nginx: per1000(cpu.nginx),
          redis: per1000(cpu.redis),
          postgres: per1000(cpu.postgres),
          server: per1000(serverCpu),
        },
        cpuSecondsPer1000Connections: sends
          ? null
          : {
              gateways: perConnect(cpu.gateways),
              message: perConnect(cpu.message),
              nginx: perConnect(cpu.nginx),
              server: perConnect(serverCpu),
            },
        redis: {
          commands: redisCommands,
          total: redisTotal,
          perMessage: round(per(redisTotal, sendTotals.ackedInWindow), 3),
          perSecond: round(per(redisTotal, windowSeconds), 1),
        },
        postgres: {
          xactCommit,
          perMessage: round(per(xactCommit, sendTotals.acked), 3),
          settleMs: resolved.pgStatsSettleMs,
        },
        gatewayMetrics: {
          eventDeliveries: metricDelta('parley_gateway_event_deliveries_total'),
          eventDrops: metricDelta('parley_gateway_event_drops_total'),
          slowConsumerCloses: metricDelta('parley_gateway_slow_consumer_closes_total'),
          busResyncs: metricDelta('parley_gateway_bus_resyncs_total'),
        },
      },
    };
  } finally {
    await Promise.allSettled(workers.map((worker) => worker.stop()));
    redis?.disconnect();
    await stats.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await target.stop();
  }
}
