import { KeyedSets } from './keyed-sets';

/** Receives one payload published on a channel this handler subscribed to. */
export type BusHandler = (payload: string, channel: string) => void;

/**
 * Moves opaque string payloads between nodes. The bus knows nothing of what the
 * payloads mean: encoding and routing live above it.
 *
 * Guarantees: a payload published on a channel is delivered to every handler
 * subscribed to that channel at that moment, on any node, at most once, in publish
 * order per publisher. Delivery may be lost (a disconnect, a restart); subscribers learn
 * of possible losses through `onResubscribed` and must recover from the source of truth.
 */
export interface Bus {
  /** Resolves once the payload is handed to the transport; rejects when it cannot be. */
  publish(channel: string, payload: string): Promise<void>;
  /** Adds a handler; resolves when the subscription is active. */
  subscribe(channel: string, handler: BusHandler): Promise<void>;
  /** Removes a handler; the channel is dropped when its last handler goes. */
  unsubscribe(channel: string, handler: BusHandler): Promise<void>;
  /** Called after the bus lost its subscriptions and restored them: events may have been missed. */
  onResubscribed(listener: () => void): void;
  close(): Promise<void>;
}

/** Keeps handlers by channel; shared by the bus implementations. */
export class HandlerRegistry {
  private readonly handlers = new KeyedSets<BusHandler>();

  /** Returns true when this is the channel's first handler. */
  add(channel: string, handler: BusHandler): boolean {
    return this.handlers.add(channel, handler);
  }

  /** Returns true when the channel has no handler left. */
  remove(channel: string, handler: BusHandler): boolean {
    return this.handlers.delete(channel, handler);
  }

  dispatch(channel: string, payload: string, onError: (error: unknown) => void): void {
    for (const handler of this.handlers.get(channel)) {
      try {
        handler(payload, channel);
      } catch (error) {
        onError(error); // one faulty handler must not starve the others
      }
    }
  }

  channels(): string[] {
    return [...this.handlers.keys()];
  }
}
