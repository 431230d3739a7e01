import { randomBytes } from 'node:crypto';
import { httpRequest, startTopology, waitForReady, type GatewayHandle, type Topology, type TopologyOptions } from '@parley/deploy';
import {
  ParleyClient,
  type ConnectionStateChange,
  type Message,
  type ParleyClientError,
  type ParleyClientOptions,
  type ReadReceipt,
  type WebSocketConstructor,
} from '@parley/client';
import { WS_AUTH_SUBPROTOCOL_PREFIX, WS_SUBPROTOCOL } from '@parley/protocol';
import WebSocket from 'ws';
import { httpsFetch, type HttpsFetch } from './https-fetch';
import { Signal, within } from './wait';
import { check, formatReport, invariantCounters, zeroes, type CheckReport, type MemberView, type SendOutcome, type SendRecord } from '../../chaos/support/checker';

export const PASSWORD = 'correct horse battery staple';

/** Deadline of a single connect through nginx. */
const CONNECT_MS = 15_000;

/** The test run's database and Redis, from jest's global setup. */
export function testUrls(): { databaseUrl: string; redisUrl: string } {
  const databaseUrl = process.env['PARLEY_TEST_DATABASE_URL'];
  const redisUrl = process.env['PARLEY_TEST_REDIS_URL'];
  if (!databaseUrl || !redisUrl) throw new Error('test services missing: did jest globalSetup run?');
  return { databaseUrl, redisUrl };
}

/** A server frame as seen on the wire (loosely typed: tests look at any field). */
export interface WireFrame {
  type: string;
  id?: string;
  code?: string;
  nodeId?: string;
  [field: string]: unknown;
}

export interface FleetOptions extends Partial<TopologyOptions> {
  /** Names the bus prefix (each topology gets its own, so parallel files never hear each other). */
  name: string;
}

/**
 * One real topology (message service, gateway processes, nginx with TLS) and the SDK
 * clients a test made against it. `close()` stops everything it started, by PID.
 */
export class Fleet {
  readonly clients: FleetClient[] = [];
  readonly rawSockets: RawSocket[] = [];
  private userCount = 0;

  private constructor(
    readonly topology: Topology,
    readonly fetch: HttpsFetch,
    readonly name: string,
  ) {}

  static async start(options: FleetOptions): Promise<Fleet> {
    const { name, messageEnv, gatewayEnv, ...rest } = options;
    const { databaseUrl, redisUrl } = testUrls();
    const topology = await startTopology({
      // A test with a private (migrated) database or Redis passes its URL in `rest`.
      databaseUrl,
      redisUrl,
      gateways: 3,
      busPrefix: `parley-e2e-${name}:${randomBytes(4).toString('hex')}:`,
      logLevel: 'warn',
      drainWindowMs: 500,
      ...rest,
      // Every test registers its users from 127.0.0.1: lift the per-IP registration limit.
      messageEnv: { REGISTER_RATE_LIMIT_MAX: '100000', LOGIN_RATE_LIMIT_MAX: '100000', ...messageEnv },
      ...(gatewayEnv ? { gatewayEnv } : {}),
    });
    return new Fleet(topology, httpsFetch(topology.caCertPem), name);
  }

  /** The live gateway with this node id. */
  gateway(nodeId: string): GatewayHandle {
    const gateway = this.topology.gateways.find((candidate) => candidate.nodeId === nodeId);
    if (!gateway) throw new Error(`no gateway ${nodeId} in ${this.topology.gateways.map((g) => g.nodeId).join(', ')}`);
    return gateway;
  }

  /** An SDK client (not connected) whose sockets go through nginx over wss and trust the topology's CA. */
  newClient(label: string, options: Partial<ParleyClientOptions> = {}): FleetClient {
    const client = new FleetClient(label, this, options);
    this.clients.push(client);
    return client;
  }

