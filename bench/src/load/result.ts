import type { Percentiles } from './histogram';

export type ScenarioName = 'idle' | 'chat' | 'fanout' | 'hot' | 'connect' | 'reconnect';

/**
 * What one scenario run measured. Plain data (numbers, strings, null, arrays, records), so
 * `JSON.stringify` writes all of it and a report can be rebuilt from the JSON alone.
 * Latencies are milliseconds; figures that could not be read (a process on another box, a
 * gateway killed mid-run, a scenario that sends nothing) are null, never NaN.
 *
 * Windows: latencies, deliveries/s, CPU and Redis figures cover the *measured window*,
 * from the end of the warm-up to the end of the drain (the last delivery has arrived);
 * the PostgreSQL figure covers the whole send phase (see `figures.postgres`).
 */
export interface LoadResult {
  scenario: ScenarioName;
  /** ISO time the run started. */
  startedAt: string;
  /** The options as resolved (defaults filled in; no secrets). */
  options: ResolvedOptionsSummary;
  box: { cpus: number; cpuModel: string; loadAverage: number[]; node: string; platform: string };
  /** True when every must-be-zero counter of `check` is zero and nothing failed to connect. */
  ok: boolean;
  /** Things a reader of the figures must know (a generator that fell behind, stats that may lag...). */
  warnings: string[];
  phases: { seedMs: number; connectMs: number; sendMs: number; drainMs: number };

  clients: {
    requested: number;
    connected: number;
    /** Connect failures by reason (`http-503`, `timeout`, `ECONNRESET`...). */
    failed: Record<string, number>;
    workers: number;
    sourceAddresses: number;
    /** `direct`: straight to the gateways, spread round-robin; `nginx`: through the TLS front door. */
    via: 'direct' | 'nginx';
    /** Connections that said hello, over the time from the first attempt to the last hello. */
    connectsPerSecond: number | null;
    /** Handshake start (TCP connect) to the `hello` frame. */
    connectMs: Percentiles;
  };

  /** The offered load. */
  offered: {
    ratePerSecond: number;
    durationSeconds: number;
    warmupSeconds: number;
    senders: number;
    /** Sends due by the schedule over warm-up plus duration. */
    scheduled: number;
  };

  sends: {
    sent: number;
    acked: number;
    /** Error replies by code. */
    failed: Record<string, number>;
    /** No reply within the ack timeout: outcome unknown. */
    timedOut: number;
    /** The socket closed before the reply: outcome unknown. */
    closedBeforeReply: number;
    /** Due by the schedule but not sent: `disconnected` (socket down), `backpressure` (too many in flight). */
    notSent: Record<string, number>;
    /** Acks in the measured window per second of it. */
    ackedPerSecond: number | null;
  };

  latency: {
    /** Write of the `send` frame to its `ack` (stored and committed), senders' own clock. */
    sendToAckMs: Percentiles;
    /** Write of the `send` frame to the `message` push at another member's socket (CLOCK_MONOTONIC, shared by the processes). */
    sendToDeliverMs: Percentiles;
    /** How late the generator made each send against its schedule: large values mean the generator, not Parley, was the limit. */
    scheduleLagMs: Percentiles;
  };

  deliveries: {
    /** `message` pushes received by all sockets (the sender's own copy included). */
    total: number;
    /** Pushes received in the measured window. */
    inWindow: number;
    windowSeconds: number;
    perSecond: number | null;
  };

  /** The "zero lost" check: every acked message pushed to every online member exactly once. */
  check: {
    /** (member socket, acked message) pairs expected: each acked message times the sockets of its conversation that were online. */
    expected: number;
    /** Of those, how many never reached the socket (live push, or sync after a reconnect). */
    lost: number;
    /** Lost pairs on sockets that dropped during the run (part of `lost`). */
    lostOnDroppedSockets: number;
    /** Pushes of a seq a socket had already been pushed. */
    duplicates: number;
    /** Pushes for a conversation the socket is not a member of. */
    unexpected: number;
    /** Acks that said `duplicate: true` (the generator never repeats an id). */
    duplicateAcks: number;
    /** Messages stored in the run's conversations (acked ones plus unknown-outcome ones). */
    stored: number | null;
    /** Seqs missing below a conversation's highest stored seq (must be 0: seqs are gapless). */
    seqGaps: number | null;
  };

  /** Present for the `reconnect` scenario. */
  reconnect: {
    killedNodeId: string | null;
    /** Seconds after the start of sending. */
    killedAtSeconds: number;
    dropped: number;
    reconnected: number;
    caughtUp: number;
    syncErrors: number;
    /** Reconnect attempts that failed, by reason; each doubled that client's backoff. */
    failedAttempts: Record<string, number>;
    /** From the kill to the last dropped client having reconnected and synced. */
    allCaughtUpMs: number | null;
    /** Drop (as the client saw it) to hello on the new socket. */
    reconnectMs: Percentiles;
    /** Drop to the end of the catch-up sync. */
    caughtUpMs: Percentiles;
  } | null;

