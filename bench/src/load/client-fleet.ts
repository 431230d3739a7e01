import { isIP } from 'node:net';
import { connect as tlsConnect, createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import { httpRequest } from '@parley/deploy';
import WebSocket from 'ws';
import { nowUs, sleep } from './clock';
import { Histogram } from './histogram';
import type { ClientSpec, ConnectReport, Receipt, WorkerPlan, WorkerResult, WorkerStatus } from './ipc';
import { runAtFixedRate } from './rate';
import { SeqSet } from './seq-set';

/** The protocol's version subprotocol, offered with header auth as docs/protocol.md recommends. */
const SUBPROTOCOL = 'parley.v1';
/** How often unanswered sends are checked against their deadline (one sweep, not a timer per send). */
const SWEEP_MS = 250;

interface PendingSend {
  client: LoadClient;
  id: string;
  conversationId: string;
  sentUs: number;
  /** Sent at or after the measurement start: its latency is recorded. */
  measured: boolean;
}

/** What the fast path reads out of a `message` push without parsing all of it. */
interface Push {
  conversationId: string;
  seq: number;
  senderId: string;
  sentUs: number | undefined;
}

const PUSH_PREFIX = '{"type":"message",';

function stringField(text: string, name: string, from: number): string | undefined {
  const key = `"${name}":"`;
  const at = text.indexOf(key, from);
  if (at < 0) return undefined;
  const start = at + key.length;
  const end = text.indexOf('"', start);
  return end < 0 ? undefined : text.slice(start, end);
}

/**
 * Reads a `message` push by scanning for the few fields the generator needs. At hundreds
 * of thousands of deliveries a second a full JSON.parse of every frame would make the
 * generator the bottleneck; frames this scan does not recognise go through JSON.parse.
 */
export function scanPush(text: string): Push | undefined {
  if (!text.startsWith(PUSH_PREFIX)) return undefined;
  const inner = text.indexOf('"message":{');
  if (inner < 0) return undefined;
  const conversationId = stringField(text, 'conversationId', inner);
  const senderId = stringField(text, 'senderId', inner);
  const seqAt = text.indexOf('"seq":', inner);
  if (!conversationId || !senderId || seqAt < 0) return undefined;
  const seq = parseInt(text.slice(seqAt + 6, seqAt + 26), 10);
  if (!Number.isSafeInteger(seq)) return undefined;
  const bodyAt = text.indexOf('"body":"t', inner);
  let sentUs: number | undefined;
  if (bodyAt >= 0) {
    const value = parseFloat(text.slice(bodyAt + 9, bodyAt + 40));
    if (Number.isFinite(value)) sentUs = value;
  }
  return { conversationId, seq, senderId, sentUs };
}

function count(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

class LoadClient {
  socket: WebSocket | undefined;
  open = false;
  inFlight = 0;
  private nextRequest = 0;
  private nextMessage = 0;
  /** Which of [url, ...fallbackUrls] the next connect uses. */
  urlIndex = 0;
  readonly live = new Map<string, SeqSet>();
  readonly synced = new Map<string, SeqSet>();
  /** Per conversation, pushes of a seq already pushed to this socket. */
  readonly duplicates = new Map<string, number>();
  everOpened = false;
  dropped = false;
  droppedAtUs = 0;
  recovering = false;
  /**
   * The last TLS session ticket nginx gave this client: a reconnect resumes the session, as
   * browsers and mobile TLS stacks do, instead of paying a full handshake on both sides.
   */
  private tlsSession: Buffer | undefined;

  constructor(
    readonly spec: ClientSpec,
    readonly fleet: ClientFleet,
  ) {
    for (const conversationId of spec.conversations) this.live.set(conversationId, new SeqSet());
  }

  get urls(): string[] {
    return [this.spec.url, ...this.spec.fallbackUrls];
  }

  /** Opens the socket and resolves on `hello`; rejects with a short reason. */
  connect(): Promise<void> {
    const url = this.urls[this.urlIndex % this.urls.length]!;
    const plan = this.fleet.plan;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, [SUBPROTOCOL], {
        headers: { authorization: `Bearer ${this.spec.accessToken}` },
        localAddress: this.spec.localAddress,
        perMessageDeflate: false,
        handshakeTimeout: plan.handshakeTimeoutMs,
        // One secure context for every socket: building one from the CA PEM per handshake
        // costs the generator more CPU than the handshake itself (ws hands it to tls.connect).
        ...(url.startsWith('wss:') && this.fleet.secureContext ? ({ secureContext: this.fleet.secureContext } as WebSocket.ClientOptions) : {}),
        ...(url.startsWith('wss:') ? ({ createConnection: (options: ConnectionOptions) => this.resumingTlsConnect(options) } as WebSocket.ClientOptions) : {}),
      });
      this.socket = socket;
      let settled = false;
      let opened = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        socket.removeAllListeners('message');
        socket.terminate();
        reject(new Error(reason));
      };
      socket.once('unexpected-response', (_request, response) => fail(`http-${response.statusCode ?? 0}`));
      socket.on('error', (error: NodeJS.ErrnoException) =>
        fail(/timeout/i.test(error.message) ? 'timeout' : (error.code ?? error.message.slice(0, 40))),
      );
      socket.once('close', (code) => {
        if (!settled) fail(`closed-${code}`);
        else if (opened) this.onClose(socket, code);
      });
      socket.on('message', (data: Buffer) => {
        const text = data.toString();
        if (!settled) {
          if (!text.startsWith('{"type":"hello"')) {
            // docs/protocol.md says hello comes first; count it, and keep what it carried.
            this.fleet.framesBeforeHello += 1;
            this.fleet.onFrame(this, text);
            return;
          }
          settled = true;
          opened = true;
          this.open = true;
          this.everOpened = true;
          resolve();
          return;
        }
        this.fleet.onFrame(this, text);
      });
    });
  }

  /** ws's own TLS connect (servername as ws sets it), offering and keeping the session ticket. */
  private resumingTlsConnect(options: ConnectionOptions) {
    const host = options.host ?? '';
    const tlsSocket = tlsConnect({
      ...options,
      servername: options.servername ?? (isIP(host) ? '' : host),
      ...(this.tlsSession ? { session: this.tlsSession } : {}),
    });
    tlsSocket.on('session', (session: Buffer) => (this.tlsSession = session));
    return tlsSocket;
  }

  private onClose(socket: WebSocket, code: number): void {
    if (socket !== this.socket) return;
    this.open = false;
    this.fleet.failPendingOf(this);
    if (this.fleet.closing) return;
    count(this.fleet.closes, String(code));
    if (!this.dropped) this.fleet.reconnectStats.dropped += 1;
    this.dropped = true;
    this.droppedAtUs = nowUs();
    if (this.fleet.plan.reconnect) {
      this.recovering = true;
      // Move off the node that dropped us; nginx (a single URL) picks a live one itself.
      this.urlIndex += 1;
      void this.fleet.recover(this);
    }
  }

  send(conversationId: string): PendingSend {
    const id = String(this.nextRequest++);
    const clientMessageId = `${this.fleet.plan.runId}-${this.spec.index}-${this.nextMessage++}`;
    const sentUs = nowUs();
    const head = `t${sentUs.toFixed(1)}|`;
    const body = head + 'x'.repeat(Math.max(0, this.fleet.plan.bodyBytes - head.length));
    this.socket!.send(JSON.stringify({ type: 'send', id, conversationId, clientMessageId, body }));
    this.inFlight += 1;
    return { client: this, id, conversationId, sentUs, measured: sentUs >= this.fleet.measureFromUs };
  }
}

