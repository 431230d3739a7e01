import { KeyedSets, type Bus } from '@parley/bus';
import { Channels, decodeBusEvent, type BusEvent, type RoutingInfo, type ServerFrame } from '@parley/protocol';
import type { Logger } from 'pino';
import { encodeFrame, type ClientConnection } from './connection';
import type { GatewayMetrics } from './metrics';

/**
 * Routes bus events to this node's sockets. The node subscribes to a channel while it
 * holds at least one socket that needs it (a member of the conversation, the user
 * themself, a direct peer for presence) and drops it with the last one, so Redis
 * sends each event only to the nodes that have someone to deliver it to.
 */
export class EventRouter {
  /** Each channel's connections on this node. */
  private readonly listeners = new KeyedSets<ClientConnection>();
  /** Subscriptions sent to Redis and not yet confirmed; later listeners wait for them too. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly handler = (payload: string, channel: string) => this.onBusEvent(payload, channel);

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
    /**
     * Called once a socket listens to a new direct peer's presence, to tell it the peer's
     * current state: changes from then on arrive on the channel, so none falls between.
     */
    private readonly onNewDirectPeer: (connection: ClientConnection, peerId: string) => Promise<void> = async () => {},
  ) {}

  /** Starts listening for everything this connection's user should hear. */
  async attach(connection: ClientConnection, routing: RoutingInfo): Promise<void> {
    connection.resetJoinedSeqs(routing.joinedSeqs);
    await Promise.all(channelsFor(connection.userId, routing).map((channel) => this.listen(channel, connection)));
  }

  /** Brings a connection's channels in line with fresh routing (after events may have been lost). */
  async reconcile(connection: ClientConnection, routing: RoutingInfo): Promise<void> {
    connection.resetJoinedSeqs(routing.joinedSeqs);
    const wanted = new Set(channelsFor(connection.userId, routing));
    const stale = [...connection.channels].filter((channel) => !wanted.has(channel));
    const missing = [...wanted].filter((channel) => !connection.channels.has(channel));
    await Promise.all([
      ...stale.map((channel) => this.unlisten(channel, connection)),
      ...missing.map((channel) => this.listen(channel, connection)),
    ]);
  }

  async detach(connection: ClientConnection): Promise<void> {
    await Promise.all([...connection.channels].map((channel) => this.unlisten(channel, connection)));
  }

  /** True when the connection's user is a member of the conversation, as far as this node knows. */
  isMember(connection: ClientConnection, conversationId: string): boolean {
    return connection.channels.has(Channels.conversation(conversationId));
  }

  private async listen(channel: string, connection: ClientConnection): Promise<void> {
    connection.channels.add(channel);
    if (!this.listeners.add(channel, connection)) {
      await this.pending.get(channel);
      return;
    }
    const subscribing = this.bus.subscribe(channel, this.handler);
    this.pending.set(channel, subscribing);
    try {
      await subscribing;
    } catch (error) {
      // Leave nothing behind that looks subscribed: the next listener tries again.
      for (const listener of this.listeners.get(channel)) listener.channels.delete(channel);
      this.listeners.clear(channel);
      await this.bus.unsubscribe(channel, this.handler).catch(() => undefined);
      throw error;
    } finally {
      if (this.pending.get(channel) === subscribing) this.pending.delete(channel);
    }
  }

  private async unlisten(channel: string, connection: ClientConnection): Promise<void> {
    connection.channels.delete(channel);
    if (!this.listeners.delete(channel, connection)) return;
    await this.bus.unsubscribe(channel, this.handler);
  }

  private onBusEvent(payload: string, channel: string): void {
    const event = decodeBusEvent(payload);
    if (!event) {
      this.metrics.drops.inc({ reason: 'undecodable' });
      this.logger.warn({ channel, payload: payload.slice(0, 200) }, 'dropped an undecodable bus payload');
      return;
    }
    if (!this.listeners.has(channel)) return;
    const targets = this.listeners.get(channel);
    const frame = toFrame(event);
    if (event.type === 'message.created') this.metrics.fanoutFrom(event.message.createdAt);
    if (frame) {
      const encoded = encodeFrame(frame); // once, for every local recipient
      let delivered = 0;
      let closed = 0;
      for (const connection of targets) {
        // Typing goes to the others, not back to the typist's own sockets.
        if (event.type === 'typing' && connection.userId === event.userId) continue;
        // An edit or delete of a message sent before this member joined is not theirs to see.
        if (event.type === 'message.updated' && event.message.seq <= connection.joinedSeq(event.conversationId)) {
          continue;
        }
        if (connection.write(encoded)) delivered += 1;
        else closed += 1;
      }
      // Counted once per event, not per socket.
      if (delivered > 0) {
        this.metrics.deliveries.inc(delivered);
        this.metrics.framesOut.inc({ type: encoded.type }, delivered);
      }
      if (closed > 0) this.metrics.drops.inc({ reason: 'socket_closed' }, closed);
    }
    // After delivery, so a removed member still hears that they were removed.
    this.applyMembershipChange(event, targets);
  }

  /** Events that change what a socket listens to, or end it. */
  private applyMembershipChange(event: BusEvent, targets: Iterable<ClientConnection>): void {
    const change = (connection: ClientConnection, work: Promise<void>) => {
      work.catch((error: unknown) => {
        this.logger.warn({ err: error, userId: connection.userId }, 'subscription change failed; closing the socket');
        connection.close('INTERNAL_ERROR'); // its client reconnects and gets fresh routing
      });
    };
    switch (event.type) {
      case 'membership.added':
        for (const connection of targets) {
          connection.setJoinedSeq(event.conversationId, event.joinedSeq ?? 0);
          change(connection, this.listen(Channels.conversation(event.conversationId), connection));
          const peerId = event.directPeerId;
          if (peerId) {
            change(
              connection,
              this.listen(Channels.presence(peerId), connection).then(() => this.onNewDirectPeer(connection, peerId)),
            );
          }
        }
        return;
      case 'membership.removed':
        for (const connection of targets) {
          change(connection, this.unlisten(Channels.conversation(event.conversationId), connection));
        }
        return;
      case 'member.removed':
        // Also heard on the conversation channel itself: the removed user's sockets stop
        // listening even if the doorbell on their user channel is lost.
        for (const connection of [...targets]) {
          if (connection.userId === event.userId) {
            change(connection, this.unlisten(Channels.conversation(event.conversationId), connection));
          }
        }
        return;
      case 'session.revoked':
        for (const connection of targets) {
          if (connection.sessionId === event.sessionId) connection.close('SESSION_REVOKED');
        }
        return;
      default:
        return;
    }
  }
}

