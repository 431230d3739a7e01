import { randomBytes, randomUUID } from 'node:crypto';
import { generateSigningJwk, importSigningJwk } from '@parley/auth';
import { MemoryBus, RedisBus, type Bus } from '@parley/bus';
import { createDb, createEmbeddedDb, migrateToLatest, type Db } from '@parley/db';
import { buildApp, type AppConfig, type MessageApp } from '@parley/message-service';
import { migrations } from '@parley/migrations';
import {
  decodeBusEvent,
  type AuthResponse,
  type BusEvent,
  type ConversationSummary,
  type ErrorBody,
} from '@parley/protocol';
import { Redis } from 'ioredis';
import pino from 'pino';

export function testUrls(): { databaseUrl: string; redisUrl: string } {
  const databaseUrl = process.env['PARLEY_TEST_DATABASE_URL'];
  const redisUrl = process.env['PARLEY_TEST_REDIS_URL'];
  if (!databaseUrl || !redisUrl) throw new Error('test services missing: did jest globalSetup run?');
  return { databaseUrl, redisUrl };
}

/**
 * Where the message service keeps its data and carries its events: `postgres` is the
 * production shape (PostgreSQL and Redis, from jest's global setup), `embedded` the
 * single-process one (PGlite in memory and an in-process bus, no Redis at all).
 */
export type MessageBackend = 'postgres' | 'embedded';

/** Every backend, for `describe.each`: scenarios that must hold on both run on both. */
export const MESSAGE_BACKENDS: readonly MessageBackend[] = ['postgres', 'embedded'];

/** For a beforeAll that starts a harness: a fresh embedded database takes seconds (initdb). */
export const HARNESS_START_TIMEOUT_MS = 60_000;

export interface MessageHarness {
  app: MessageApp;
  db: Db;
  config: AppConfig;
  backend: MessageBackend;
  /** Every event the service published, as the gateways would hear it. */
  events: EventRecorder;
  close(): Promise<void>;
}

/**
 * The real message service on a real backend, driven with `app.inject()`. On
 * `postgres`, each harness has its own bus and rate-limit prefix, so test files running
 * in parallel never hear each other; on `embedded`, each has a database of its own.
 */
export async function startMessageHarness(
  overrides: Partial<AppConfig> = {},
  options: { backend?: MessageBackend } = {},
): Promise<MessageHarness> {
  const backend = options.backend ?? 'postgres';
  const signingKey = await importSigningJwk(await generateSigningJwk(`test-${randomUUID().slice(0, 8)}`));
  const busPrefix = `parley-test:${randomBytes(6).toString('hex')}:`;
  const config: AppConfig = {
    signingKey,
    jwks: { keys: [signingKey.publicJwk] },
    issuer: 'parley',
    audience: 'parley',
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 3600,
    // Strict by default: the reuse tests expect any second use to revoke.
    refreshReuseGraceSeconds: 0,
    loginRateLimit: { max: 1000, windowSeconds: 60 },
    loginRateLimitPerIp: { max: 100000, windowSeconds: 60 },
    registerRateLimit: { max: 100000, windowSeconds: 60 },
    trustProxy: false,
    corsOrigins: [],
    bodyLimitBytes: 65536,
    busPrefix,
    ...overrides,
  };
  const logger = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
  const parts = backend === 'embedded' ? await embeddedParts() : await postgresParts(config.busPrefix);
  const app = await buildApp({
    config,
    db: parts.db.kysely,
    redis: parts.redis,
    bus: parts.bus,
    logger,
    ...(backend === 'embedded' ? { sendBatchesInFlight: 1 } : {}),
  });
  let closing: Promise<void> | undefined;
  const close = async () => {
    await app.close();
    await parts.events.close();
    await parts.bus.close();
    parts.redis?.disconnect();
    await parts.db.close();
  };
  return { app, db: parts.db, config, backend, events: parts.events, close: () => (closing ??= close()) };
}

interface BackendParts {
  db: Db;
  redis: Redis | null;
  bus: Bus;
  events: EventRecorder;
}

async function postgresParts(busPrefix: string): Promise<BackendParts> {
  const { databaseUrl, redisUrl } = testUrls();
  const db = createDb({ connectionString: databaseUrl, maxConnections: 20 });
  const redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  const subscriber = new Redis(redisUrl);
  await new Promise<void>((resolve, reject) => {
    redis.once('ready', resolve);
    redis.once('error', reject);
  });
  const bus = new RedisBus({ publisher: redis, subscriber, prefix: busPrefix });
  return { db, redis, bus, events: await EventRecorder.listen(redisUrl, busPrefix) };
}

