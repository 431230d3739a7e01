import type { Bus } from '@parley/bus';
import { Channels, encodeBusEvent } from '@parley/protocol';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GatewayMetrics } from './metrics';
import type { Presence } from './presence';

/** Users whose claims one heartbeat round trip renews. */
const HEARTBEAT_BATCH = 500;

/**
 * A node's claim on a user, and the count of live claims, in one atomic step on the
 * user's key (one key, so one slot on a cluster): two nodes claiming at once cannot both
 * count 2 and both stay silent. One script call instead of MULTI, ZADD, ZCOUNT and EXEC:
 * fewer commands, and no pipeline object, on every connect.
 */
const CLAIM_SCRIPT = {
  numberOfKeys: 1,
  // KEYS[1] the user's key; ARGV: claim expiry (ms), node id, now (ms).
  lua: "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) return redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf')",
};
/** A node's claim dropped, and the live claims left, the same way. */
const RELEASE_SCRIPT = {
  numberOfKeys: 1,
  // KEYS[1] the user's key; ARGV: node id, now (ms).
  lua: "redis.call('ZREM', KEYS[1], ARGV[1]) return redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf')",
};

/** The client with the scripts defined on it (ioredis sends EVALSHA, and EVAL when Redis lacks the script). */
type ScriptedRedis = Redis & {
  parleyPresenceClaim(key: string, expiresAtMs: number, nodeId: string, nowMs: number): Promise<number>;
  parleyPresenceRelease(key: string, nodeId: string, nowMs: number): Promise<number>;
};

/**
 * Presence across a fleet of nodes, kept in Redis. Keys (after the bus prefix), named so
 * each hashes by one id on a cluster:
 * - `presence:{<userId>}`: sorted set of node ids holding the user, scored by when
 *   that claim expires (ms); a user is online while any score is in the future.
 * - `node:{<nodeId>}:users`: set of the user ids a node holds, for the sweep.
 * - `nodes`: sorted set of node ids, scored by heartbeat expiry.
 */
export class RedisPresence implements Presence {
  private readonly localUsers = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly bus: Bus,
    private readonly options: { prefix: string; nodeId: string; ttlMs: number },
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {
    redis.defineCommand('parleyPresenceClaim', CLAIM_SCRIPT);
    redis.defineCommand('parleyPresenceRelease', RELEASE_SCRIPT);
    this.redis = redis as ScriptedRedis;
  }

  private key(name: string): string {
    return this.options.prefix + name;
  }

  private userKey(userId: string): string {
    return this.key(`presence:{${userId}}`);
  }

  private nodeUsersKey(nodeId: string): string {
    return this.key(`node:{${nodeId}}:users`);
  }

  async userConnected(userId: string): Promise<void> {
    this.localUsers.add(userId);
    const now = Date.now();
    const online = await this.metrics.timeRedis('presence_connect', async () => {
      // Sent together, one round trip: the connection keeps their order.
      const [, claims] = await Promise.all([
        this.redis.sadd(this.nodeUsersKey(this.options.nodeId), userId),
        this.redis.parleyPresenceClaim(this.userKey(userId), now + this.options.ttlMs, this.options.nodeId, now),
      ]);
      return Number(claims);
    });
    // This node's claim is the only live one: the user just came online.
    if (online === 1) await this.announce(userId, true);
  }

  async userDisconnected(userId: string): Promise<void> {
    this.localUsers.delete(userId);
    const online = await this.metrics.timeRedis('presence_disconnect', async () => {
      const [, claims] = await Promise.all([
        this.redis.srem(this.nodeUsersKey(this.options.nodeId), userId),
        this.redis.parleyPresenceRelease(this.userKey(userId), this.options.nodeId, Date.now()),
      ]);
      return Number(claims);
    });
    if (online === 0) await this.announce(userId, false);
  }

  async isOnline(userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return [];
    const now = Date.now();
    // One peer, the common case, needs no pipeline object.
    if (userIds.length === 1) return [Number(await this.redis.zcount(this.userKey(userIds[0]!), now, '+inf')) > 0];
    const pipeline = this.redis.pipeline();
    for (const userId of userIds) pipeline.zcount(this.userKey(userId), now, '+inf');
    const results = await pipeline.exec();
    return userIds.map((_, index) => Number(results?.[index]?.[1] ?? 0) > 0);
  }

  start(): void {
    const interval = Math.max(1000, Math.floor(this.options.ttlMs / 3));
    const tick = () => {
      this.heartbeat()
        .then(() => this.sweep())
        .catch((error: unknown) => this.logger.warn({ err: error }, 'presence heartbeat failed'));
    };
    tick();
    this.timer = setInterval(tick, interval);
    this.timer.unref();
  }

  /** Stops the heartbeat. Users go offline as their sockets close (drain) or by the sweep. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
  }

  /**
   * Renews this node's heartbeat and its claim on each of its users, a batch of users per
   * round trip: one pipeline of every user (tens of thousands of commands alive at once
   * until Redis answers) grew the heap by megabytes on every beat.
   */
  private async heartbeat(): Promise<void> {
    const expires = Date.now() + this.options.ttlMs;
    await this.metrics.timeRedis('presence_heartbeat', async () => {
      let pipeline = this.redis.pipeline().zadd(this.key('nodes'), expires, this.options.nodeId);
      for (const userId of this.localUsers) {
        pipeline.zadd(this.userKey(userId), expires, this.options.nodeId);
        if (pipeline.length < HEARTBEAT_BATCH) continue;
        await pipeline.exec();
        pipeline = this.redis.pipeline();
      }
      if (pipeline.length > 0) await pipeline.exec();
    });
  }

  /** Takes over the users of nodes whose heartbeat lapsed: one survivor per dead node, by lock. */
  private async sweep(): Promise<void> {
    const now = Date.now();
    const dead = await this.redis.zrangebyscore(this.key('nodes'), '-inf', now);
    for (const nodeId of dead) {
      if (nodeId === this.options.nodeId) continue;
      const locked = await this.redis.set(this.key(`sweep:{${nodeId}}`), this.options.nodeId, 'PX', this.options.ttlMs, 'NX');
      if (locked !== 'OK') continue;
      const users = await this.redis.smembers(this.nodeUsersKey(nodeId));
      for (const userId of users) {
        const claims = await this.redis.parleyPresenceRelease(this.userKey(userId), nodeId, Date.now());
        if (Number(claims) === 0) await this.announce(userId, false);
      }
      await this.redis.del(this.nodeUsersKey(nodeId));
      await this.redis.zrem(this.key('nodes'), nodeId);
      this.logger.info({ deadNode: nodeId, users: users.length }, 'swept the users of a dead node');
    }
  }

  private async announce(userId: string, online: boolean): Promise<void> {
    const payload = encodeBusEvent({ v: 1, type: 'presence', userId, online });
    await this.metrics
      .timeRedis('publish', () => this.bus.publish(Channels.presence(userId), payload))
      .catch((error: unknown) => this.logger.warn({ err: error, userId }, 'presence publish failed'));
  }
}