function channelsFor(userId: string, routing: RoutingInfo): string[] {
  return [
    Channels.user(userId),
    ...routing.conversationIds.map((id) => Channels.conversation(id)),
    ...routing.directPeerIds.map((id) => Channels.presence(id)),
  ];
}

/** The client frame for a bus event; null for events clients do not see as such. */
export function toFrame(event: BusEvent): ServerFrame | null {
  switch (event.type) {
    case 'message.created':
      return { type: 'message', conversationId: event.conversationId, message: event.message };
    case 'message.updated':
      return { type: 'message.updated', conversationId: event.conversationId, message: event.message };
    case 'read':
      return { type: 'read', conversationId: event.conversationId, userId: event.userId, lastReadSeq: event.lastReadSeq };
    case 'typing':
      return { type: 'typing', conversationId: event.conversationId, userId: event.userId };
    case 'presence':
      return { type: 'presence', userId: event.userId, online: event.online };
    case 'member.added':
      return {
        type: 'membership',
        change: 'member.added',
        conversationId: event.conversationId,
        userIds: event.userIds,
        role: event.role,
        byUserId: event.byUserId,
      };
    case 'member.removed':
      return {
        type: 'membership',
        change: 'member.removed',
        conversationId: event.conversationId,
        userIds: [event.userId],
        byUserId: event.byUserId,
      };
    case 'member.role_changed':
      return {
        type: 'membership',
        change: 'member.role_changed',
        conversationId: event.conversationId,
        userIds: [event.userId],
        role: event.role,
      };
    case 'membership.added':
      return { type: 'membership', change: 'joined', conversationId: event.conversationId };
    case 'membership.removed':
      return { type: 'membership', change: 'left', conversationId: event.conversationId };
    case 'contact.changed':
      return { type: 'contact', userId: event.userId, state: event.state };
    case 'session.revoked':
    case 'resync': // handled by the gateway itself, on the `system` channel
      return null;
  }
}
