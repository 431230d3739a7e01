// The k6 load scripts (tests/load/k6) cannot run here: k6 is not installable. They are
// type-checked against @types/k6 (`tsc -p tests/load/k6`), and this file keeps the
// protocol they speak identical to Parley's: every REST request and WebSocket frame they
// build comes from tests/load/k6/lib/frames.js, which is loaded here as k6 loads it and
// checked against the schemas the gateway and the message service enforce, the served
// OpenAPI document, and a real gateway in front of a real message service.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  AddMembersBody,
  CreateDirectBody,
  CreateGroupBody,
  Limits,
  LoginBody,
  parseClientFrame,
  RefreshBody,
  RegisterBody,
  SendMessageBody,
  SyncBody,
  Username,
  WS_SUBPROTOCOL,
  type ServerFrame,
} from '@parley/protocol';
import ts from 'typescript';
import { WebSocket } from 'ws';
import { startGatewayHarness, TestClient, within, WAIT_MS, type GatewayHarness, type GatewayNode } from '../support/gateway-harness';
import { HARNESS_START_TIMEOUT_MS } from '../support/message-harness';

jest.setTimeout(60_000);

const K6_DIR = join(__dirname, 'k6');
const FRAMES_PATH = join(K6_DIR, 'lib', 'frames.js');

// --- The shape of frames.js, as this test uses it (the file itself is JavaScript) ---

type Method = 'GET' | 'POST';
interface RestRequest {
  name: string;
  method: Method;
  path: string;
  body: object | null;
  token: string | null;
}
interface Tokens {
  userId: string;
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt: number;
}
interface ConversationState {
  id: string;
  kind: string;
  lastSeq: number;
  lastRev: number;
  lastReadSeq: number;
}
interface SyncedMessage {
  conversationId: string;
  seq: number;
  rev: number;
  senderId: string;
  body: string | null;
}
interface ServerFrameView {
  type: string;
  id?: string;
  code?: string;
  retryable?: boolean;
  userId?: string;
  conversationId?: string;
  heartbeatMs?: number;
  tokenExpiresAt?: number;
  stored?: SyncedMessage;
}
interface ClientFrameOut {
  type: string;
  id: string;
  [field: string]: unknown;
}
interface PendingRequest {
  id: string;
  kind: string;
  sentAtMs: number;
  conversationId?: string;
}
interface Frames {
  WS_PATH: string;
  WS_SUBPROTOCOL: string;
  BODY_MAX_LENGTH: number;
  ID_MAX_LENGTH: number;
  GROUP_MEMBERS_PER_REQUEST: number;
  SYNC_LIMIT_MAX: number;
  CONVERSATION_PAGE_MAX: number;
  ROUTES: Record<string, { method: Method; route: string }>;
  restHeaders(token: string | null): Record<string, string>;
  registerRequest(username: string, password: string): RestRequest;
  loginRequest(username: string, password: string, deviceName: string): RestRequest;
  refreshRequest(refreshToken: string): RestRequest;
  listConversationsRequest(token: string): RestRequest;
  openDirectRequest(token: string, userId: string): RestRequest;
  createGroupRequest(token: string, title: string, memberIds: string[]): RestRequest;
  addMembersRequest(token: string, conversationId: string, userIds: string[]): RestRequest;
  sendMessageRequest(token: string, conversationId: string, clientMessageId: string, body: string): RestRequest;
  syncRequest(token: string, cursors: unknown[], limit: number): RestRequest;
  readTokens(json: unknown, knownUserId?: string): Tokens;
  readConversation(json: unknown): ConversationState;
  readConversationPage(json: unknown): ConversationState[];
  SyncState: new () => { cursors(): unknown[]; apply(json: unknown): { messages: SyncedMessage[]; hasMore: boolean } };
  wsUrlFor(baseUrl: string): string;
  upgradeHeaders(accessToken: string): Record<string, string>;
  createRequestIds(): () => string;
  sendFrame(id: string, conversationId: string, clientMessageId: string, body: string): ClientFrameOut;
  readFrame(id: string, conversationId: string, seq: number): ClientFrameOut;
  pingFrame(id: string): ClientFrameOut;
  authFrame(id: string, token: string): ClientFrameOut;
  encodeFrame(frame: ClientFrameOut): string;
  parseServerFrame(text: string): ServerFrameView | null;
  loadBody(runId: string, sentAtMs: number, length: number): string;
  readLoadBody(body: string | null): { runId: string; sentAtMs: number } | null;
  newRunId(): string;
  usernameFor(runId: string, index: number): string;
  clientMessageIdFor(runId: string, sender: number | string, n: number): string;
  PendingRequests: new () => {
    size: number;
    add(request: PendingRequest): void;
    settle(id: string): PendingRequest | null;
    expire(deadlineMs: number): PendingRequest[];
    drain(): PendingRequest[];
  };
  DeliveryTracker: new () => {
    expected: number;
    delivered: number;
    open(conversationId: string, lastSeq: number): void;
    observe(conversationId: string, seq: number): boolean;
    close(conversationId: string, lastSeq: number | null): void;
    closeAll(): void;
    missing(): number;
  };
}

