import type { Bus } from '@parley/bus';
import { Channels, encodeBusEvent } from '@parley/protocol';
import type { Logger } from 'pino';
import type { Presence } from './presence';

/**
 * Presence when this node is the only one (the single-process server): the users with
 * a socket here are everyone online. The contract holds as it does across a fleet, and
 * more simply: no other node can die unseen, so there is no heartbeat and no sweep.
 */
export class MemoryPresence implements Presence {
  private readonly online = new Set<string>();

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  async userConnected(userId: string): Promise<void> {
    if (this.online.has(userId)) return;
    this.online.add(userId);
    await this.announce(userId, true);
  }

  async userDisconnected(userId: string): Promise<void> {
    if (!this.online.delete(userId)) return;
    await this.announce(userId, false);
  }

  async isOnline(userIds: readonly string[]): Promise<boolean[]> {
    return userIds.map((userId) => this.online.has(userId));
  }

  start(): void {
    // Nothing to renew: the state lives and dies with this process.
  }

  async stop(): Promise<void> {
    // Users go offline as their sockets close.
  }

  private async announce(userId: string, online: boolean): Promise<void> {
    const payload = encodeBusEvent({ v: 1, type: 'presence', userId, online });
    await this.bus
      .publish(Channels.presence(userId), payload)
      .catch((error: unknown) => this.logger.warn({ err: error, userId }, 'presence publish failed'));
  }
}