/**
 * The clients of one worker process: connects them with bounded concurrency, sends at a
 * fixed offered rate, and keeps what the check and the report need (acked seqs, what each
 * socket was pushed, latencies). One instance per process; the parent merges them.
 */
export class ClientFleet {
  readonly clients: LoadClient[];
  private readonly senders: LoadClient[];
  private readonly pending = new Map<string, PendingSend>();
  private readonly sweeper: NodeJS.Timeout;
  closing = false;
  measureFromUs = Infinity;
  framesBeforeHello = 0;
  private nextToConnect = 0;
  readonly secureContext: SecureContext | undefined;
  readonly closes: Record<string, number> = {};
  private readonly sends: WorkerResult['sends'] = {
    sent: 0,
    acked: 0,
    ackedInWindow: 0,
    failed: {},
    timedOut: 0,
    closedBeforeReply: 0,
    notSent: {},
    duplicateAcks: 0,
  };
  private readonly ackLatency = new Histogram();
  private readonly deliverLatency = new Histogram();
  private lag = new Histogram();
  private scheduled = 0;
  private readonly deliveries = { total: 0, inWindow: 0, unexpected: 0, lastUs: 0 };
  private readonly acked = new Map<string, number[]>();
  readonly reconnectStats = { dropped: 0, reconnected: 0, caughtUp: 0, syncErrors: 0, lastCaughtUpUs: 0 };
  /** Reconnect attempts that failed, by reason (`http-503`, `ECONNREFUSED`, ...): each one doubles that client's backoff. */
  private readonly failedReconnects: Record<string, number> = {};
  private readonly reconnectLatency = new Histogram();
  private readonly caughtUpLatency = new Histogram();
  private roundRobin = 0;

