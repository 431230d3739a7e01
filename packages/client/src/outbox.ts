import type { Message, SendMessageBody, SendMessageResponse } from '@parley/protocol';
import { Backoff, type BackoffOptions } from './backoff';
import { ParleyClientError, toClientError } from './errors';
import type { ClientRequest, ReplyFrame } from './frames';
import { clearTimer, setTimer, type TimerHandle } from './platform';

/** The parts of the connection the outbox uses. */
export interface OutboxConnection {
  readonly isOpen: boolean;
  /** True while the client wants a socket (connected or reconnecting). */
  readonly isWanted: boolean;
  request(frame: ClientRequest): Promise<ReplyFrame>;
}

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  connection: OutboxConnection;
  rest: { sendMessage(conversationId: string, body: SendMessageBody): Promise<SendMessageResponse> };
  /** Called with each stored message before its `send` promise resolves. */
  onStored(message: Message): void;
  /** Delays between retries of one send. */
  backoff?: Partial<BackoffOptions>;
  /**
   * While the client wants a socket but has none open, send over REST once a message
   * has waited this long (ms); `false` to wait for the socket however long it takes.
   * Without a wanted socket (`connect()` not called) sends go over REST at once.
   */
  restFallbackAfterMs?: number | false;
  now?: () => number;
}

interface Entry {
  conversationId: string;
  clientMessageId: string;
  body: string;
  createdAt: number;
  busy: boolean;
  timer: TimerHandle | undefined;
  backoff: Backoff;
  resolve: (message: Message) => void;
  reject: (error: ParleyClientError) => void;
}

/**
 * Sends messages until the server acknowledges them. Each message keeps the client
 * message id it was given, across retries, reconnects and the REST fallback, so however
 * often it is sent the server stores it once (a retry returns the original). Messages of
 * one conversation go one at a time, in the order `send` was called, so they get
 * ascending seqs in that order; different conversations do not wait for each other.
 */
export class Outbox {
  private readonly queues = new Map<string, Entry[]>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly options: OutboxOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Messages not acknowledged yet. */
  get size(): number {
    let total = 0;
    for (const queue of this.queues.values()) total += queue.length;
    return total;
  }

  /** Queues a message; resolves with the stored message (its `seq` assigned). */
  enqueue(conversationId: string, body: string, clientMessageId: string): Promise<Message> {
    this.closed = false;
    return new Promise<Message>((resolve, reject) => {
      const entry: Entry = {
        conversationId,
        clientMessageId,
        body,
        createdAt: this.now(),
        busy: false,
        timer: undefined,
        backoff: new Backoff(this.options.backoff),
        resolve,
        reject,
      };
      const queue = this.queues.get(conversationId) ?? [];
      queue.push(entry);
      this.queues.set(conversationId, queue);
      if (queue.length === 1) this.attempt(entry);
    });
  }

  /** Tries every waiting head of queue now (call it when the socket opens). */
  pump(): void {
    for (const queue of this.queues.values()) {
      const head = queue[0];
      if (head && !head.busy) {
        clearTimer(head.timer);
        head.timer = undefined;
        this.attempt(head);
      }
    }
  }

  /** Rejects every waiting message with `error` (each rejection carries its `clientMessageId`). */
  close(error: ParleyClientError): void {
    this.closed = true;
    const entries = [...this.queues.values()].flat();
    this.queues.clear();
    for (const entry of entries) {
      clearTimer(entry.timer);
      entry.reject(
        new ParleyClientError(error.code, error.message, { retry: error.retry, clientMessageId: entry.clientMessageId }),
      );
    }
  }

  private attempt(entry: Entry): void {
    if (this.closed || entry.busy || this.queues.get(entry.conversationId)?.[0] !== entry) return;
    const { connection } = this.options;
    const fallbackAfter = this.options.restFallbackAfterMs ?? 5000;
    let channel: 'socket' | 'rest' | undefined;
    if (connection.isOpen) channel = 'socket';
    else if (!connection.isWanted) channel = 'rest';
    else if (fallbackAfter !== false && this.now() - entry.createdAt >= fallbackAfter) channel = 'rest';
    if (!channel) {
      // Wait for the socket (pump() on open), or for the fallback moment.
      if (fallbackAfter !== false && entry.timer === undefined) {
        entry.timer = setTimer(
          () => {
            entry.timer = undefined;
            this.attempt(entry);
          },
          entry.createdAt + fallbackAfter - this.now(),
        );
      }
      return;
    }
    clearTimer(entry.timer);
    entry.timer = undefined;
    entry.busy = true;
    const sent = channel === 'socket' ? this.viaSocket(entry) : this.viaRest(entry);
    sent.then(
      (message) => {
        entry.busy = false;
        if (this.closed) return;
        this.finish(entry);
        try {
          this.options.onStored(message);
        } finally {
          entry.resolve(message);
          this.pumpConversation(entry.conversationId);
        }
      },
      (caught: unknown) => {
        entry.busy = false;
        if (this.closed) return;
        const error = toClientError(caught);
        if (!error.retryable) {
          this.finish(entry);
          entry.reject(
            new ParleyClientError(error.code, error.message, {
              retry: error.retry,
              clientMessageId: entry.clientMessageId,
              cause: error,
              ...(error.status === undefined ? {} : { status: error.status }),
            }),
          );
          this.pumpConversation(entry.conversationId);
          return;
        }
        // Retry with the same client message id: a lost socket waits for the next one
        // (or the fallback), anything else backs off.
        const delay = error.code === 'DISCONNECTED' ? 0 : Math.max(entry.backoff.next(), error.retryAfterMs ?? 0);
        entry.timer = setTimer(() => {
          entry.timer = undefined;
          this.attempt(entry);
        }, delay);
      },
    );
  }

  private async viaSocket(entry: Entry): Promise<Message> {
    const reply = await this.options.connection.request({
      type: 'send',
      conversationId: entry.conversationId,
      clientMessageId: entry.clientMessageId,
      body: entry.body,
    });
    if (reply.type !== 'ack' || !reply.message) {
      throw new ParleyClientError('BAD_RESPONSE', 'The send ack carried no message.');
    }
    return reply.message;
  }

  private async viaRest(entry: Entry): Promise<Message> {
    const response = await this.options.rest.sendMessage(entry.conversationId, {
      clientMessageId: entry.clientMessageId,
      body: entry.body,
    });
    return response.message;
  }

  private finish(entry: Entry): void {
    const queue = this.queues.get(entry.conversationId);
    if (!queue) return;
    const index = queue.indexOf(entry);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(entry.conversationId);
  }

  private pumpConversation(conversationId: string): void {
    const head = this.queues.get(conversationId)?.[0];
    if (head && !head.busy && head.timer === undefined) this.attempt(head);
  }
}
