import type { AccessTokenVerifier } from '@parley/auth';
import type { Bus } from '@parley/bus';
import {
  Channels,
  encodeBusEvent,
  ErrorCatalogue,
  isParleyError,
  parseClientFrame,
  type ClientFrame,
  type ErrorCode,
  type Message,
  type ReadState,
} from '@parley/protocol';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { ClientConnection } from './connection';
import type { EventRouter } from './event-router';
import type { MessageServiceClient, ServiceResult } from './message-service-client';
import type { GatewayMetrics } from './metrics';

/** Requests one socket may have waiting on the message service at once. */
const MAX_IN_FLIGHT = 32;
/** Typing indicators relayed per socket and conversation, at most one per this interval. */
export const TYPING_INTERVAL_MS = 2000;

export interface FrameHandlerDeps {
  messageService: MessageServiceClient;
  router: EventRouter;
  bus: Bus;
  verifier: AccessTokenVerifier;
  metrics: GatewayMetrics;
  framesPerSecond: number;
}

/**
 * Handles one socket's frames: validates them, applies the per-connection rate limit,
 * and answers every request with exactly one `ack`, `pong` or `error` carrying its id.
 */
export class FrameHandler {
  private readonly limiter: RateLimiterMemory;
  /** Rejected frames per socket; too many within its window means a flood, and the socket is closed. */
  private readonly violations: RateLimiterMemory;

  constructor(private readonly deps: FrameHandlerDeps) {
    this.limiter = new RateLimiterMemory({ points: deps.framesPerSecond, duration: 1 });
    this.violations = new RateLimiterMemory({ points: deps.framesPerSecond, duration: 5 });
  }

  async handle(connection: ClientConnection, data: Buffer, isBinary: boolean): Promise<void> {
    if (isBinary) {
      this.deps.metrics.framesIn.inc({ type: 'invalid' });
      if (!(await this.withinRate(connection, undefined))) return;
      return this.fail(connection, undefined, 'VALIDATION_FAILED', 'Frames are JSON text, not binary.');
    }
    const parsed = parseClientFrame(data.toString('utf8'));
    // Every request gets its one reply, a refusal included; a sustained flood is closed.
    if (!(await this.withinRate(connection, parsed.ok ? parsed.frame.id : parsed.id))) return;
    if (!parsed.ok) {
      this.deps.metrics.framesIn.inc({ type: 'invalid' });
      return this.fail(connection, parsed.id, parsed.code, parsed.message);
    }
    this.deps.metrics.framesIn.inc({ type: parsed.frame.type });
    try {
      await this.dispatch(connection, parsed.frame);
    } catch (error) {
      const code = isParleyError(error) ? error.code : 'INTERNAL';
      this.fail(connection, parsed.frame.id, code, isParleyError(error) ? error.message : 'Internal error.');
    }
  }

  /** Frees the connection's rate-limit bucket. */
  forget(connection: ClientConnection): void {
    void this.limiter.delete(connection.id);
    void this.violations.delete(connection.id);
  }