/** A fresh in-memory PGlite, migrated as `npm start` migrates its own, and a MemoryBus. */
async function embeddedParts(): Promise<BackendParts> {
  const db = await createEmbeddedDb();
  await migrateToLatest(db.kysely, migrations);
  const events = new EventRecorder();
  return { db, redis: null, bus: new RecordedBus(new MemoryBus(), events), events };
}

/** Records what is published on an in-process bus (it has no pattern subscription), then publishes it. */
class RecordedBus implements Bus {
  constructor(
    private readonly inner: Bus,
    private readonly recorder: EventRecorder,
  ) {}

  async publish(channel: string, payload: string): Promise<void> {
    await this.inner.publish(channel, payload);
    this.recorder.record(channel, payload);
  }

  subscribe: Bus['subscribe'] = (channel, handler) => this.inner.subscribe(channel, handler);
  unsubscribe: Bus['unsubscribe'] = (channel, handler) => this.inner.unsubscribe(channel, handler);
  onResubscribed: Bus['onResubscribed'] = (listener) => this.inner.onResubscribed(listener);
  close: Bus['close'] = () => this.inner.close();
}

/** Every event published, with its channel (without the bus prefix), in arrival order. */
export class EventRecorder {
  readonly received: Array<{ channel: string; event: BusEvent }> = [];
  private waiters: Array<() => void> = [];

  constructor(private readonly stop: () => Promise<void> = async () => {}) {}

  /** Listens to every channel under a prefix, with PSUBSCRIBE, as a gateway fleet would hear it. */
  static async listen(redisUrl: string, prefix: string): Promise<EventRecorder> {
    const subscriber = new Redis(redisUrl);
    const recorder = new EventRecorder(async () => subscriber.disconnect());
    subscriber.on('pmessage', (_pattern: string, channel: string, payload: string) => {
      recorder.record(channel.slice(prefix.length), payload);
    });
    await subscriber.psubscribe(`${prefix}*`);
    return recorder;
  }

  record(channel: string, payload: string): void {
    const event = decodeBusEvent(payload);
    if (!event) throw new Error(`undecodable bus payload on ${channel}: ${payload}`);
    this.received.push({ channel, event });
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves with the first recorded event matching, waiting for it to arrive. */
  async waitFor(
    predicate: (entry: { channel: string; event: BusEvent }) => boolean,
    timeoutMs = 5000,
  ): Promise<{ channel: string; event: BusEvent }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(predicate);
      if (found) return found;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('timed out waiting for a bus event');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

export interface TestUser {
  id: string;
  username: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  headers: { authorization: string };
}

export function uniqueName(prefix = 'u'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export async function registerUser(app: MessageApp, username = uniqueName()): Promise<TestUser> {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/auth/register',
    payload: { username, password: 'correct horse battery staple' },
  });
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.statusCode} ${response.body}`);
  const body = response.json<AuthResponse>();
  return {
    id: body.user.id,
    username,
    accessToken: body.tokens.accessToken,
    refreshToken: body.tokens.refreshToken,
    sessionId: body.tokens.sessionId,
    headers: { authorization: `Bearer ${body.tokens.accessToken}` },
  };
}

/** Shorthand for an authenticated JSON call. */
export async function call(
  app: MessageApp,
  user: TestUser | null,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  payload?: unknown,
) {
  return app.inject({
    method,
    url,
    headers: user ? user.headers : {},
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

export type CallResponse = Awaited<ReturnType<typeof call>>;

/** Status and catalogue code together, so a failure shows both. */
export function errorOf(response: CallResponse): { status: number; code: string | undefined } {
  let code: string | undefined;
  try {
    code = response.json<ErrorBody>().error?.code;
  } catch {
    code = undefined;
  }
  return { status: response.statusCode, code };
}

/** `count` fresh users, registered concurrently. */
export function registerUsers(app: MessageApp, count: number): Promise<TestUser[]> {
  return Promise.all(Array.from({ length: count }, () => registerUser(app)));
}

/** Creates a group owned by `owner` and returns its summary (asserts 201). */
export async function createGroupAs(
  app: MessageApp,
  owner: TestUser,
  members: readonly TestUser[],
  title = 'group',
): Promise<ConversationSummary> {
  const response = await call(app, owner, 'POST', '/v1/conversations/groups', {
    title,
    memberIds: members.map((member) => member.id),
  });
  if (response.statusCode !== 201) throw new Error(`group creation failed: ${response.statusCode} ${response.body}`);
  return response.json<ConversationSummary>();
}
