import type { HistogramData } from './histogram';

/** What the parent tells a worker process about each client it runs. */
export interface ClientSpec {
  /** Index of the client in the whole run (stable across workers). */
  index: number;
  userId: string;
  accessToken: string;
  /** The WebSocket URL it connects to first (a gateway directly, or nginx). */
  url: string;
  /** Where it goes when that URL drops or refuses it (reconnect), tried in turn. */
  fallbackUrls: string[];
  /** Source address of its TCP connection: 127.0.0.x spreads the ephemeral port space. */
  localAddress: string;
  /** Conversations whose pushes it must receive: the check expects every acked message of each. */
  conversations: string[];
  /** The conversation it sends into, when it is one of the senders. */
  sendsTo?: string;
}

export interface WorkerPlan {
  runId: string;
  worker: number;
  clients: ClientSpec[];
  /** CA to trust for wss:// (nginx's self-signed certificate). */
  caCertPem?: string;
  /** Handshakes in flight at once in this worker. */
  connectConcurrency: number;
  handshakeTimeoutMs: number;
  ackTimeoutMs: number;
  /** Sends waiting for their ack on one socket before the next is skipped (the gateway allows 32). */
  maxInFlightPerSocket: number;
  /** Length of each message body (it starts with the send instant). */
  bodyBytes: number;
  /** Reconnect dropped sockets with backoff and catch up with POST /v1/sync. */
  reconnect: boolean;
  /** The message service (or nginx) base URL, for sync. */
  apiUrl: string;
}

export interface ConnectReport {
  attempted: number;
  connected: number;
  /** Failures by reason: `http-<status>`, `timeout`, `closed-<code>` or a socket error code. */
  failed: Record<string, number>;
  /** Handshake start to `hello`, µs. */
  latency: HistogramData;
  firstAttemptUs: number;
  lastHelloUs: number;
  /** Server frames that came before `hello` (the protocol says hello is first). */
  framesBeforeHello: number;
}

export interface WorkerStatus {
  open: number;
  pendingAcks: number;
  deliveries: number;
  lastDeliveryUs: number;
  /** Dropped clients not yet reconnected and synced (reconnect mode). */
  recovering: number;
}

export interface Receipt {
  client: number;
  userId: string;
  conversationId: string;
  /** SeqSet data of the seqs pushed live. */
  live: number[];
  /** SeqSet data of the seqs recovered by sync after a reconnect. */
  synced: number[];
  /** Pushes of a seq this socket had already been pushed. */
  duplicates: number;
  /** The socket dropped at some point (and, without reconnect, stayed down). */
  dropped: boolean;
}

export interface WorkerResult {
  sends: {
    sent: number;
    acked: number;
    /** Acks received at or after the measurement start. */
    ackedInWindow: number;
    failed: Record<string, number>;
    timedOut: number;
    closedBeforeReply: number;
    /** Sends that were due but not made, by reason (`disconnected`, `backpressure`). */
    notSent: Record<string, number>;
    /** Acks saying `duplicate: true` (the generator never repeats an id, so: none expected). */
    duplicateAcks: number;
  };
  ack: HistogramData;
  deliver: HistogramData;
  lag: HistogramData;
  scheduled: number;
  deliveries: { total: number; inWindow: number; unexpected: number; lastUs: number };
  /** Closes the generator did not ask for, by code. */
  closes: Record<string, number>;
  /** Seqs acked to this worker's senders, per conversation. */
  acked: Record<string, number[]>;
  receipts: Receipt[];
  reconnect: {
    dropped: number;
    reconnected: number;
    caughtUp: number;
    syncErrors: number;
    /** Failed reconnect attempts, by reason. */
    failedAttempts: Record<string, number>;
    /** Drop to `hello` on the new socket, µs. */
    reconnectLatency: HistogramData;
    /** Drop to the end of the catch-up sync, µs. */
    caughtUpLatency: HistogramData;
    lastCaughtUpUs: number;
  };
}

export type ToWorker =
  | { id: number; type: 'init'; plan: WorkerPlan }
  | { id: number; type: 'connect'; count?: number }
  | { id: number; type: 'run'; ratePerSecond: number; startUs: number; measureFromUs: number; endUs: number }
  | { id: number; type: 'status' }
  | { id: number; type: 'collect' }
  | { id: number; type: 'close' };

export type FromWorker =
  | { id: number; type: 'ok' }
  | { id: number; type: 'connected'; report: ConnectReport }
  | { id: number; type: 'ran'; scheduled: number }
  | { id: number; type: 'status'; status: WorkerStatus }
  | { id: number; type: 'collected'; result: WorkerResult }
  | { id: number; type: 'failed'; error: string };