  private async dispatch(connection: ClientConnection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        connection.sendFrame({ type: 'pong', id: frame.id });
        return;
      case 'typing':
        return this.typing(connection, frame.id, frame.conversationId);
      case 'auth':
        return this.reauthenticate(connection, frame.id, frame.token);
      case 'send': {
        const acked = this.deps.metrics.sendAck.startTimer();
        return this.callService(connection, frame.id, (token) =>
          this.deps.messageService.sendMessage(token, frame.conversationId, {
            clientMessageId: frame.clientMessageId,
            body: frame.body,
          }),
        ).then(
          (result) => {
            acked({ outcome: result ? 'ack' : 'error' });
            if (result) {
              const body = result as { message: Message; duplicate: boolean };
              connection.sendFrame({ type: 'ack', id: frame.id, message: body.message, duplicate: body.duplicate });
            }
          },
          (error: unknown) => {
            acked({ outcome: 'error' });
            throw error;
          },
        );
      }
      case 'read':
        return this.callService(connection, frame.id, (token) =>
          this.deps.messageService.markRead(token, frame.conversationId, frame.seq),
        ).then((result) => {
          if (result) connection.sendFrame({ type: 'ack', id: frame.id, readState: result as ReadState });
        });
    }
  }

  /**
   * Typing is ephemeral: checked against what this node knows of membership, published,
   * never stored. At most one per socket and conversation every TYPING_INTERVAL_MS is
   * relayed (a typing frame to a large group fans out to every member).
   */
  private async typing(connection: ClientConnection, id: string, conversationId: string): Promise<void> {
    if (!this.deps.router.isMember(connection, conversationId)) return this.fail(connection, id, 'NOT_A_MEMBER');
    const now = Date.now();
    if (now - connection.lastTypingAt(conversationId) < TYPING_INTERVAL_MS) {
      connection.sendFrame({ type: 'ack', id });
      return;
    }
    connection.markTyping(conversationId, now);
    const payload = encodeBusEvent({ v: 1, type: 'typing', conversationId, userId: connection.userId });
    try {
      await this.deps.metrics.timeRedis('publish', () =>
        this.deps.bus.publish(Channels.conversation(conversationId), payload),
      );
    } catch {
      return this.fail(connection, id, 'UNAVAILABLE', 'Typing could not be relayed; it is safe to ignore.');
    }
    connection.sendFrame({ type: 'ack', id });
  }

  /** A fresh access token on an open socket: same user and session, later expiry. */
  private async reauthenticate(connection: ClientConnection, id: string, token: string): Promise<void> {
    let claims;
    try {
      claims = await this.deps.verifier.verify(token);
    } catch (error) {
      return this.fail(connection, id, isParleyError(error) ? error.code : 'UNAUTHENTICATED');
    }
    if (claims.userId !== connection.userId || claims.sessionId !== connection.sessionId) {
      return this.fail(connection, id, 'UNAUTHENTICATED', 'The token belongs to another user or session.');
    }
    // The signature says nothing of revocation: the message service confirms the session.
    const routing = await this.deps.messageService.routing(token);
    if (!routing.ok) {
      connection.sendFrame({ type: 'error', id, code: routing.code, message: routing.message, retryable: routing.retryable });
      if (routing.code === 'SESSION_REVOKED') connection.close('SESSION_REVOKED');
      return;
    }
    connection.refreshToken(token, claims.expiresAt);
    connection.sendFrame({ type: 'ack', id, tokenExpiresAt: claims.expiresAt });
  }

  /** Forwards a request with the socket's token; replies with an error itself when it fails. */
  private async callService<T>(
    connection: ClientConnection,
    id: string,
    call: (token: string) => Promise<ServiceResult<T>>,
  ): Promise<T | undefined> {
    if (connection.inFlight >= MAX_IN_FLIGHT) {
      this.fail(connection, id, 'RATE_LIMITED', `At most ${MAX_IN_FLIGHT} requests may wait at once.`);
      return undefined;
    }
    connection.inFlight += 1;
    try {
      const result = await call(connection.token);
      if (result.ok) return result.body;
      connection.sendFrame({ type: 'error', id, code: result.code, message: result.message, retryable: result.retryable });
      // A revoked session or a token the service no longer accepts ends the socket too.
      if (result.code === 'SESSION_REVOKED') connection.close('SESSION_REVOKED');
      return undefined;
    } finally {
      connection.inFlight -= 1;
    }
  }

  /**
   * Applies the per-socket frame rate. A refused request is answered RATE_LIMITED (so
   * the client can retry it); more refusals than one second's allowance within five
   * seconds is a flood, and the socket is closed, which bounds the replies it can draw.
   */
  private async withinRate(connection: ClientConnection, requestId: string | undefined): Promise<boolean> {
    try {
      await this.limiter.consume(connection.id);
      return true;
    } catch {
      try {
        await this.violations.consume(connection.id);
        this.fail(connection, requestId, 'RATE_LIMITED');
      } catch {
        connection.close('RATE_LIMITED');
      }
      return false;
    }
  }

  private fail(connection: ClientConnection, id: string | undefined, code: ErrorCode, message?: string): void {
    const entry = ErrorCatalogue[code];
    connection.sendFrame({
      type: 'error',
      // An empty id is no request id (the protocol's ids have at least one character).
      ...(id === undefined || id === '' ? {} : { id }),
      code,
      message: message ?? entry.message,
      retryable: entry.retry !== 'never',
    });
  }
}