  /** Registers a new user through nginx (https) and returns its client, logged in, not connected. */
  async register(label: string, options: Partial<ParleyClientOptions> = {}): Promise<FleetClient> {
    this.userCount += 1;
    const username = `${label.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 12)}_${this.userCount}_${randomBytes(3).toString('hex')}`;
    const client = this.newClient(label, options);
    const response = await client.client.register({ username, password: PASSWORD });
    client.user = { id: response.user.id, username };
    return client;
  }

  /** Registers `count` users, a few at a time (argon2 hashing is CPU bound). */
  async registerMany(prefix: string, count: number, options: Partial<ParleyClientOptions> = {}): Promise<FleetClient[]> {
    const users: FleetClient[] = new Array<FleetClient>(count);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const index = next++;
        users[index] = await this.register(`${prefix}${index}`, options);
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, count) }, worker));
    return users;
  }

  /** Another device of the same user: a new session (login) in a new client. */
  async login(of: FleetClient, label: string, options: Partial<ParleyClientOptions> = {}): Promise<FleetClient> {
    const client = this.newClient(label, options);
    const response = await client.client.login({ username: of.user.username, password: PASSWORD, deviceName: label });
    client.user = { id: response.user.id, username: of.user.username };
    return client;
  }

  /**
   * Connects clients one after the other, each through nginx, and waits for each one's
   * first complete sync (it anchors the SDK's ordering, so what follows arrives live).
   * nginx balances `/ws` with `least_conn` over a zone shared by its workers, so
   * consecutive connects on an otherwise idle fleet land on different nodes.
   */
  async connectAll(clients: readonly FleetClient[]): Promise<void> {
    for (const client of clients) {
      const syncs = client.syncs;
      await client.connect();
      await client.until(() => client.syncs > syncs, CONNECT_MS, 'the sync after connecting');
    }
  }

  /** Opens a raw WebSocket through nginx (wss) for wire-level tests. */
  openRaw(options: RawSocketOptions = {}): RawSocket {
    const socket = new RawSocket(this.topology.wssUrl, this.topology.caCertPem, options);
    this.rawSockets.push(socket);
    return socket;
  }

  /** `GET <gateway>/metrics` directly (not through nginx), one sample's value (0 when absent). */
  async metric(gateway: GatewayHandle, name: string, labels: Record<string, string> = {}): Promise<number> {
    const response = await httpRequest(`${gateway.url}/metrics`);
    const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
    let total = 0;
    for (const line of response.body.split('\n')) {
      if (!line.startsWith(name)) continue;
      const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (!match || match[1] !== name) continue;
      if (wanted.every((pair) => (match[2] ?? '').includes(pair))) total += Number(match[3]);
    }
    return total;
  }

  /** Resolves once a live gateway's /readyz reports `count` open sockets (closes take a round trip). */
  async waitForConnections(gateway: GatewayHandle, count: number, timeoutMs = 10_000): Promise<void> {
    await waitForReady(`${gateway.url}/readyz`, {
      timeoutMs,
      intervalMs: 25,
      isReady: (response) => (JSON.parse(response.body) as { connections?: number }).connections === count,
    });
  }

  /**
   * Closes every client and raw socket opened so far and waits until the live gateways
   * hold no socket, so the next test starts on an idle fleet (nginx's least_conn then
   * spreads consecutive connects over the nodes).
   */
  async closeClients(): Promise<void> {
    const clients = this.clients.splice(0);
    const raw = this.rawSockets.splice(0);
    await Promise.allSettled(clients.map((client) => client.close()));
    for (const socket of raw) socket.close();
    const live = this.topology.gateways.filter((gateway) => isRunning(gateway.pid));
    await Promise.all(live.map((gateway) => this.waitForConnections(gateway, 0)));
  }

  /** Closes every client and raw socket, then stops the topology (gateways, nginx, message service). */
  async close(): Promise<void> {
    await Promise.allSettled(this.clients.map((client) => client.close()));
    for (const socket of this.rawSockets) socket.terminate();
    this.fetch.close();
    await this.topology.stop({ removeWorkDir: process.env['PARLEY_E2E_KEEP_LOGS'] !== '1' });
  }
}

