import { HandlerRegistry, type Bus, type BusHandler } from './bus';

/** An in-process bus for a single node (embedded mode) and for unit tests. */
export class MemoryBus implements Bus {
  private readonly registry = new HandlerRegistry();
  private closed = false;

  constructor(private readonly onHandlerError: (error: unknown) => void = () => {}) {}

  async publish(channel: string, payload: string): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    // Deliver asynchronously, as a network bus would, so publishers never run handlers inline.
    queueMicrotask(() => this.registry.dispatch(channel, payload, this.onHandlerError));
  }

  async subscribe(channel: string, handler: BusHandler): Promise<void> {
    this.registry.add(channel, handler);
  }

  async unsubscribe(channel: string, handler: BusHandler): Promise<void> {
    this.registry.remove(channel, handler);
  }

  onResubscribed(): void {
    // An in-process bus never loses its subscriptions.
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