/**
 * Loads frames.js as k6 would run it: the ES module compiled to CommonJS and evaluated,
 * with a `require` that fails, since the file must stay free of imports (k6 modules
 * exist only inside k6).
 */
function loadFrames(): Frames {
  const source = readFileSync(FRAMES_PATH, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 },
    fileName: FRAMES_PATH,
  });
  const exports: Record<string, unknown> = {};
  const forbidden = (name: string) => {
    throw new Error(`frames.js must import nothing, but imports ${name}`);
  };
  new Function('exports', 'require', `${outputText}\n//# sourceURL=${FRAMES_PATH}`)(exports, forbidden);
  return exports as unknown as Frames;
}

const P = loadFrames();

function k6Files(dir = K6_DIR): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return k6Files(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

const UUID_A = '0b5e7f0e-3c1f-4d8b-9a57-2f6c1e4b8d01';
const UUID_B = '7c0e1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b';

// ---------------------------------------------------------------------------------------

describe('the k6 scripts stay within what k6 v0.45 runs', () => {
  const files = k6Files();

  test('there are the four scenarios and their shared library', () => {
    const names = files.map((file) => relative(K6_DIR, file)).sort();
    expect(names).toEqual(
      ['chat-1to1.js', 'connect-storm.js', 'group-fanout.js', 'lib/frames.js', 'lib/parley.js', 'offline-catchup.js'].sort(),
    );
  });

  // Syntax that k6 v0.45's runtime cannot parse, or that not every k6 release does.
  const FORBIDDEN: Array<[string, (node: ts.Node) => boolean]> = [
    ['optional chaining', (node) => (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node) || ts.isCallExpression(node)) && node.questionDotToken !== undefined],
    ['?? or a logical assignment', (node) => ts.isBinaryExpression(node) && [ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.QuestionQuestionEqualsToken, ts.SyntaxKind.BarBarEqualsToken, ts.SyntaxKind.AmpersandAmpersandEqualsToken].includes(node.operatorToken.kind)],
    ['object spread', (node) => ts.isSpreadAssignment(node)],
    ['object rest', (node) => ts.isBindingElement(node) && node.dotDotDotToken !== undefined && ts.isObjectBindingPattern(node.parent)],
    ['a class field', (node) => ts.isPropertyDeclaration(node) || ts.isClassStaticBlockDeclaration(node)],
    ['a private name', (node) => ts.isPrivateIdentifier(node)],
    ['a BigInt literal', (node) => ts.isBigIntLiteral(node)],
    ['a numeric separator', (node) => ts.isNumericLiteral(node) && node.getText().includes('_')],
    ['an optional catch binding', (node) => ts.isCatchClause(node) && node.variableDeclaration === undefined],
    ['a dynamic import', (node) => ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword],
    ['a top-level await', (node) => ts.isAwaitExpression(node) && !ts.findAncestor(node, ts.isFunctionLike)],
  ];

  test.each(files.map((file) => [relative(K6_DIR, file), file]))('%s uses no newer syntax and is type-checked', (_name, file) => {
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('// @ts-check\n')).toBe(true);
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
    const found: string[] = [];
    const visit = (node: ts.Node): void => {
      for (const [what, matches] of FORBIDDEN) {
        if (matches(node)) found.push(`${what} at line ${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    expect(found).toEqual([]);
  });

  test('frames.js imports nothing; routes and frames are built only there', () => {
    expect(readFileSync(FRAMES_PATH, 'utf8')).not.toMatch(/^\s*import\s/m);
    for (const file of files.filter((path) => path !== FRAMES_PATH)) {
      const text = readFileSync(file, 'utf8');
      expect({ file: relative(K6_DIR, file), routes: text.match(/['"`]\/v1\//g) ?? [] }).toEqual({ file: relative(K6_DIR, file), routes: [] });
      expect({ file: relative(K6_DIR, file), frames: text.match(/type:\s*['"`]\w+['"`]/g) ?? [] }).toEqual({ file: relative(K6_DIR, file), frames: [] });
    }
  });
});

describe('frames.js builds what the gateway and the message service accept', () => {
  const runId = P.newRunId();

  test('its constants are the protocol\'s', () => {
    expect(P.WS_SUBPROTOCOL).toBe(WS_SUBPROTOCOL);
    expect(P.WS_PATH).toBe('/ws');
    expect(P.BODY_MAX_LENGTH).toBe(Limits.messageBodyMaxLength);
    expect(P.ID_MAX_LENGTH).toBe(Limits.clientMessageIdMaxLength);
    expect(P.GROUP_MEMBERS_PER_REQUEST).toBe(Limits.membersPerRequestMax);
    expect(P.SYNC_LIMIT_MAX).toBe(Limits.syncMessagesMax);
    expect(P.CONVERSATION_PAGE_MAX).toBe(Limits.pageSizeMax);
  });

  // Every frame builder, with typical and limit values. Adding a builder without a case fails.
  const ids = P.createRequestIds();
  for (let i = 0; i < 99_998; i += 1) ids();
  const longRun = 'z'.repeat(8);
  const frameCases: Record<string, ClientFrameOut[]> = {
    sendFrame: [
      P.sendFrame(ids(), UUID_A, P.clientMessageIdFor(runId, 1, 1), P.loadBody(runId, Date.now(), 64)),
      P.sendFrame(ids(), UUID_A, P.clientMessageIdFor(longRun, 99_999_999, 9_999_999_999), P.loadBody(longRun, Date.now(), 10_000)),
      P.sendFrame(ids(), UUID_B, P.clientMessageIdFor(runId, 's12345', 1), P.loadBody(runId, Date.now(), 1)),
    ],
    readFrame: [P.readFrame(ids(), UUID_A, 0), P.readFrame(ids(), UUID_B, 123_456)],
    pingFrame: [P.pingFrame(ids())],
    authFrame: [P.authFrame(ids(), 'eyJhbGciOiJFZERTQSJ9.e30.' + 'x'.repeat(300))],
  };

  test('every frame builder has cases', () => {
    const builders = Object.keys(P).filter((name) => /Frame$/.test(name) && !/^(parse|encode)/.test(name));
    expect(builders.sort()).toEqual(Object.keys(frameCases).sort());
  });

  test.each(Object.entries(frameCases).flatMap(([builder, frames]) => frames.map((frame) => [builder, frame] as const)))(
    '%s: the gateway parses it as exactly this frame',
    (_builder, frame) => {
      const parsed = parseClientFrame(P.encodeFrame(frame));
      expect(parsed).toEqual({ ok: true, frame });
    },
  );

  test('request ids are the SDK\'s: r1, r2, … fresh per socket', () => {
    const next = P.createRequestIds();
    expect([next(), next(), next()]).toEqual(['r1', 'r2', 'r3']);
    expect(P.createRequestIds()()).toBe('r1');
  });

  test('bodies carry the send time, stay within the limit and are told apart from other bodies', () => {
    const at = 1_767_225_600_123;
    const body = P.loadBody(runId, at, 200);
    expect(body).toHaveLength(200);
    expect(P.readLoadBody(body)).toEqual({ runId, sentAtMs: at });
    expect(P.loadBody(runId, at, 1_000_000)).toHaveLength(Limits.messageBodyMaxLength);
    expect(P.readLoadBody('hello')).toBeNull();
    expect(P.readLoadBody(null)).toBeNull();
    expect(P.readLoadBody('k6|not a run|1|')).toBeNull();
  });

  test('usernames and client message ids fit the protocol, or are refused before sending', () => {
    for (const index of [0, 9, 99_999, 9_999_999]) expect(Value.Check(Username, P.usernameFor(runId, index))).toBe(true);
    expect(() => P.usernameFor('r'.repeat(30), 1)).toThrow(/32/);
    expect(() => P.clientMessageIdFor('r'.repeat(60), 1, 1)).toThrow(/64/);
    expect(P.newRunId()).toMatch(/^[a-z0-9]{8}$/);
  });

  // Every REST request builder, with the schema of the body its route validates.
  const restCases: Record<string, [RestRequest, TSchema | null][]> = {
    registerRequest: [[P.registerRequest(P.usernameFor(runId, 0), 'k6-load-test-password'), RegisterBody]],
    loginRequest: [[P.loginRequest(P.usernameFor(runId, 0), 'k6-load-test-password', 'k6 vu 12345'), LoginBody]],
    refreshRequest: [[P.refreshRequest('a'.repeat(43)), RefreshBody]],
    listConversationsRequest: [[P.listConversationsRequest('token'), null]],
    openDirectRequest: [[P.openDirectRequest('token', UUID_A), CreateDirectBody]],
    createGroupRequest: [
      [P.createGroupRequest('token', `k6 ${runId} group 12`, [UUID_A, UUID_B]), CreateGroupBody],
      [P.createGroupRequest('token', 'solo', []), CreateGroupBody],
    ],
    addMembersRequest: [[P.addMembersRequest('token', UUID_B, [UUID_A]), AddMembersBody]],
    sendMessageRequest: [[P.sendMessageRequest('token', UUID_A, P.clientMessageIdFor(runId, 's1', 1), P.loadBody(runId, 1, 64)), SendMessageBody]],
    syncRequest: [
      [P.syncRequest('token', [], 200), SyncBody],
      [P.syncRequest('token', [{ conversationId: UUID_A, rev: 3 }, { conversationId: UUID_B, rev: 0, lastReadSeq: 0 }], 1000), SyncBody],
    ],
  };

  test('every REST builder has cases, and every route is used', () => {
    const builders = Object.keys(P).filter((name) => /Request$/.test(name));
    expect(builders.sort()).toEqual(Object.keys(restCases).sort());
    const used = new Set(Object.values(restCases).flatMap((cases) => cases.map(([request]) => request.name)));
    expect([...used].sort()).toEqual(Object.values(P.ROUTES).map((route) => `${route.method} ${route.route}`).sort());
  });

  test.each(Object.entries(restCases).flatMap(([builder, cases]) => cases.map(([request, schema]) => [builder, request, schema] as const)))(
    '%s: the body is valid for its route',
    (_builder, request, schema) => {
      if (schema === null) expect(request.body).toBeNull();
      else expect(Value.Errors(schema, request.body).First()).toBeUndefined();
      const [path] = request.path.split('?');
      const route = Object.values(P.ROUTES).find((candidate) => `${candidate.method} ${candidate.route}` === request.name);
      expect(route).toBeDefined();
      expect(path).toMatch(new RegExp(`^${route!.route.replace(/\{[A-Za-z]+\}/g, '[^/?]+')}$`));
    },
  );

  test('limits are enforced before sending', () => {
    const many = Array.from({ length: Limits.membersPerRequestMax + 1 }, () => UUID_A);
    expect(() => P.createGroupRequest('t', 'g', many)).toThrow();
    expect(() => P.addMembersRequest('t', UUID_A, many)).toThrow();
    expect(() => P.addMembersRequest('t', UUID_A, [])).toThrow();
    expect(() => P.syncRequest('t', [], 0)).toThrow();
    expect(() => P.syncRequest('t', [], Limits.syncMessagesMax + 1)).toThrow();
    expect(() => P.addMembersRequest('t', '', [UUID_A])).toThrow(/conversationId/);
  });

  test('the WebSocket URL and upgrade headers follow docs/protocol.md', () => {
    expect(P.wsUrlFor('https://127.0.0.1:8443')).toBe('wss://127.0.0.1:8443/ws');
    expect(P.wsUrlFor('http://chat.example.com/')).toBe('ws://chat.example.com/ws');
    expect(() => P.wsUrlFor('127.0.0.1:8443')).toThrow();
    expect(P.upgradeHeaders('tok')).toEqual({ Authorization: 'Bearer tok', 'Sec-WebSocket-Protocol': WS_SUBPROTOCOL });
    expect(P.restHeaders(null)).not.toHaveProperty('Authorization');
    expect(P.restHeaders('tok')).toMatchObject({ Authorization: 'Bearer tok', 'Content-Type': 'application/json' });
  });

  test('server frames are read loosely: unknown types kept, non-frames refused', () => {
    expect(P.parseServerFrame('not json')).toBeNull();
    expect(P.parseServerFrame('[1]')).toBeNull();
    expect(P.parseServerFrame('{"no":"type"}')).toBeNull();
    expect(P.parseServerFrame('{"type":"from.the.future","x":1}')).toEqual({ type: 'from.the.future' });
    const error: ServerFrame = { type: 'error', id: 'r3', code: 'RATE_LIMITED', message: 'Slow down.', retryable: true };
    expect(P.parseServerFrame(JSON.stringify(error))).toMatchObject({ type: 'error', id: 'r3', code: 'RATE_LIMITED', retryable: true });
  });

  test('pending requests settle once and expire after their deadline', () => {
    const pending = new P.PendingRequests();
    pending.add({ id: 'r1', kind: 'send', sentAtMs: 1000 });
    pending.add({ id: 'r2', kind: 'ping', sentAtMs: 5000 });
    expect(() => pending.add({ id: 'r1', kind: 'send', sentAtMs: 1 })).toThrow();
    expect(pending.expire(2000).map((request) => request.id)).toEqual(['r1']);
    expect(pending.settle('r1')).toBeNull();
    expect(pending.settle('r2')).toMatchObject({ kind: 'ping' });
    expect(pending.size).toBe(0);
  });

  test('deliveries: gaps while listening are missing, seqs before or after are not due', () => {
    const tracker = new P.DeliveryTracker();
    tracker.open(UUID_A, 10);
    expect([9, 10, 11, 12, 12, 14].map((seq) => tracker.observe(UUID_A, seq))).toEqual([false, false, true, true, false, true]);
    tracker.close(UUID_A, 15);
    expect({ expected: tracker.expected, delivered: tracker.delivered, missing: tracker.missing() }).toEqual({ expected: 5, delivered: 3, missing: 2 });
    // A dropped socket expects only up to what it saw; the next one starts afresh.
    tracker.open(UUID_B, 0);
    tracker.observe(UUID_B, 1);
    tracker.closeAll();
    tracker.open(UUID_B, 5);
    tracker.observe(UUID_B, 6);
    tracker.close(UUID_B, 6);
    expect(tracker.missing()).toBe(2);
    expect(tracker.observe(UUID_B, 7)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------

describe('frames.js against a real gateway and message service', () => {
  let h: GatewayHarness;
  let node: GatewayNode;
  const sockets: TestClient[] = [];
  const runId = P.newRunId();
  const password = 'k6-load-test-password';

  beforeAll(async () => {
    h = await startGatewayHarness();
    node = await h.startNode();
  }, HARNESS_START_TIMEOUT_MS);

  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await h?.close();
  });

  /** Makes a RestRequest over real HTTP, as k6/http would. */
  async function rest(request: RestRequest): Promise<{ status: number; json: unknown }> {
    const response = await fetch(h.messageUrl + request.path, {
      method: request.method,
      headers: P.restHeaders(request.token),
      ...(request.body === null ? {} : { body: JSON.stringify(request.body) }),
    });
    const text = await response.text();
    return { status: response.status, json: text ? (JSON.parse(text) as unknown) : null };
  }

  async function expectStatus(request: RestRequest, status: number): Promise<unknown> {
    const result = await rest(request);
    expect({ route: request.name, status: result.status, answer: result.status === status ? null : result.json }).toEqual({
      route: request.name,
      status,
      answer: null,
    });
    return result.json;
  }

  /** Opens a socket exactly as k6/ws does with the scripts' upgrade headers. */
  async function connect(tokens: Tokens, label: string): Promise<TestClient> {
    const { 'Sec-WebSocket-Protocol': offered, ...headers } = P.upgradeHeaders(tokens.accessToken);
    // ws sends the subprotocols it is given; handing it the header's value keeps them the same.
    const socket = new WebSocket(node.wsUrl, offered!.split(','), { headers, perMessageDeflate: false });
    const client = new TestClient(socket, label);
    sockets.push(client);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('unexpected-response', (_request, response) => reject(new Error(`${label}: upgrade refused with ${response.statusCode}`)));
        socket.once('error', reject);
      }),
      WAIT_MS,
      `${label}: upgrade`,
    );
    expect(socket.protocol).toBe(WS_SUBPROTOCOL);
    await client.next('hello');
    return client;
  }

  /** A reply as the scripts read it. */
  const view = (frame: ServerFrame): ServerFrameView => {
    const parsed = P.parseServerFrame(JSON.stringify(frame));
    if (!parsed) throw new Error(`unreadable frame ${JSON.stringify(frame)}`);
    return parsed;
  };

  test('every route the scripts call is in the served OpenAPI document', async () => {
    const response = await fetch(`${h.messageUrl}/openapi.json`);
    const doc = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
    const missing = Object.values(P.ROUTES)
      .filter((route) => doc.paths[route.route]?.[route.method.toLowerCase()] === undefined)
      .map((route) => `${route.method} ${route.route}`);
    expect(missing).toEqual([]);
  });

  test('setup, login, conversations, backlog, sync and the socket frames, end to end', async () => {
    // Setup stage: register (201), then a VU's own login (200) and a refresh (200).
    const registered = await Promise.all(
      [0, 1, 2].map(async (index) => P.readTokens(await expectStatus(P.registerRequest(P.usernameFor(runId, index), password), 201))),
    );
    const [aliceSetup, bob, carol] = registered as [Tokens, Tokens, Tokens];
    const aliceLogin = P.readTokens(await expectStatus(P.loginRequest(P.usernameFor(runId, 0), password, 'k6 vu 1'), 200));
    expect(aliceLogin.userId).toBe(aliceSetup.userId);
    const alice = P.readTokens(await expectStatus(P.refreshRequest(aliceLogin.refreshToken), 200), aliceLogin.userId);
    expect(alice.refreshToken).not.toBe(aliceLogin.refreshToken);
    expect(alice.accessTokenExpiresAt).toBeGreaterThan(Date.now());

    // Conversations: the direct one opens once per pair; a group grows by adding members.
    const direct = P.readConversation(await expectStatus(P.openDirectRequest(alice.accessToken, bob.userId), 201));
    expect(P.readConversation(await expectStatus(P.openDirectRequest(bob.accessToken, alice.userId), 200)).id).toBe(direct.id);
    const group = P.readConversation(await expectStatus(P.createGroupRequest(alice.accessToken, `k6 ${runId} group 0`, [bob.userId]), 201));
    await expectStatus(P.addMembersRequest(alice.accessToken, group.id, [carol.userId]), 200);
    const mine = P.readConversationPage(await expectStatus(P.listConversationsRequest(alice.accessToken), 200));
    expect(mine.map((conversation) => conversation.kind).sort()).toEqual(['direct', 'group']);

    // The offline backlog, over REST: three messages bob has not seen.
    for (let n = 1; n <= 3; n += 1) {
      const body = P.loadBody(runId, Date.now(), 64);
      await expectStatus(P.sendMessageRequest(alice.accessToken, direct.id, P.clientMessageIdFor(runId, 's0', n), body), 201);
    }

    // Catch-up: sync one message a page until hasMore is false, as offline-catchup.js does.
    const state = new P.SyncState();
    const synced: SyncedMessage[] = [];
    let pages = 0;
    for (let hasMore = true; hasMore; pages += 1) {
      if (pages > 20) throw new Error('sync never ended');
      const page = state.apply(await expectStatus(P.syncRequest(bob.accessToken, state.cursors(), 1), 200));
      synced.push(...page.messages);
      hasMore = page.hasMore;
    }
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(synced.filter((message) => P.readLoadBody(message.body)?.runId === runId).map((message) => message.seq)).toEqual([1, 2, 3]);
    const again = state.apply(await expectStatus(P.syncRequest(bob.accessToken, state.cursors(), 200), 200));
    expect(again).toEqual({ messages: [], hasMore: false });

    // Sockets, opened as k6 opens them.
    const aliceSocket = await connect(alice, 'alice');
    const bobSocket = await connect(bob, 'bob');
    const carolSocket = await connect(carol, 'carol');
    const tracker = new P.DeliveryTracker();
    tracker.open(direct.id, 3);
    const ids = P.createRequestIds();
    const pending = new P.PendingRequests();
    const write = (client: TestClient, frame: ClientFrameOut, kind: string) => {
      pending.add({ id: frame.id, kind, sentAtMs: Date.now() });
      client.sendRaw(P.encodeFrame(frame));
    };
    // The one reply to a request: its ack or its error, whichever comes.
    const replyTo = async (client: TestClient, id: string) => {
      const ack = client.next('ack', (frame) => frame.id === id);
      const error = client.next('error', (frame) => frame.id === id);
      ack.catch(() => undefined);
      error.catch(() => undefined);
      return view(await Promise.race([ack, error]));
    };

    // send → ack (stored, with its seq) → the peer's push, whose body gives send→deliver.
    const send = P.sendFrame(ids(), direct.id, P.clientMessageIdFor(runId, 1, 1), P.loadBody(runId, Date.now(), 64));
    write(aliceSocket, send, 'send');
    const ack = await replyTo(aliceSocket, send.id);
    expect(ack).toMatchObject({ type: 'ack', id: send.id, stored: { conversationId: direct.id, seq: 4, senderId: alice.userId } });
    expect(pending.settle(send.id)).toMatchObject({ kind: 'send' });
    const push = view(await bobSocket.next('message', (frame) => frame.message.seq === 4));
    expect(push.stored).toMatchObject({ conversationId: direct.id, seq: 4, senderId: alice.userId });
    expect(tracker.observe(direct.id, push.stored!.seq)).toBe(true);
    const load = P.readLoadBody(push.stored!.body);
    expect(load?.runId).toBe(runId);
    expect(Date.now() - load!.sentAtMs).toBeGreaterThanOrEqual(0);
    expect(Date.now() - load!.sentAtMs).toBeLessThan(WAIT_MS);
    const final = P.readConversationPage(await expectStatus(P.listConversationsRequest(bob.accessToken), 200)).find((c) => c.id === direct.id);
    tracker.close(direct.id, final!.lastSeq);
    expect({ expected: tracker.expected, missing: tracker.missing() }).toEqual({ expected: 1, missing: 0 });

    // Fan-out: one send in the group reaches every other member.
    const groupSend = P.sendFrame(ids(), group.id, P.clientMessageIdFor(runId, 1, 2), P.loadBody(runId, Date.now(), 64));
    write(aliceSocket, groupSend, 'send');
    expect(await replyTo(aliceSocket, groupSend.id)).toMatchObject({ type: 'ack', stored: { conversationId: group.id, seq: 1 } });
    for (const member of [bobSocket, carolSocket]) {
      expect(view(await member.next('message', (frame) => frame.conversationId === group.id)).stored).toMatchObject({ seq: 1 });
    }

    // read → ack; ping → pong; auth with a refreshed token → ack with the new expiry.
    const read = P.readFrame(ids(), direct.id, 4);
    write(bobSocket, read, 'read');
    expect(await replyTo(bobSocket, read.id)).toMatchObject({ type: 'ack', id: read.id });
    const ping = P.pingFrame(ids());
    write(bobSocket, ping, 'ping');
    expect(view(await bobSocket.next('pong', (frame) => frame.id === ping.id))).toEqual({ type: 'pong', id: ping.id });
    const bobRefreshed = P.readTokens(await expectStatus(P.refreshRequest(bob.refreshToken), 200), bob.userId);
    const auth = P.authFrame(ids(), bobRefreshed.accessToken);
    write(bobSocket, auth, 'auth');
    const authAck = await replyTo(bobSocket, auth.id);
    expect(authAck.type).toBe('ack');
    expect(Math.abs((authAck.tokenExpiresAt ?? 0) * 1000 - bobRefreshed.accessTokenExpiresAt)).toBeLessThan(1000);

    // A refused request is an error frame with the request's id and a code the scripts tag.
    const refused = P.sendFrame(ids(), direct.id, P.clientMessageIdFor(runId, 3, 1), P.loadBody(runId, Date.now(), 64));
    write(carolSocket, refused, 'send');
    expect(await replyTo(carolSocket, refused.id)).toMatchObject({ type: 'error', id: refused.id, code: 'NOT_A_MEMBER', retryable: false });

    // Nothing the gateway sent was unreadable to the scripts.
    for (const client of [aliceSocket, bobSocket, carolSocket]) {
      expect(client.unparseable).toEqual([]);
      for (const frame of client.received) expect(P.parseServerFrame(JSON.stringify(frame))).not.toBeNull();
    }
  });
});
