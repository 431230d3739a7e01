import type { Redis } from 'ioredis';
import { HandlerRegistry, type Bus, type BusHandler } from './bus';

export interface RedisBusOptions {
  /** Publishes. Create it with `enableOfflineQueue: false` so a publish during an outage fails fast. */
  publisher: Redis;
  /** Subscribes. A Redis connection in subscriber mode can do nothing else, so it is its own. */
  subscriber: Redis;
  /** Prepended to every channel name, so deployments (and test runs) sharing a Redis stay apart. */
  prefix: string;
  onHandlerError?: (error: unknown) => void;
}

/**
 * Redis pub/sub. ioredis re-subscribes by itself after a reconnect; since anything
 * published in between is gone, `onResubscribed` listeners are then told to resync.
 */
export class RedisBus implements Bus {
  private readonly registry = new HandlerRegistry();
  private readonly resubscribedListeners: Array<() => void> = [];
  private readonly onHandlerError: (error: unknown) => void;
  private lostConnection = false;

  constructor(private readonly options: RedisBusOptions) {
    this.onHandlerError = options.onHandlerError ?? (() => {});
    const { subscriber, prefix } = options;
    subscriber.on('message', (channel: string, payload: string) => {
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
    await this.options.publisher.publish(this.options.prefix + channel, payload);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.registry.add(channel, handler)) {
      await this.options.subscriber.subscribe(this.options.prefix + channel);
    }
  }

  async unsubscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.registry.remove(channel, handler)) {
      await this.options.subscriber.unsubscribe(this.options.prefix + channel);
    }
  }

  onResubscribed(listener: () => void): void {
    this.resubscribedListeners.push(listener);
  }

  /** Closes the subscriber; the publisher belongs to whoever created it. */
  async close(): Promise<void> {
    await this.options.subscriber.quit().catch(() => undefined);
  }
}
