/** Maps each event name to the arguments its listeners receive. */
export type EventMap = { [event: string]: unknown[] };

/** A listener of event `K`. */
export type Listener<Events extends EventMap, K extends keyof Events> = (...args: Events[K]) => void;

type AnyListener = (...args: unknown[]) => void;

/**
 * A small typed event emitter that runs the same in browsers and Node. A listener that
 * throws does not stop the others: its error goes to `onListenerError`.
 */
export class TypedEmitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<AnyListener>>();

  constructor(private readonly onListenerError: (error: unknown, event: keyof Events) => void = () => {}) {}

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events, K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as unknown as AnyListener);
    return () => this.off(event, listener);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once<K extends keyof Events>(event: K, listener: Listener<Events, K>): () => void {
    const off = this.on(event, (...args: Events[K]) => {
      off();
      listener(...args);
    });
    return off;
  }

  /** Removes a listener added with `on` (a `once` listener is removed through the function `once` returned). */
  off<K extends keyof Events>(event: K, listener: Listener<Events, K>): void {
    this.listeners.get(event)?.delete(listener as unknown as AnyListener);
  }

  /** How many listeners an event has. */
  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` in the order they were added. */
  emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