  constructor(readonly plan: WorkerPlan) {
    this.clients = plan.clients.map((spec) => new LoadClient(spec, this));
    this.senders = this.clients.filter((client) => client.spec.sendsTo !== undefined);
    this.secureContext = plan.caCertPem ? createSecureContext({ ca: plan.caCertPem }) : undefined;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
  }

  /** Connects the next `howMany` clients not yet tried (all of them by default); reports this call only. */
  async connect(howMany = Infinity): Promise<ConnectReport> {
    const stop = Math.min(this.clients.length, this.nextToConnect + howMany);
    const report: Omit<ConnectReport, 'latency' | 'framesBeforeHello'> = { attempted: 0, connected: 0, failed: {}, firstAttemptUs: 0, lastHelloUs: 0 };
    const latency = new Histogram();
    const before = this.framesBeforeHello;
    const lane = async () => {
      while (this.nextToConnect < stop) {
        const client = this.clients[this.nextToConnect++]!;
        const started = nowUs();
        if (report.firstAttemptUs === 0) report.firstAttemptUs = started;
        report.attempted += 1;
        try {
          await client.connect();
          const opened = nowUs();
          report.connected += 1;
          latency.record(opened - started);
          report.lastHelloUs = Math.max(report.lastHelloUs, opened);
        } catch (error) {
          count(report.failed, (error as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.plan.connectConcurrency, stop - this.nextToConnect)) }, lane));
    return { ...report, framesBeforeHello: this.framesBeforeHello - before, latency: latency.toData() };
  }

  /** Sends at `ratePerSecond` from startUs until endUs, round-robin over this worker's senders. */
  async run(ratePerSecond: number, startUs: number, measureFromUs: number, endUs: number): Promise<number> {
    this.measureFromUs = measureFromUs;
    if (this.senders.length === 0 || ratePerSecond <= 0) return 0;
    const outcome = await runAtFixedRate({
      ratePerSecond,
      startUs,
      endUs,
      onSend: () => {
        const client = this.senders[this.roundRobin++ % this.senders.length]!;
        if (!client.open) return count(this.sends.notSent, 'disconnected');
        if (client.inFlight >= this.plan.maxInFlightPerSocket) return count(this.sends.notSent, 'backpressure');
        const pending = client.send(client.spec.sendsTo!);
        this.pending.set(`${client.spec.index}:${pending.id}`, pending);
        this.sends.sent += 1;
      },
    });
    this.lag = outcome.lag;
    this.scheduled += outcome.scheduled;
    return outcome.scheduled;
  }