/**
 * A `ws` WebSocket that also reports every frame the server sends, so a test can see
 * what the SDK does not surface (the node of each `hello`, `resync` frames).
 */
function observedWebSocket(onFrame: (frame: WireFrame) => void): WebSocketConstructor {
  return class ObservedWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      super(address, protocols, options);
      this.on('message', (data, isBinary) => {
        if (isBinary) return;
        try {
          onFrame(JSON.parse(String(data)) as WireFrame);
        } catch {
          // Not JSON: the SDK reports it; nothing to observe.
        }
      });
    }
  };
}

export interface Delivery {
  message: Message;
  source: string;
}

/** A `ParleyClient` (the real SDK) plus a record of everything it emitted and every frame it received. */
export class FleetClient {
  readonly client: ParleyClient;
  user: { id: string; username: string } = { id: '', username: '' };
  /** Node id of every `hello`, in order. */
  readonly hellos: string[] = [];
  readonly frameCounts = new Map<string, number>();
  readonly delivered = new Map<string, Delivery[]>();
  readonly reads: Array<ReadReceipt & { at: number }> = [];
  readonly presence: Array<{ userId: string; online: boolean; at: number }> = [];
  readonly states: Array<ConnectionStateChange & { at: number }> = [];
  readonly errors: ParleyClientError[] = [];
  syncs = 0;
  /** The `syncs` count when each `resync` frame arrived (a later `synced` is the pull it caused). */
  readonly syncsAtResync: number[] = [];
  readonly changed = new Signal();

  constructor(
    readonly label: string,
    fleet: Fleet,
    options: Partial<ParleyClientOptions>,
  ) {
    const note = () => this.changed.notify();
    this.client = new ParleyClient({
      baseUrl: fleet.topology.httpsUrl,
      fetch: fleet.fetch,
      WebSocket: observedWebSocket((frame) => {
        this.frameCounts.set(frame.type, (this.frameCounts.get(frame.type) ?? 0) + 1);
        if (frame.type === 'hello' && typeof frame.nodeId === 'string') this.hellos.push(frame.nodeId);
        if (frame.type === 'resync') this.syncsAtResync.push(this.syncs);
        note();
      }),
      webSocketOptions: { ca: fleet.topology.caCertPem, perMessageDeflate: false },
      ...options,
    });
    this.client.on('message', (message, info) => {
      const list = this.delivered.get(message.conversationId) ?? [];
      list.push({ message, source: info.source });
      this.delivered.set(message.conversationId, list);
      note();
    });
    this.client.on('read', (receipt) => {
      this.reads.push({ ...receipt, at: Date.now() });
      note();
    });
    this.client.on('presence', (event) => {
      this.presence.push({ ...event, at: Date.now() });
      note();
    });
    this.client.on('connectionState', (change) => {
      this.states.push({ ...change, at: Date.now() });
      note();
    });
    this.client.on('synced', () => {
      this.syncs += 1;
      note();
    });
    this.client.on('error', (error) => {
      this.errors.push(error);
      note();
    });
  }

  /** The node of the latest `hello`. */
  get nodeId(): string | undefined {
    return this.hellos[this.hellos.length - 1];
  }

  frames(type: string): number {
    return this.frameCounts.get(type) ?? 0;
  }

  /** Connects through nginx and resolves with the node that said hello. */
  async connect(): Promise<string> {
    const before = this.hellos.length;
    await within(this.client.connect(), CONNECT_MS, `${this.label} connecting`);
    await this.until(() => this.hellos.length > before, CONNECT_MS, 'hello');
    return this.nodeId!;
  }

  /** What the SDK emitted as `message` for a conversation, in emission order. */
  messages(conversationId: string): Delivery[] {
    return this.delivered.get(conversationId) ?? [];
  }

  seqs(conversationId: string): number[] {
    return this.messages(conversationId).map((delivery) => delivery.message.seq);
  }