  /** Closes the generator did not ask for, by close code. */
  closes: Record<string, number>;

  figures: {
    gateways: Array<{
      nodeId: string | null;
      pid: number | null;
      /** parley_gateway_connections after the connect phase. */
      connections: number | null;
      /** RSS before any client connected. */
      rssBaselineBytes: number | null;
      /** After the first tenth of the clients (null when connected in one stage: the connect storm, tiny runs). */
      connectionsFirstStage: number | null;
      rssFirstStageBytes: number | null;
      /** RSS after the connect phase and the idle settle. */
      rssConnectedBytes: number | null;
      rssEndBytes: number | null;
      /**
       * RSS growth per connection between the first stage and the end of the connect phase
       * (the slope, which leaves out the gateway's own warm-up); from the baseline in one stage.
       */
      rssPerConnectionBytes: number | null;
      /** The same slope from the RSS read just before each full GC (null without gatewayRssAfterGc). */
      rssPerConnectionBeforeGcBytes: number | null;
      cpuSeconds: number | null;
    }>;
    /** Over all gateways: sum of RSS growth / sum of connections added (same stages as above). */
    gatewayRssPerConnectionBytes: number | null;
    /**
     * Whether the RSS readings above were taken after a full GC in each gateway (the idle
     * scenario on a topology the run started: gc-hook.js), as the memory ceilings' are.
     */
    gatewayRssAfterGc: boolean;
    gatewayRssPerConnectionBeforeGcBytes: number | null;
    /** CPU seconds (utime + stime) in the measured window, by role; null when unreadable. */
    cpuSeconds: {
      gateways: number | null;
      message: number | null;
      nginx: number | null;
      redis: number | null;
      /** Backends of the run's database (those alive at the window's edges). */
      postgres: number | null;
      /** gateways + message + nginx + redis + postgres (what is readable). */
      server: number | null;
      /** The generator's own worker processes, for judging whether it was the limit. */
      loadgen: number | null;
    };
    /** CPU seconds per 1,000 pushes received in the window, by role. */
    cpuSecondsPer1000Deliveries: {
      gateways: number | null;
      message: number | null;
      nginx: number | null;
      redis: number | null;
      postgres: number | null;
      server: number | null;
    };
    /**
     * For the scenarios that send nothing (idle, connect) the window is the connect phase:
     * CPU seconds per 1,000 connections established, by role. Null for the others.
     */
    cpuSecondsPer1000Connections: {
      gateways: number | null;
      message: number | null;
      nginx: number | null;
      server: number | null;
    } | null;
    redis: {
      /** Calls by command in the window (INFO commandstats delta, the measurement's own left out). */
      commands: Record<string, number>;
      total: number | null;
      /** total / acks in the window. */
      perMessage: number | null;
      perSecond: number | null;
    };
    postgres: {
      /**
       * pg_stat_database.xact_commit delta of the run's database, from the start of
       * sending to `settleMs` after the drain: PostgreSQL 15+ backends publish their
       * counts up to 10 s late once idle, so with settleMs ≥ 11000 (and as long an idle
       * pause before sending) the figure is exact, else approximate (see warnings).
       */
      xactCommit: number | null;
      /** xactCommit / all acked messages. */
      perMessage: number | null;
      settleMs: number;
    };
    /** Gateway /metrics deltas over the window, summed over the gateways still up. */
    gatewayMetrics: {
      eventDeliveries: number | null;
      eventDrops: number | null;
      slowConsumerCloses: number | null;
      busResyncs: number | null;
    };
  };
}

/** The options part of a result. */
export interface ResolvedOptionsSummary {
  scenario: ScenarioName;
  users: number;
  ratePerSecond: number;
  durationSeconds: number;
  warmupSeconds: number;
  senders: number;
  groupSize: number;
  bodyBytes: number;
  via: 'direct' | 'nginx';
  gateways: number;
  workers: number;
  sourceAddresses: number;
  connectConcurrency: number;
  idleSeconds: number;
  ackTimeoutMs: number;
  drainQuietMs: number;
  drainTimeoutMs: number;
  pgStatsSettleMs: number;
  killAtSeconds: number | null;
  killGateway: number | null;
  target: 'start' | 'attach';
}

const fmt = (value: number | null | undefined, digits = 2) => (value === null || value === undefined ? '-' : value.toFixed(digits));
const pct = (p: Percentiles) =>
  p.count === 0 ? 'n=0' : `p50 ${fmt(p.p50)} p90 ${fmt(p.p90)} p99 ${fmt(p.p99)} max ${fmt(p.max)} ms (n=${p.count})`;