  onFrame(client: LoadClient, text: string): void {
    const push = scanPush(text);
    if (push) return this.onPush(client, push);
    let frame: {
      type?: string;
      id?: string;
      code?: string;
      duplicate?: boolean;
      conversationId?: string;
      message?: { conversationId: string; seq: number; senderId: string; body: string | null };
    };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      return count(this.sends.failed, 'MALFORMED_SERVER_FRAME');
    }
    if (frame.type === 'message' && frame.message) {
      const sent = frame.message.body?.startsWith('t') ? parseFloat(frame.message.body.slice(1)) : NaN;
      return this.onPush(client, {
        conversationId: frame.message.conversationId,
        seq: frame.message.seq,
        senderId: frame.message.senderId,
        sentUs: Number.isFinite(sent) ? sent : undefined,
      });
    }
    if ((frame.type !== 'ack' && frame.type !== 'error') || frame.id === undefined) return;
    const key = `${client.spec.index}:${frame.id}`;
    const pending = this.pending.get(key);
    if (!pending) return;
    this.pending.delete(key);
    client.inFlight -= 1;
    const now = nowUs();
    if (frame.type === 'error') return count(this.sends.failed, frame.code ?? 'ERROR');
    if (!frame.message) return count(this.sends.failed, 'ACK_WITHOUT_MESSAGE');
    this.sends.acked += 1;
    if (now >= this.measureFromUs) this.sends.ackedInWindow += 1;
    if (frame.duplicate) this.sends.duplicateAcks += 1;
    if (pending.measured) this.ackLatency.record(now - pending.sentUs);
    let seqs = this.acked.get(pending.conversationId);
    if (!seqs) this.acked.set(pending.conversationId, (seqs = []));
    seqs.push(frame.message.seq);
  }

  private onPush(client: LoadClient, push: Push): void {
    const now = nowUs();
    const deliveries = this.deliveries;
    deliveries.total += 1;
    deliveries.lastUs = now;
    if (now >= this.measureFromUs) deliveries.inWindow += 1;
    let seqs = client.live.get(push.conversationId);
    if (!seqs) {
      deliveries.unexpected += 1;
      client.live.set(push.conversationId, (seqs = new SeqSet()));
    }
    if (!seqs.add(push.seq)) client.duplicates.set(push.conversationId, (client.duplicates.get(push.conversationId) ?? 0) + 1);
    // Send→deliver is what another member sees; the sender's own copy is not a delivery to someone else.
    if (push.sentUs !== undefined && push.senderId !== client.spec.userId && push.sentUs >= this.measureFromUs) {
      this.deliverLatency.record(now - push.sentUs);
    }
  }

  /** Sends past their deadline have an unknown outcome: counted, and their slot freed. */
  private sweep(): void {
    const deadline = nowUs() - this.plan.ackTimeoutMs * 1000;
    // Insertion order is send order, so the expired ones are at the front.
    for (const [key, pending] of this.pending) {
      if (pending.sentUs > deadline) break;
      this.pending.delete(key);
      pending.client.inFlight -= 1;
      this.sends.timedOut += 1;
    }
  }

  failPendingOf(client: LoadClient): void {
    for (const [key, pending] of this.pending) {
      if (pending.client !== client) continue;
      this.pending.delete(key);
      this.sends.closedBeforeReply += 1;
    }
    client.inFlight = 0;
  }

  /**
   * Reconnects a dropped client with the protocol's backoff (a delay drawn from [d/2, d),
   * d = min(30 s, 0.5 s × 2^attempt)), then catches up with POST /v1/sync from the seqs it
   * holds, as docs/protocol.md asks of every client after a reconnect.
   */
  async recover(client: LoadClient): Promise<void> {
    for (let attempt = 0; !this.closing; attempt += 1) {
      const d = Math.min(30_000, 500 * 2 ** attempt);
      await sleep(d / 2 + Math.random() * (d / 2));
      if (this.closing) return;
      try {
        await client.connect();
        break;
      } catch (error) {
        count(this.failedReconnects, (error as Error).message);
        client.urlIndex += 1;
      }
    }
    if (this.closing) return;
    this.reconnectStats.reconnected += 1;
    this.reconnectLatency.record(nowUs() - client.droppedAtUs);
    for (let attempt = 0; attempt < 10 && !this.closing; attempt += 1) {
      try {
        await this.syncOnce(client);
        const now = nowUs();
        client.recovering = false;
        this.reconnectStats.caughtUp += 1;
        this.reconnectStats.lastCaughtUpUs = Math.max(this.reconnectStats.lastCaughtUpUs, now);
        this.caughtUpLatency.record(now - client.droppedAtUs);
        return;
      } catch {
        this.reconnectStats.syncErrors += 1;
        await sleep(250 * (attempt + 1));
      }
    }
  }

  private async syncOnce(client: LoadClient): Promise<void> {
    // The generator's conversations only ever get sends, so a message's rev equals its seq:
    // the contiguous prefix of what the client holds is the rev it has fully applied.
    let cursors = client.spec.conversations.map((conversationId) => {
      const live = client.live.get(conversationId)!;
      const synced = client.synced.get(conversationId);
      let rev = live.prefix();
      while (live.has(rev + 1) || synced?.has(rev + 1)) rev += 1;
      return { conversationId, rev };
    });
    for (let page = 0; page < 10_000; page += 1) {
      const url = new URL('/v1/sync', this.plan.apiUrl).toString();
      const response = await httpRequest(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${client.spec.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ cursors, limit: 1000 }),
        ...(this.plan.caCertPem && url.startsWith('https:') ? { ca: this.plan.caCertPem } : {}),
        timeoutMs: 10_000,
      });
      if (response.status !== 200) throw new Error(`sync: ${response.status}`);
      const body = JSON.parse(response.body) as {
        messages: Array<{ conversationId: string; seq: number }>;
        cursors: Array<{ conversationId: string; rev: number }>;
        hasMore: boolean;
      };
      for (const message of body.messages) {
        let set = client.synced.get(message.conversationId);
        if (!set) client.synced.set(message.conversationId, (set = new SeqSet()));
        set.add(message.seq);
      }
      const next = new Map(cursors.map((cursor) => [cursor.conversationId, cursor.rev]));
      for (const cursor of body.cursors) next.set(cursor.conversationId, cursor.rev);
      cursors = [...next].map(([conversationId, rev]) => ({ conversationId, rev }));
      if (!body.hasMore) return;
    }
  }

  status(): WorkerStatus {
    let open = 0;
    let recovering = 0;
    for (const client of this.clients) {
      if (client.open) open += 1;
      if (client.recovering) recovering += 1;
    }
    return {
      open,
      pendingAcks: this.pending.size,
      deliveries: this.deliveries.total,
      lastDeliveryUs: this.deliveries.lastUs,
      recovering,
    };
  }

  result(): WorkerResult {
    const receipts: Receipt[] = [];
    for (const client of this.clients) {
      // Only sockets that opened are expected to receive anything.
      if (!client.everOpened) continue;
      for (const [conversationId, live] of client.live) {
        receipts.push({
          client: client.spec.index,
          userId: client.spec.userId,
          conversationId,
          live: live.toData(),
          synced: client.synced.get(conversationId)?.toData() ?? [],
          duplicates: client.duplicates.get(conversationId) ?? 0,
          dropped: client.dropped,
        });
      }
    }
    return {
      sends: this.sends,
      ack: this.ackLatency.toData(),
      deliver: this.deliverLatency.toData(),
      lag: this.lag.toData(),
      scheduled: this.scheduled,
      deliveries: this.deliveries,
      closes: this.closes,
      acked: Object.fromEntries(this.acked),
      receipts,
      reconnect: {
        ...this.reconnectStats,
        failedAttempts: this.failedReconnects,
        reconnectLatency: this.reconnectLatency.toData(),
        caughtUpLatency: this.caughtUpLatency.toData(),
      },
    };
  }

  close(): void {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const client of this.clients) client.socket?.terminate();
  }
}
