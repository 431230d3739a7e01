import type { ResolvedOptionsSummary, ScenarioName } from './result';

/**
 * The scenarios, as layouts over user indexes: who is in which conversation, who sends
 * where, and what happens during the run. `run.ts` turns a layout into database rows,
 * sockets and a schedule.
 *
 *   idle       U users connect (paired in direct conversations, as real users would be) and
 *              stay idle: gateway RSS per connection.
 *   chat       1:1 chat: U users in U/2 direct conversations, everyone sends, R messages/s in
 *              total. Pairs are consecutive users, so with 2+ gateways most pairs span nodes.
 *   fanout     one group of G members spread over the gateways; S senders (default 1) share R/s.
 *   hot        one group with S concurrent senders (default 50) at R/s in total: seq allocation
 *              on one conversation row.
 *   connect    a connect storm: U users connect through nginx as fast as C handshakes in
 *              flight per worker allow; nothing is sent.
 *   reconnect  chat, and one gateway is SIGKILLed a third of the way in: its clients reconnect
 *              (protocol backoff) and catch up with POST /v1/sync.
 */

export interface ScenarioOptions {
  scenario: ScenarioName;
  /** Users, one socket each (default 100; fanout: groupSize). */
  users?: number;
  /** Offered messages per second over all senders (default 100; idle/connect: 0). */
  ratePerSecond?: number;
  /** Measured send window in seconds (default 10). */
  durationSeconds?: number;
  /** Sends before the measured window, left out of latencies and per-message figures (default 1). */
  warmupSeconds?: number;
  /** Senders: fanout (default 1), hot (default 50). */
  senders?: number;
  /** fanout: group members (default users). */
  groupSize?: number;
  /** Message body length (default 64). */
  bodyBytes?: number;
  /** Straight to the gateways (default) or through nginx (default for connect and reconnect). */
  via?: 'direct' | 'nginx';
  /** Worker processes (default: enough to stay under the open-file limit, at least 1). */
  workers?: number;
  /** Source addresses 127.0.0.1..N (default 8). */
  sourceAddresses?: number;
  /** Handshakes in flight per worker (default 100; connect: 500). */
  connectConcurrency?: number;
  /** Pause after connecting before the connected RSS is read (default idle: 5, else 1). */
  idleSeconds?: number;
  /** reconnect: seconds after the start of sending (default a third of warm-up plus duration). */
  killAtSeconds?: number;
  /** reconnect: which gateway (index, default 0). */
  killGateway?: number;
  ackTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** The drain ends once nothing is pending and no push has come for this long (default 1000). */
  drainQuietMs?: number;
  /** The drain gives up after this long (default 20000). */
  drainTimeoutMs?: number;
  /** Idle pause before and after sending so pg_stat_database is exact (default 11000; 0: skip, figure approximate). */
  pgStatsSettleMs?: number;
}

export type ConversationRef = { kind: 'direct'; pair: number } | { kind: 'group'; group: number };

export interface Layout {
  users: number;
  /** Direct conversations as pairs of user indexes. */
  pairs: Array<[number, number]>;
  groups: Array<{ title: string; members: number[] }>;
  /** Each user's conversations (expected pushes) and, for senders, where it sends. */
  memberOf: ConversationRef[][];
  sendsTo: Array<ConversationRef | undefined>;
  senders: number;
}

export type Resolved = Omit<ResolvedOptionsSummary, 'gateways' | 'workers' | 'target'> & {
  handshakeTimeoutMs: number;
  workers: number | undefined;
};

export function resolveOptions(options: ScenarioOptions): Resolved {
  const scenario = options.scenario;
  if (!['idle', 'chat', 'fanout', 'hot', 'connect', 'reconnect'].includes(scenario)) throw new Error(`unknown scenario ${scenario}`);
  const sends = scenario === 'chat' || scenario === 'fanout' || scenario === 'hot' || scenario === 'reconnect';
  const senders = options.senders ?? (scenario === 'hot' ? 50 : 1);
  const groupSize = options.groupSize ?? options.users ?? (scenario === 'hot' ? senders : 100);
  const users = scenario === 'fanout' ? groupSize : scenario === 'hot' ? Math.max(options.users ?? senders, senders) : (options.users ?? 100);
  const durationSeconds = options.durationSeconds ?? 10;
  const warmupSeconds = sends ? (options.warmupSeconds ?? 1) : 0;
  const positive = (name: string, value: number) => {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
    return value;
  };
  return {
    scenario,
    users: positive('users', users),
    ratePerSecond: sends ? positive('rate', options.ratePerSecond ?? 100) : 0,
    durationSeconds: sends ? positive('duration', durationSeconds) : 0,
    warmupSeconds,
    senders: scenario === 'chat' || scenario === 'reconnect' ? users - (users % 2) : sends ? Math.min(senders, users) : 0,
    groupSize: scenario === 'fanout' || scenario === 'hot' ? users : 2,
    bodyBytes: options.bodyBytes ?? 64,
    via: options.via ?? (scenario === 'connect' || scenario === 'reconnect' ? 'nginx' : 'direct'),
    workers: options.workers,
    sourceAddresses: Math.max(1, Math.min(254, options.sourceAddresses ?? 8)),
    connectConcurrency: options.connectConcurrency ?? (scenario === 'connect' ? 500 : 100),
    idleSeconds: options.idleSeconds ?? (scenario === 'idle' ? 5 : 1),
    ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 15_000,
    drainQuietMs: options.drainQuietMs ?? 1000,
    drainTimeoutMs: options.drainTimeoutMs ?? 20_000,
    pgStatsSettleMs: sends ? (options.pgStatsSettleMs ?? 11_000) : 0,
    killAtSeconds: scenario === 'reconnect' ? Number((options.killAtSeconds ?? (warmupSeconds + durationSeconds) / 3).toFixed(3)) : null,
    killGateway: scenario === 'reconnect' ? (options.killGateway ?? 0) : null,
  };
}

export function layoutOf(options: Resolved): Layout {
  const { users } = options;
  const memberOf: ConversationRef[][] = Array.from({ length: users }, () => []);
  const sendsTo: Array<ConversationRef | undefined> = new Array<ConversationRef | undefined>(users).fill(undefined);
  const pairs: Array<[number, number]> = [];
  const groups: Layout['groups'] = [];
  if (options.scenario === 'fanout' || options.scenario === 'hot') {
    groups.push({ title: `${options.scenario} ${users}`, members: Array.from({ length: users }, (_, index) => index) });
    for (let user = 0; user < users; user += 1) memberOf[user]!.push({ kind: 'group', group: 0 });
    for (let user = 0; user < options.senders; user += 1) sendsTo[user] = { kind: 'group', group: 0 };
  } else {
    // Consecutive users share a direct conversation; an odd last user has none.
    for (let user = 0; user + 1 < users; user += 2) {
      const pair = pairs.push([user, user + 1]) - 1;
      memberOf[user]!.push({ kind: 'direct', pair });
      memberOf[user + 1]!.push({ kind: 'direct', pair });
      if (options.senders > 0) {
        sendsTo[user] = { kind: 'direct', pair };
        sendsTo[user + 1] = { kind: 'direct', pair };
      }
    }
  }
  return { users, pairs, groups, memberOf, sendsTo, senders: sendsTo.filter(Boolean).length };
}
