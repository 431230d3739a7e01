import { CloseCodes, type CloseCodeName, type ServerFrame } from '@parley/protocol';
import type { WebSocket } from 'ws';
import type { GatewayMetrics } from './metrics';
import type { ExpiryWheel } from './expiry-wheel';
import type { WriteCoalescer } from './write-coalescer';

/** A frame serialized once, to be sent as-is to any number of sockets. */
export interface EncodedFrame {
  type: ServerFrame['type'];
  data: Buffer;
}

export function encodeFrame(frame: ServerFrame): EncodedFrame {
  return { type: frame.type, data: Buffer.from(JSON.stringify(frame), 'utf8') };
}

/** How long a close handshake may take before the socket is cut (a slow reader never answers). */
const CLOSE_GRACE_MS = 2000;

/** Connection ids only need to be unique within this process (they key the rate limiter). */
let lastConnectionId = 0;

/**
 * One client socket and what the gateway knows about it. Outbound data is counted:
 * when what waits to be written passes the limit, the client is a slow consumer and
 * is closed, so one slow reader can never grow the node's memory.
 */
export class ClientConnection {
  /** A number, not a UUID: a node holds tens of thousands of these. */
  readonly id = ++lastConnectionId;
  /** Bus channels this socket listens to (kept by the router). */
  readonly channels = new Set<string>();
  /** False between a ping and its pong. */
  alive = true;
  /** Requests sent to the message service and not answered yet. */
  inFlight = 0;
  /**
   * Conversations this user joined late: messages up to this seq are not theirs to see.
   * Like `lastTyping`, created on first use: most sockets never need one.
   */
  private joinedSeqs: Map<string, number> | null = null;
  /** When this socket last had a typing indicator relayed, per conversation. */
  private lastTyping: Map<string, number> | null = null;
  private closing = false;
  /**
   * Frames sent before `hello` wait here: events of channels subscribed while the socket
   * is being set up must not reach the client before the frame that says it is open
   * (docs/protocol.md). Null once `hello` is out.
   */
  private held: EncodedFrame[] | null = [];
  private heldBytes = 0;

  constructor(
    readonly socket: WebSocket,
    readonly userId: string,
    readonly sessionId: string,
    public token: string,
    public tokenExpiresAt: number,
    private readonly sendBufferMaxBytes: number,
    private readonly metrics: GatewayMetrics,
    private readonly coalescer: WriteCoalescer,
    /** Closes the socket (4001) when its token expires unrefreshed. */
    private readonly expiries: ExpiryWheel<ClientConnection>,
  ) {
    this.expiries.set(this, tokenExpiresAt);
  }

  /** The seq up to which this user may not see the conversation's messages (0: all of them). */
  joinedSeq(conversationId: string): number {
    return this.joinedSeqs?.get(conversationId) ?? 0;
  }

  /** Records a late join (seq > 0) or clears it (0). */
  setJoinedSeq(conversationId: string, seq: number): void {
    if (seq > 0) (this.joinedSeqs ??= new Map()).set(conversationId, seq);
    else this.joinedSeqs?.delete(conversationId);
  }

  /** Replaces every late join with those of fresh routing. */
  resetJoinedSeqs(joinedSeqs: Record<string, number>): void {
    this.joinedSeqs = null;
    for (const [conversationId, seq] of Object.entries(joinedSeqs)) this.setJoinedSeq(conversationId, seq);
  }

  /** When a typing indicator of this socket was last relayed to the conversation (0: never). */
  lastTypingAt(conversationId: string): number {
    return this.lastTyping?.get(conversationId) ?? 0;
  }

  markTyping(conversationId: string, at: number): void {
    (this.lastTyping ??= new Map()).set(conversationId, at);
  }

  get isOpen(): boolean {
    return !this.closing && this.socket.readyState === this.socket.OPEN;
  }

  /** Sends one frame and counts it. */
  send(frame: EncodedFrame): boolean {
    const written = this.write(frame);
    if (written) this.metrics.framesOut.inc({ type: frame.type });
    return written;
  }

  /**
   * Sends one frame without counting it: a fan-out loop counts its frames once per event
   * (a labelled counter costs more per call than the write it counts).
   */
  write(frame: EncodedFrame): boolean {
    if (!this.isOpen) return false;
    const bytes = frame.data.length;
    if (this.held) {
      this.heldBytes += bytes;
      if (this.heldBytes > this.sendBufferMaxBytes) return this.cutSlowConsumer();
      this.held.push(frame);
      return true;
    }
    // Bytes held for this turn's single write are not a slow reader's: write them, then judge.
    if (this.socket.bufferedAmount + bytes > this.sendBufferMaxBytes) {
      if (!this.coalescer.release(this.socket) || this.socket.bufferedAmount + bytes > this.sendBufferMaxBytes) {
        return this.cutSlowConsumer();
      }
    }
    this.coalescer.hold(this.socket);
    this.socket.send(frame.data, { binary: false });
    return true;
  }

  private cutSlowConsumer(): false {
    this.metrics.slowConsumerCloses.inc();
    this.close('SLOW_CONSUMER');
    return false;
  }

  sendFrame(frame: ServerFrame): boolean {
    return this.send(encodeFrame(frame));
  }

  /** Sends `hello`, then whatever was sent to this socket while it was being set up, in order. */
  start(hello: Extract<ServerFrame, { type: 'hello' }>): void {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    if (!this.sendFrame(hello)) return;
    // Counted when they were sent (and held): written now, not counted again.
    for (const frame of held) if (!this.write(frame)) return;
  }

  /** Replaces the token after an in-band refresh and re-arms the expiry close. */
  refreshToken(token: string, expiresAt: number): void {
    // The refresh answer may come after the socket closed: it must not go back on the wheel.
    if (this.closing) return;
    this.token = token;
    this.tokenExpiresAt = expiresAt;
    this.expiries.set(this, expiresAt);
  }

  /** Closes with a documented code; cuts the socket if the peer does not complete the handshake. */
  close(name: CloseCodeName, reason = ''): void {
    if (this.closing) return;
    this.closing = true;
    this.expiries.remove(this);
    const { code } = CloseCodes[name];
    this.metrics.closes.inc({ code: String(code) });
    try {
      this.socket.close(code, reason || name);
    } catch {
      this.socket.terminate();
      return;
    }
    setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Called once the socket has closed, whoever closed it. */
  dispose(): void {
    this.closing = true;
    this.expiries.remove(this);
  }
}
