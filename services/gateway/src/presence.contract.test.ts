// One contract, two implementations: what a single node guarantees about presence, for
// the fleet's RedisPresence (real Redis) and the single-process MemoryPresence. What only
// a fleet has (a user on two nodes, a dead node swept) is tested in test/gateway.test.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import { MemoryBus, RedisBus, type Bus } from '@parley/bus';
import { Channels, decodeBusEvent } from '@parley/protocol';
import { Redis } from 'ioredis';
import pino from 'pino';
import { MemoryPresence } from './memory-presence';
import { GatewayMetrics } from './metrics';
import type { Presence } from './presence';
import { RedisPresence } from './redis-presence';

const WAIT_MS = 5000;
const logger = pino({ level: 'silent' });

interface Subject {
  presence: Presence;
  /** The bus the presence publishes on, for a listener of the test's own. */
  bus: Bus;
  close(): Promise<void>;
}

const kinds: Array<{ name: string; start(): Promise<Subject> }> = [
  {
    name: 'RedisPresence',
    async start() {
      const url = process.env['PARLEY_TEST_REDIS_URL'];
      if (!url) throw new Error('PARLEY_TEST_REDIS_URL is not set: did jest globalSetup run?');
      const prefix = `parley-presence-test:${randomBytes(6).toString('hex')}:`;
      const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
      const subscriber = new Redis(url);
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve);
        redis.once('error', reject);
      });
      const bus = new RedisBus({ publisher: redis, subscriber, prefix });
      const presence = new RedisPresence(redis, bus, { prefix, nodeId: 'node-a', ttlMs: 15000 }, logger, new GatewayMetrics());
      return {
        presence,
        bus,
        close: async () => {
          await presence.stop();
          await bus.close();
          redis.disconnect();
        },
      };
    },
  },
  {
    name: 'MemoryPresence',
    async start() {
      const bus = new MemoryBus();
      const presence = new MemoryPresence(bus, logger);
      return { presence, bus, close: () => bus.close() };
    },
  },
];

/** Collects the presence changes published for one user, in order. */
async function listen(bus: Bus, userId: string) {
  const heard: boolean[] = [];
  let wake: () => void = () => {};
  await bus.subscribe(Channels.presence(userId), (payload) => {
    const event = decodeBusEvent(payload);
    if (event?.type === 'presence' && event.userId === userId) heard.push(event.online);
    wake();
  });
  return {
    heard,
    /** Resolves once `count` changes were heard; fails the test after WAIT_MS. */
    async until(count: number): Promise<boolean[]> {
      const deadline = Date.now() + WAIT_MS;
      while (heard.length < count) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`expected ${count} presence changes, heard ${JSON.stringify(heard)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return heard;
    },
  };
}

describe.each(kinds)('$name', (kind) => {
  let subject: Subject;
  beforeAll(async () => {
    subject = await kind.start();
    subject.presence.start();
  });
  afterAll(async () => subject.close());

  test('a user is online while connected and offline at once after disconnecting', async () => {
    const [alice, bob] = [randomUUID(), randomUUID()];
    expect(await subject.presence.isOnline([alice, bob])).toEqual([false, false]);
    await subject.presence.userConnected(alice);
    expect(await subject.presence.isOnline([alice, bob])).toEqual([true, false]);
    await subject.presence.userConnected(bob);
    await subject.presence.userDisconnected(alice);
    expect(await subject.presence.isOnline([alice, bob])).toEqual([false, true]);
    await subject.presence.userDisconnected(bob);
    expect(await subject.presence.isOnline([bob, alice])).toEqual([false, false]);
  });

  test('each change is published once on presence:{userId}, in order', async () => {
    const carol = randomUUID();
    const changes = await listen(subject.bus, carol);
    await subject.presence.userConnected(carol);
    await subject.presence.userDisconnected(carol);
    await subject.presence.userConnected(carol);
    expect(await changes.until(3)).toEqual([true, false, true]);
    // Barrier: a change for someone else, after which a duplicate would have arrived too.
    const dave = randomUUID();
    const barrier = await listen(subject.bus, dave);
    await subject.presence.userConnected(dave);
    await barrier.until(1);
    expect(changes.heard).toEqual([true, false, true]);
    await subject.presence.userDisconnected(carol);
    await subject.presence.userDisconnected(dave);
  });

  test('asking about no one is an empty answer', async () => {
    expect(await subject.presence.isOnline([])).toEqual([]);
  });
});