  /** Waits (event-driven) until `predicate` holds for this client. */
  until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return this.changed.until(predicate, timeoutMs, () => `${this.label} (${this.user.username}): ${what}`);
  }

  /** Waits until `count` messages of a conversation were emitted. */
  untilDelivered(conversationId: string, count: number, timeoutMs: number): Promise<void> {
    return this.until(
      () => this.messages(conversationId).length >= count,
      timeoutMs,
      `${count} messages (has ${this.messages(conversationId).length})`,
    );
  }

  /** Waits for the next complete pull (`synced`) after now. */
  async nextSync(timeoutMs: number): Promise<void> {
    const before = this.syncs;
    await this.until(() => this.syncs > before, timeoutMs, 'a complete sync');
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Every message a conversation holds, from the service (GET history, paged forward). */
export async function fullHistory(client: FleetClient, conversationId: string): Promise<Message[]> {
  const all: Message[] = [];
  let after = 0;
  for (;;) {
    const page = await client.client.rest.history(conversationId, { after, limit: 200 });
    all.push(...page.messages);
    if (page.messages.length === 0 || !page.hasMore) break;
    after = page.messages[page.messages.length - 1]!.seq;
  }
  return all;
}

// ---------------------------------------------------------------------------------------
// Traffic: clients sending in loops, and the ledger that accounts for every send.

export interface LedgerStats extends CheckReport {
  /** Messages the members' clients emitted, all together. */
  delivered: number;
}

/**
 * Every send a test made (by client message id) and its outcome: acked (with the stored
 * message), failed (an error reply), timed out, or still pending. The checker
 * (tests/chaos/support/checker.ts) reads it after the run.
 */
export class Ledger {
  readonly sent = new Map<string, { sender: string; body: string; conversationId: string }>();
  readonly acked = new Map<string, Message>();
  readonly failed = new Map<string, { code: string; retryable: boolean }>();
  readonly timedOut = new Set<string>();
  readonly changed = new Signal();

  noteSent(clientMessageId: string, sender: string, body: string, conversationId = ''): void {
    this.sent.set(clientMessageId, { sender, body, conversationId });
  }

  noteAcked(clientMessageId: string, message: Message): void {
    this.acked.set(clientMessageId, message);
    this.failed.delete(clientMessageId);
    this.timedOut.delete(clientMessageId);
    this.changed.notify();
  }

  noteFailed(clientMessageId: string, code: string, retryable: boolean): void {
    this.failed.set(clientMessageId, { code, retryable });
    this.changed.notify();
  }

  noteTimedOut(clientMessageId: string): void {
    this.timedOut.add(clientMessageId);
    this.changed.notify();
  }

  untilAcked(count: number, timeoutMs: number): Promise<void> {
    return this.changed.until(() => this.acked.size >= count, timeoutMs, `${count} acks (have ${this.acked.size})`);
  }

  /** The send log for the checker; a send without a conversation of its own belongs to `conversationId`. */
  records(conversationId: string): SendRecord[] {
    return [...this.sent].map(([clientMessageId, { sender, body, conversationId: own }]) => {
      const acked = this.acked.get(clientMessageId);
      const failed = this.failed.get(clientMessageId);
      const outcome: SendOutcome = acked
        ? { kind: 'acked', message: acked }
        : failed
          ? { kind: 'failed', ...failed }
          : this.timedOut.has(clientMessageId)
            ? { kind: 'timeout' }
            : { kind: 'pending' };
      return { clientMessageId, conversationId: own || conversationId, sender, body, outcome };
    });
  }
}

/**
 * One client sending messages one after another (the SDK retries each with the same
 * client message id until it is stored) while `more(i)` says so.
 */
export async function sendLoop(
  client: FleetClient,
  conversationId: string,
  ledger: Ledger,
  more: (index: number) => boolean,
): Promise<void> {
  const run = randomBytes(3).toString('hex');
  for (let index = 0; more(index); index += 1) {
    const clientMessageId = `${client.label}-${run}-${index}`;
    const body = `${client.label} says #${index}`;
    ledger.noteSent(clientMessageId, client.label, body, conversationId);
    const message = await client.client.send(conversationId, body, { clientMessageId });
    ledger.noteAcked(clientMessageId, message);
  }
}

/** Prints the accounting line (stdout, so it shows in the jest output). */
export function printStats(what: string, stats: CheckReport, extra: Record<string, string | number> = {}): void {
  process.stdout.write(`${formatReport(what, stats, extra)}\n`);
}

/** Ids of `clients` grouped by the node they are connected to. */
export function byNode(clients: readonly FleetClient[]): Map<string, FleetClient[]> {
  const nodes = new Map<string, FleetClient[]>();
  for (const client of clients) {
    const list = nodes.get(client.nodeId ?? '?') ?? [];
    list.push(client);
    nodes.set(client.nodeId ?? '?', list);
  }
  return nodes;
}

// ---------------------------------------------------------------------------------------
// Raw sockets, for the wire-level tests (bad input, refused upgrades).

export interface RawSocketOptions {
  token?: string;
  /** A raw Authorization header value (wins over `token`). */
  authorization?: string;
  origin?: string;
  /** Offer the token as the browser subprotocol instead of a header. */
  viaSubprotocol?: boolean;
}

export interface RefusedUpgrade {
  status: number;
  body: string;
}

/** A `ws` socket through nginx that records every frame and how it ended. */
export class RawSocket {
  readonly socket: WebSocket;
  readonly frames: WireFrame[] = [];
  readonly changed = new Signal();
  closeCode: number | undefined;
  refused: RefusedUpgrade | undefined;
  private nextId = 0;

  constructor(url: string, ca: string, options: RawSocketOptions) {
    const headers: Record<string, string> = {};
    if (options.authorization !== undefined) headers['authorization'] = options.authorization;
    else if (options.token !== undefined && !options.viaSubprotocol) headers['authorization'] = `Bearer ${options.token}`;
    const protocols = options.viaSubprotocol && options.token ? [WS_SUBPROTOCOL, WS_AUTH_SUBPROTOCOL_PREFIX + options.token] : [WS_SUBPROTOCOL];
    this.socket = new WebSocket(url, protocols, {
      ca,
      headers,
      perMessageDeflate: false,
      ...(options.origin === undefined ? {} : { origin: options.origin }),
    });
    this.socket.on('message', (data, isBinary) => {
      if (!isBinary) {
        try {
          this.frames.push(JSON.parse(String(data)) as WireFrame);
        } catch {
          this.frames.push({ type: '(not json)' });
        }
      }
      this.changed.notify();
    });
    this.socket.on('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        this.refused = { status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
        this.changed.notify();
      });
    });
    this.socket.on('error', () => this.changed.notify());
    this.socket.on('close', (code) => {
      this.closeCode = code;
      this.changed.notify();
    });
  }

  get hello(): WireFrame | undefined {
    return this.frames.find((frame) => frame.type === 'hello');
  }

  async opened(timeoutMs = CONNECT_MS): Promise<WireFrame> {
    await this.changed.until(
      () => this.hello !== undefined || this.closeCode !== undefined || this.refused !== undefined,
      timeoutMs,
      'hello',
    );
    if (!this.hello) throw new Error(`no hello: closed ${this.closeCode}, refused ${JSON.stringify(this.refused)}`);
    return this.hello;
  }

  async refusal(timeoutMs = CONNECT_MS): Promise<RefusedUpgrade> {
    await this.changed.until(() => this.refused !== undefined || this.hello !== undefined, timeoutMs, 'a refused upgrade');
    if (!this.refused) throw new Error('the upgrade was accepted');
    return this.refused;
  }

  async closed(timeoutMs = CONNECT_MS): Promise<number> {
    await this.changed.until(() => this.closeCode !== undefined, timeoutMs, 'the socket to close');
    return this.closeCode!;
  }

  sendText(text: string | Buffer): void {
    this.socket.send(text);
  }

  /** Sends a request frame with a fresh id and resolves with its reply (ack, pong or error). */
  async request(frame: Record<string, unknown>, timeoutMs = 10_000): Promise<WireFrame> {
    this.nextId += 1;
    const id = `q${this.nextId}`;
    this.socket.send(JSON.stringify({ ...frame, id }));
    return this.reply(id, timeoutMs);
  }

  async reply(id: string, timeoutMs = 10_000): Promise<WireFrame> {
    await this.changed.until(
      () => this.frames.some((frame) => frame.id === id) || this.closeCode !== undefined,
      timeoutMs,
      `the reply to ${id}`,
    );
    const reply = this.frames.find((frame) => frame.id === id);
    if (!reply) throw new Error(`socket closed (${this.closeCode}) before the reply to ${id}`);
    return reply;
  }

  /** Waits for a frame matching `predicate` (already received or coming). */
  async frame(predicate: (frame: WireFrame) => boolean, timeoutMs: number, what: string): Promise<WireFrame> {
    await this.changed.until(() => this.frames.some(predicate), timeoutMs, what);
    return this.frames.find(predicate)!;
  }

  close(): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(1000);
    else this.socket.terminate();
  }

  terminate(): void {
    this.socket.terminate();
  }
}

