import type { Bus } from '@parley/bus';
import { Channels, encodeBusEvent, type BusEvent } from '@parley/protocol';
import type { Logger } from 'pino';

export interface PublishTarget {
  conversationId?: string;
  userIds?: readonly string[];
}

export interface PublisherMetrics {
  published(type: string): void;
  failed(type: string): void;
}

/**
 * Publishes events after their transaction has committed. A failure is logged and
 * counted, never thrown: the write is already durable, and subscribers that miss the
 * event recover through sync. Call it only once the transaction has resolved.
 */
export class EventPublisher {
  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly metrics: PublisherMetrics,
  ) {}

  publish(event: BusEvent, target: PublishTarget): void {
    const payload = encodeBusEvent(event); // serialize once for every channel
    const channels = [
      ...(target.conversationId ? [Channels.conversation(target.conversationId)] : []),
      ...(target.userIds ?? []).map((userId) => Channels.user(userId)),
    ];
    for (const channel of channels) {
      this.bus.publish(channel, payload).then(
        () => this.metrics.published(event.type),
        (error: unknown) => {
          this.metrics.failed(event.type);
          this.logger.warn({ err: error, channel, eventType: event.type }, 'event publish failed');
        },
      );
    }
  }
}
