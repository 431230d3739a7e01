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
  /** Set when a publish failed: subscribers missed something they cannot see as a seq gap. */
  private lostEvents = false;

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
          this.lostEvents = true;
          this.metrics.failed(event.type);
          this.logger.warn({ err: error, channel, eventType: event.type }, 'event publish failed');
        },
      );
    }
  }

  /**
   * Call when the bus connection is back. If events were lost meanwhile (a membership
   * change, a revocation, the last message of a conversation: nothing a client could
   * detect), every gateway is told to resync its sockets.
   */
  announceRecovery(): void {
    if (!this.lostEvents) return;
    const payload = encodeBusEvent({ v: 1, type: 'resync', reason: 'the message service could not publish some events' });
    this.bus.publish(Channels.system(), payload).then(
      () => {
        this.lostEvents = false;
        this.logger.info('told the fleet to resync after lost events');
      },
      (error: unknown) => this.logger.warn({ err: error }, 'resync notice not published; will retry on reconnect'),
    );
  }
}