/** True while a process with this PID exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// A group conversation whose members are spread over the nodes, and the check that
// every acknowledged message reached the service and every member exactly once.

export interface SpreadGroup {
  members: FleetClient[];
  conversationId: string;
}

/** Registers `size` users in one group and connects them one after another through nginx. */
export async function spreadGroup(fleet: Fleet, prefix: string, size: number): Promise<SpreadGroup> {
  const members = await fleet.registerMany(prefix, size);
  const group = await members[0]!.client.rest.createGroup({
    title: `${prefix} group`,
    memberIds: members.slice(1).map((member) => member.user.id),
  });
  await fleet.connectAll(members);
  return { members, conversationId: group.id };
}

/**
 * Waits until every member's client holds every acked message (the SDK's own recovery:
 * reconnect, resync, gap repair), then pulls every member's full history from the message
 * service, runs the checker over the ledger, prints its line and asserts the invariants:
 * nothing acked lost, nothing duplicated or reordered, no gap, every member's history and
 * client the same. Unless `allowUnacked`, every send must also have been acked.
 */
export async function expectNothingLost(
  what: string,
  ledger: Ledger,
  group: SpreadGroup,
  timeoutMs = 30_000,
  options: { allowUnacked?: boolean; extra?: Record<string, string | number> } = {},
): Promise<LedgerStats> {
  const { members, conversationId } = group;
  const ackedSeqs = [...ledger.acked.values()].filter((message) => message.conversationId === conversationId).map((message) => message.seq);
  const waited = await Promise.allSettled(
    members.map((member) =>
      member.until(
        () => {
          const seen = new Set(member.seqs(conversationId));
          return ackedSeqs.every((seq) => seen.has(seq));
        },
        timeoutMs,
        `every acked message (has ${member.messages(conversationId).length} of ${ackedSeqs.length})`,
      ),
    ),
  );
  const views: MemberView[] = [];
  for (const member of members) {
    views.push({
      member: member.label,
      conversationId,
      history: await fullHistory(member, conversationId),
      delivered: member.messages(conversationId).map((delivery) => delivery.message),
    });
  }
  const report = check(ledger.records(conversationId), views);
  const stats: LedgerStats = { ...report, delivered: views.reduce((sum, view) => sum + (view.delivered?.length ?? 0), 0) };
  printStats(what, stats, { delivered: stats.delivered, members: members.length, ...options.extra });

  const failures = waited.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
  expect(failures.map((failure) => String(failure.reason))).toEqual([]);
  expect(invariantCounters(report)).toEqual(zeroes());
  if (!options.allowUnacked) expect({ acked: report.acked, failed: report.failed, timedOut: report.timedOut }).toEqual({ acked: report.sent, failed: 0, timedOut: 0 });
  return stats;
}
