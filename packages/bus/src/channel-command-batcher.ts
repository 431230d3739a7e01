export type ChannelCommand = 'subscribe' | 'unsubscribe';

interface Queued {
  command: ChannelCommand;
  channel: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Channels per command at most, so one command stays a bounded write and reply. */
export const MAX_CHANNELS_PER_COMMAND = 1000;

/**
 * Joins the SUBSCRIBE and UNSUBSCRIBE calls of one event-loop turn into commands of many
 * channels each. ioredis writes every subscriber command on its own (auto-pipelining
 * leaves them out), and a socket that connects asks for several channels: as single
 * commands they cost a gateway a syscall and a reply each. Calls keep their order: a run
 * of one command is sent as one, so `subscribe a; unsubscribe a` stays in that order.
 * Each call's promise settles with the command that carried its channel.
 */
export class ChannelCommandBatcher {
  private queue: Queued[] = [];
  private scheduled = false;

  constructor(private readonly send: (command: ChannelCommand, channels: string[]) => Promise<unknown>) {}

  run(command: ChannelCommand, channel: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ command, channel, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const queued = this.queue;
    this.queue = [];
    this.scheduled = false;
    let start = 0;
    while (start < queued.length) {
      const command = queued[start]!.command;
      let end = start + 1;
      while (end < queued.length && end - start < MAX_CHANNELS_PER_COMMAND && queued[end]!.command === command) end += 1;
      const batch = queued.slice(start, end);
      this.sendBatch(command, batch);
      start = end;
    }
  }

  private sendBatch(command: ChannelCommand, batch: Queued[]): void {
    let sent: Promise<unknown>;
    try {
      sent = this.send(
        command,
        batch.map((queued) => queued.channel),
      );
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      () => batch.forEach((queued) => queued.resolve()),
      (error: unknown) => batch.forEach((queued) => queued.reject(error)),
    );
  }
}
