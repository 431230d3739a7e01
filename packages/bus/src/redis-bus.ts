import type { Cluster, Redis } from 'ioredis';
import { HandlerRegistry, type Bus, type BusHandler } from './bus';
import { ChannelCommandBatcher } from './channel-command-batcher';

/** One Redis server, or a Redis Cluster (`new Cluster(nodes, { shardedSubscribers: true })` for sharded pub/sub). */
export type RedisClient = Redis | Cluster;

export interface RedisBusOptions {
  /** Publishes. Create it with `enableOfflineQueue: false` so a publish during an outage fails fast. */
  publisher: RedisClient;
  /** Subscribes. A Redis connection in subscriber mode can do nothing else, so it is its own. */
  subscriber: RedisClient;
  /** Prepended to every channel name, so deployments (and test runs) sharing a Redis stay apart. */
  prefix: string;
  /**
   * Sharded pub/sub (Redis 7+): SPUBLISH, SSUBSCRIBE and SUNSUBSCRIBE instead of PUBLISH,
   * SUBSCRIBE and UNSUBSCRIBE. On a Redis Cluster a channel then lives on the shard that
   * owns its hash slot (the `{id}` in `conv:{id}`) instead of being broadcast to every
   * node. Every process of a deployment must agree: a sharded publish reaches only
   * sharded subscribers. Default false.
   */
  sharded?: boolean;
  onHandlerError?: (error: unknown) => void;
}

/** The three commands and the message event of one pub/sub flavour, bound to its connections. */
interface PubSubCommands {
  publish(channel: string, payload: string): Promise<unknown>;
  /** One command for all the channels (sharded: one per channel, as each may live on another shard). */
  subscribe(channels: string[]): Promise<unknown>;
  unsubscribe(channels: string[]): Promise<unknown>;
  messageEvent: 'message' | 'smessage';
}

function pubSubCommands({ publisher, subscriber, sharded }: RedisBusOptions): PubSubCommands {
  return sharded
    ? {
        publish: (channel, payload) => publisher.spublish(channel, payload),
        subscribe: (channels) => Promise.all(channels.map((channel) => subscriber.ssubscribe(channel))),
        unsubscribe: (channels) => Promise.all(channels.map((channel) => subscriber.sunsubscribe(channel))),
        messageEvent: 'smessage',
      }
    : {
        publish: (channel, payload) => publisher.publish(channel, payload),
        subscribe: (channels) => subscriber.subscribe(...channels),
        unsubscribe: (channels) => subscriber.unsubscribe(...channels),
        messageEvent: 'message',
      };
}

/**
 * Redis pub/sub. ioredis re-subscribes by itself after a reconnect; since anything
 * published in between is gone, `onResubscribed` listeners are then told to resync.
 *
 * That reconnect is seen through the subscriber's `close` and `ready` events, which a
 * single connection emits. A `Cluster` with sharded subscribers replaces a lost shard's
 * subscriber without them (it emits `-node`, then `subscribersReady`), so on a cluster a
 * shard's failover is not reported to `onResubscribed` yet (docs/scaling.md).
 */
export class RedisBus implements Bus {
  private readonly registry = new HandlerRegistry();
  private readonly resubscribedListeners: Array<() => void> = [];
  private readonly onHandlerError: (error: unknown) => void;
  private readonly commands: PubSubCommands;
  /** Subscription changes of one loop turn go out as one command per run of a kind. */
  private readonly channelCommands: ChannelCommandBatcher;
  private lostConnection = false;

  constructor(private readonly options: RedisBusOptions) {
    this.onHandlerError = options.onHandlerError ?? (() => {});
    this.commands = pubSubCommands(options);
    this.channelCommands = new ChannelCommandBatcher((command, channels) => this.commands[command](channels));
    const { subscriber, prefix } = options;
    subscriber.on(this.commands.messageEvent, (channel: string, payload: string) => {
      if (!channel.startsWith(prefix)) return;
      this.registry.dispatch(channel.slice(prefix.length), payload, this.onHandlerError);
    });
    subscriber.on('close', () => {
      this.lostConnection = true;
    });
    subscriber.on('ready', () => {
      if (!this.lostConnection) return;
      this.lostConnection = false;
      for (const listener of this.resubscribedListeners) listener();
    });
  }

  async publish(channel: string, payload: string): Promise<void> {
    await this.commands.publish(this.options.prefix + channel, payload);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.registry.add(channel, handler)) await this.channelCommands.run('subscribe', this.options.prefix + channel);
  }

  async unsubscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.registry.remove(channel, handler)) await this.channelCommands.run('unsubscribe', this.options.prefix + channel);
  }

  onResubscribed(listener: () => void): void {
    this.resubscribedListeners.push(listener);
  }

  /** Closes the subscriber; the publisher belongs to whoever created it. */
  async close(): Promise<void> {
    await this.options.subscriber.quit().catch(() => undefined);
  }
}
