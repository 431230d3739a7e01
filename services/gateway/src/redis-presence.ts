import type { Bus } from '@parley/bus';
import { Channels, encodeBusEvent } from '@parley/protocol';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { GatewayMetrics } from './metrics';
import type { Presence } from './presence';

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

  constructor(
    private readonly redis: Redis,
    private readonly bus: Bus,
    private readonly options: { prefix: string; nodeId: string; ttlMs: number },
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {}

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
      await this.redis.sadd(this.nodeUsersKey(this.options.nodeId), userId);
      // Claim and count atomically (one key, so one slot on a cluster): two nodes
      // claiming at once cannot both count 2 and both stay silent.
      const results = await this.redis
        .multi()
        .zadd(this.userKey(userId), now + this.options.ttlMs, this.options.nodeId)
        .zcount(this.userKey(userId), now, '+inf')
        .exec();
      return Number(results?.[1]?.[1] ?? 0);
    });
    // This node's claim is the only live one: the user just came online.
    if (online === 1) await this.announce(userId, true);
  }

  async userDisconnected(userId: string): Promise<void> {
    this.localUsers.delete(userId);
    const online = await this.metrics.timeRedis('presence_disconnect', async () => {
      await this.redis.srem(this.nodeUsersKey(this.options.nodeId), userId);
      const results = await this.redis
        .multi()
        .zrem(this.userKey(userId), this.options.nodeId)
        .zcount(this.userKey(userId), Date.now(), '+inf')
        .exec();
      return Number(results?.[1]?.[1] ?? 0);
    });
    if (online === 0) await this.announce(userId, false);
  }

  async isOnline(userIds: readonly string[]): Promise<boolean[]> {
    if (userIds.length === 0) return [];
    const now = Date.now();
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

  /** Renews this node's heartbeat and its claim on each of its users. */
  private async heartbeat(): Promise<void> {
    const expires = Date.now() + this.options.ttlMs;
    const pipeline = this.redis.pipeline().zadd(this.key('nodes'), expires, this.options.nodeId);
    for (const userId of this.localUsers) pipeline.zadd(this.userKey(userId), expires, this.options.nodeId);
    await this.metrics.timeRedis('presence_heartbeat', () => pipeline.exec());
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
        const results = await this.redis
          .multi()
          .zrem(this.userKey(userId), nodeId)
          .zcount(this.userKey(userId), Date.now(), '+inf')
          .exec();
        if (Number(results?.[1]?.[1] ?? 0) === 0) await this.announce(userId, false);
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