const kib = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024).toFixed(2)} KiB`);
const record = (values: Record<string, number>) =>
  Object.keys(values).length === 0
    ? 'none'
    : Object.entries(values)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ');

/** A few lines for a human; the JSON holds everything. */
export function formatSummary(result: LoadResult): string {
  const r = result;
  const lines = [
    `${r.scenario}: ${r.ok ? 'OK' : 'FAILED'} — ${r.clients.connected}/${r.clients.requested} clients via ${r.clients.via} over ${r.options.gateways} gateway(s), ${r.clients.workers} worker(s), ${r.clients.sourceAddresses} source address(es)`,
    `  connect: ${fmt(r.clients.connectsPerSecond, 0)}/s, ${pct(r.clients.connectMs)}${Object.keys(r.clients.failed).length ? `, failed ${record(r.clients.failed)}` : ''}`,
  ];
  if (r.offered.scheduled > 0) {
    lines.push(
      `  offered: ${r.offered.ratePerSecond}/s for ${r.offered.durationSeconds}s (+${r.offered.warmupSeconds}s warm-up) from ${r.offered.senders} sender(s); sent ${r.sends.sent}, acked ${r.sends.acked} (${fmt(r.sends.ackedPerSecond, 0)}/s), failed ${record(r.sends.failed)}, timed out ${r.sends.timedOut}, not sent ${record(r.sends.notSent)}`,
      `  send→ack:     ${pct(r.latency.sendToAckMs)}`,
      `  send→deliver: ${pct(r.latency.sendToDeliverMs)}`,
      `  schedule lag: ${pct(r.latency.scheduleLagMs)}`,
      `  deliveries: ${r.deliveries.total} (${fmt(r.deliveries.perSecond, 0)}/s over ${fmt(r.deliveries.windowSeconds, 1)}s)`,
      `  check: expected ${r.check.expected}, lost ${r.check.lost}, duplicates ${r.check.duplicates}, unexpected ${r.check.unexpected}, seq gaps ${r.check.seqGaps ?? '-'}, stored ${r.check.stored ?? '-'}`,
    );
  }
  if (r.reconnect) {
    const x = r.reconnect;
    lines.push(
      `  reconnect: killed ${x.killedNodeId ?? '?'} at ${x.killedAtSeconds}s; dropped ${x.dropped}, reconnected ${x.reconnected}, caught up ${x.caughtUp} (all within ${fmt(x.allCaughtUpMs, 0)} ms), sync errors ${x.syncErrors}`,
      `    reconnect: ${pct(x.reconnectMs)}; caught up: ${pct(x.caughtUpMs)}`,
      `    failed reconnect attempts: ${Object.keys(x.failedAttempts).length === 0 ? 'none' : JSON.stringify(x.failedAttempts)}`,
    );
  }
  const f = r.figures;
  const cpu = f.cpuSeconds;
  lines.push(
    `  gateway RSS per connection${f.gatewayRssAfterGc ? ` after a full GC (before it ${kib(f.gatewayRssPerConnectionBeforeGcBytes)})` : ''}: ${kib(f.gatewayRssPerConnectionBytes)} (${f.gateways.map((g) => `${g.nodeId ?? g.pid}: ${g.connections ?? '-'} conns, ${kib(g.rssPerConnectionBytes)}`).join('; ')})`,
    `  CPU s in the window: server ${fmt(cpu.server)} (gateways ${fmt(cpu.gateways)}, message ${fmt(cpu.message)}, nginx ${fmt(cpu.nginx)}, redis ${fmt(cpu.redis)}, postgres ${fmt(cpu.postgres)}); load generator ${fmt(cpu.loadgen)}`,
    f.cpuSecondsPer1000Connections
      ? `  CPU s per 1,000 connections: server ${fmt(f.cpuSecondsPer1000Connections.server, 3)} (gateways ${fmt(f.cpuSecondsPer1000Connections.gateways, 3)}, message ${fmt(f.cpuSecondsPer1000Connections.message, 3)}, nginx ${fmt(f.cpuSecondsPer1000Connections.nginx, 3)})`
      : `  CPU s per 1,000 deliveries: server ${fmt(f.cpuSecondsPer1000Deliveries.server, 4)} (gateways ${fmt(f.cpuSecondsPer1000Deliveries.gateways, 4)}, message ${fmt(f.cpuSecondsPer1000Deliveries.message, 4)}, nginx ${fmt(f.cpuSecondsPer1000Deliveries.nginx, 4)}, redis ${fmt(f.cpuSecondsPer1000Deliveries.redis, 4)}, postgres ${fmt(f.cpuSecondsPer1000Deliveries.postgres, 4)})`,
    `  Redis commands per message: ${fmt(f.redis.perMessage)}, per second ${fmt(f.redis.perSecond, 0)} (${record(f.redis.commands)}); PostgreSQL transactions per message: ${fmt(f.postgres.perMessage)}`,
  );
  if (Object.keys(r.closes).length) lines.push(`  unexpected closes: ${record(r.closes)}`);
  for (const warning of r.warnings) lines.push(`  warning: ${warning}`);
  return lines.join('\n');
}
