import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Bus, BusHandler, HandlerRegistry } from './bus';
import { MemoryBus } from './memory-bus';
import { RedisBus } from './redis-bus';

/**
 * One contract, two buses. Every "is not delivered" assertion is closed by a marker
 * published after the payload that must not arrive: the bus keeps publish order, so by
 * the time the marker is heard, the other payload would have been heard too.
 */

const WAIT_MS = 5000;

function redisUrl(): string {
  const url = process.env['PARLEY_TEST_REDIS_URL'];
  if (!url) throw new Error('PARLEY_TEST_REDIS_URL is not set: did jest globalSetup run?');
  return url;
}

function randomPrefix(): string {
  return `parley-bus-test:${randomBytes(6).toString('hex')}:`;
}

/** Fails (it is no sync point) when `promise` has not settled within WAIT_MS. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Records what one handler hears and lets a test wait for a number of deliveries. */
class Recorder {
  readonly payloads: string[] = [];
  readonly channels: string[] = [];
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  readonly handler: BusHandler = (payload, channel) => {
    this.payloads.push(payload);
    this.channels.push(channel);
    this.waiters = this.waiters.filter((waiter) => {
      if (this.payloads.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  };

  /** Resolves once `count` payloads arrived; rejects (a test failure, not a sync point) after WAIT_MS. */
  waitForCount(count: number): Promise<string[]> {
    if (this.payloads.length >= count) return Promise.resolve(this.payloads);
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`expected ${count} payloads, got ${JSON.stringify(this.payloads)}`)),
        WAIT_MS,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.payloads);
        },
      });
    });
  }

  /** Resolves once `payload` arrived. */
  async waitFor(payload: string): Promise<void> {
    for (;;) {
      if (this.payloads.includes(payload)) return;
      await this.waitForCount(this.payloads.length + 1);
    }
  }
}

/** What the contract needs to know about an implementation. */
interface BusKind {
  name: string;
  /** A bus of its own; `prefix` only matters to buses that share a transport. */
  create(options?: { prefix?: string; onHandlerError?: (error: unknown) => void }): Promise<Bus>;
  /** Whether the bus still holds a subscription to `channel` in its transport. */
  isSubscribed(bus: Bus, channel: string): Promise<boolean>;
  /** Closes everything the kind created. */
  closeAll(): Promise<void>;
}

function memoryKind(): BusKind {
  const buses: MemoryBus[] = [];
  return {
    name: 'MemoryBus',
    async create(options = {}) {
      const bus = new MemoryBus(options.onHandlerError);
      buses.push(bus);
      return bus;
    },
    async isSubscribed(bus, channel) {
      // MemoryBus has no transport; its registry is where a channel lives.
      const registry = (bus as unknown as { registry: HandlerRegistry }).registry;
      return registry.channels().includes(channel);
    },
    async closeAll() {
      await Promise.all(buses.splice(0).map((bus) => bus.close()));
    },
  };
}

/** RedisBus instances share one publisher connection, so publish order holds across them too. */
function redisKind(): BusKind {
  return redisKindOf(false);
}

/** The same over sharded pub/sub (SPUBLISH/SSUBSCRIBE), as on a Redis Cluster. */
function redisShardedKind(): BusKind {
  return redisKindOf(true);
}

function redisKindOf(sharded: boolean): BusKind {
  let publisher: Redis | undefined;
  let admin: Redis | undefined;
  const buses: Array<{ bus: RedisBus; prefix: string }> = [];
  const connect = async (): Promise<{ publisher: Redis; admin: Redis }> => {
    publisher ??= new Redis(redisUrl(), { enableOfflineQueue: false, lazyConnect: true });
    admin ??= new Redis(redisUrl(), { lazyConnect: true });
    if (publisher.status === 'wait') await publisher.connect();
    if (admin.status === 'wait') await admin.connect();
    return { publisher, admin };
  };
  return {
    name: sharded ? 'RedisBus (sharded)' : 'RedisBus',
    async create(options = {}) {
      const { publisher: shared } = await connect();
      const prefix = options.prefix ?? randomPrefix();
      const subscriber = new Redis(redisUrl());
      const bus = new RedisBus({ publisher: shared, subscriber, prefix, sharded, onHandlerError: options.onHandlerError });
      buses.push({ bus, prefix });
      return bus;
    },
    async isSubscribed(bus, channel) {
      const { admin: client } = await connect();
      const entry = buses.find((candidate) => candidate.bus === bus);
      if (!entry) throw new Error('unknown bus');
      const reply = (await client.call('PUBSUB', sharded ? 'SHARDNUMSUB' : 'NUMSUB', entry.prefix + channel)) as [string, number];
      return Number(reply[1]) > 0;
    },
    async closeAll() {
      await Promise.all(buses.splice(0).map(({ bus }) => bus.close()));
      await publisher?.quit().catch(() => undefined);
      await admin?.quit().catch(() => undefined);
      publisher = undefined;
      admin = undefined;
    },
  };
}

describe.each([memoryKind, redisKind, redisShardedKind])('Bus contract', (makeKind) => {
  const kind = makeKind();

  afterEach(async () => kind.closeAll());

  describe(kind.name, () => {
    test('delivers a payload to every handler of the channel, once each, with the channel name', async () => {
      const bus = await kind.create();
      const recorders = [new Recorder(), new Recorder(), new Recorder()];
      for (const recorder of recorders) await bus.subscribe('room', recorder.handler);
      // Subscribing the same handler twice does not make it hear a payload twice.
      await bus.subscribe('room', recorders[0]!.handler);

      await bus.publish('room', 'hello');
      await bus.publish('room', 'marker');
      for (const recorder of recorders) {
        expect(await recorder.waitForCount(2)).toEqual(['hello', 'marker']);
        expect(recorder.channels).toEqual(['room', 'room']);
      }
    });

    test('does not deliver to handlers of other channels', async () => {
      const bus = await kind.create();
      const a = new Recorder();
      const b = new Recorder();
      await bus.subscribe('a', a.handler);
      await bus.subscribe('b', b.handler);

      await bus.publish('b', 'for-b');
      await bus.publish('ab', 'for-nobody');
      await bus.publish('a', 'marker');
      expect(await a.waitForCount(1)).toEqual(['marker']);
      expect(await b.waitForCount(1)).toEqual(['for-b']);
      expect(a.payloads).toEqual(['marker']);
    });

    test('unsubscribe stops delivery to that handler only', async () => {
      const bus = await kind.create();
      const leaving = new Recorder();
      const staying = new Recorder();
      await bus.subscribe('room', leaving.handler);
      await bus.subscribe('room', staying.handler);
      await bus.publish('room', 'before');
      await leaving.waitForCount(1);
      await staying.waitForCount(1);

      await bus.unsubscribe('room', leaving.handler);
      expect(await kind.isSubscribed(bus, 'room')).toBe(true);
      await bus.publish('room', 'after');
      expect(await staying.waitForCount(2)).toEqual(['before', 'after']);
      expect(leaving.payloads).toEqual(['before']);
    });

    test("the last handler's unsubscribe drops the channel", async () => {
      const bus = await kind.create();
      const first = new Recorder();
      const second = new Recorder();
      const other = new Recorder();
      await bus.subscribe('room', first.handler);
      await bus.subscribe('room', second.handler);
      await bus.subscribe('other', other.handler);
      expect(await kind.isSubscribed(bus, 'room')).toBe(true);

      await bus.unsubscribe('room', first.handler);
      expect(await kind.isSubscribed(bus, 'room')).toBe(true);
      await bus.unsubscribe('room', second.handler);
      expect(await kind.isSubscribed(bus, 'room')).toBe(false);
      expect(await kind.isSubscribed(bus, 'other')).toBe(true);
      // Unsubscribing what is not subscribed is harmless.
      await bus.unsubscribe('room', second.handler);
      await bus.unsubscribe('never', second.handler);

      await bus.publish('room', 'nobody-listens');
      await bus.publish('other', 'marker');
      await other.waitForCount(1);
      expect(first.payloads).toEqual([]);
      expect(second.payloads).toEqual([]);

      // The channel can be taken up again.
      const again = new Recorder();
      await bus.subscribe('room', again.handler);
      expect(await kind.isSubscribed(bus, 'room')).toBe(true);
      await bus.publish('room', 'back');
      expect(await again.waitForCount(1)).toEqual(['back']);
      expect(first.payloads).toEqual([]);
    });

    test('a throwing handler does not starve the others, and its error is reported', async () => {
      const errors: unknown[] = [];
      const bus = await kind.create({ onHandlerError: (error) => errors.push(error) });
      const before = new Recorder();
      const after = new Recorder();
      const boom = new Error('handler failed');
      await bus.subscribe('room', before.handler);
      await bus.subscribe('room', () => {
        throw boom;
      });
      await bus.subscribe('room', after.handler);

      await bus.publish('room', 'one');
      await bus.publish('room', 'two');
      expect(await before.waitForCount(2)).toEqual(['one', 'two']);
      expect(await after.waitForCount(2)).toEqual(['one', 'two']);
      expect(errors).toEqual([boom, boom]);
    });

    test('keeps publish order', async () => {
      const bus = await kind.create();
      const recorder = new Recorder();
      await bus.subscribe('room', recorder.handler);
      const payloads = Array.from({ length: 200 }, (_, index) => `p${index}`);
      // Issued back to back without waiting in between, as a busy publisher does.
      await Promise.all(payloads.map((payload) => bus.publish('room', payload)));
      expect(await recorder.waitForCount(payloads.length)).toEqual(payloads);
    });

    test('delivers payloads verbatim', async () => {
      const bus = await kind.create();
      const recorder = new Recorder();
      await bus.subscribe('room', recorder.handler);
      const odd = ['', '{"v":1}', 'emoji 👩‍👩‍👧 and RTL שלום', '\u2028\n\r\t\\', 'x'.repeat(100_000)];
      for (const payload of odd) await bus.publish('room', payload);
      expect(await recorder.waitForCount(odd.length)).toEqual(odd);
    });

    test('two buses with different prefixes do not hear each other', async () => {
      const left = await kind.create({ prefix: randomPrefix() });
      const right = await kind.create({ prefix: randomPrefix() });
      const leftHeard = new Recorder();
      const rightHeard = new Recorder();
      await left.subscribe('room', leftHeard.handler);
      await right.subscribe('room', rightHeard.handler);

      await left.publish('room', 'from-left');
      await right.publish('room', 'from-right');
      await left.publish('room', 'left-marker');
      await right.publish('room', 'right-marker');
      expect(await leftHeard.waitForCount(2)).toEqual(['from-left', 'left-marker']);
      expect(await rightHeard.waitForCount(2)).toEqual(['from-right', 'right-marker']);
    });
  });
});

describe('RedisBus over a real Redis', () => {
  const url = redisUrl();
  const clients: Redis[] = [];
  const buses: RedisBus[] = [];
  /** A connection in MONITOR mode cannot QUIT: it is disconnected. */
  const monitors: Redis[] = [];
  let publisher: Redis;
  let admin: Redis;

  function client(options: { connectionName?: string } = {}): Redis {
    const redis = new Redis(url, options);
    redis.on('error', () => undefined); // a killed connection reports an error; it reconnects by itself
    clients.push(redis);
    return redis;
  }

  beforeAll(() => {
    publisher = client();
    admin = client();
  });

  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    await Promise.all(clients.map((redis) => redis.quit().catch(() => undefined)));
    for (const monitor of monitors) monitor.disconnect();
  });

  test('buses on two nodes with the same prefix both hear a payload', async () => {
    const prefix = randomPrefix();
    const nodeA = new RedisBus({ publisher, subscriber: client(), prefix });
    const nodeB = new RedisBus({ publisher, subscriber: client(), prefix });
    buses.push(nodeA, nodeB);
    const heardA = new Recorder();
    const heardB = new Recorder();
    await nodeA.subscribe('room', heardA.handler);
    await nodeB.subscribe('room', heardB.handler);
    await nodeA.publish('room', 'to-everyone');
    expect(await heardA.waitForCount(1)).toEqual(['to-everyone']);
    expect(await heardB.waitForCount(1)).toEqual(['to-everyone']);
  });

  test('uses the prefix on the wire', async () => {
    const prefix = randomPrefix();
    const bus = new RedisBus({ publisher, subscriber: client(), prefix });
    buses.push(bus);
    const recorder = new Recorder();
    await bus.subscribe('room', recorder.handler);
    const reply = (await admin.call('PUBSUB', 'NUMSUB', `${prefix}room`, 'room')) as Array<string | number>;
    expect(reply.map(String)).toEqual([`${prefix}room`, '1', 'room', '0']);
    // A raw publish on the prefixed name reaches the handler under the bare name.
    await publisher.publish(`${prefix}room`, 'raw');
    expect(await recorder.waitForCount(1)).toEqual(['raw']);
    expect(recorder.channels).toEqual(['room']);
  });

  test('sharded and classic pub/sub are separate: each hears only its own kind, under the same channel names', async () => {
    const prefix = randomPrefix();
    const sharded = new RedisBus({ publisher, subscriber: client(), prefix, sharded: true });
    const classic = new RedisBus({ publisher, subscriber: client(), prefix });
    buses.push(sharded, classic);
    const heardSharded = new Recorder();
    const heardClassic = new Recorder();
    await sharded.subscribe('conv:{c1}', heardSharded.handler);
    await classic.subscribe('conv:{c1}', heardClassic.handler);
    const reply = (await admin.call('PUBSUB', 'SHARDNUMSUB', `${prefix}conv:{c1}`)) as Array<string | number>;
    expect(reply.map(String)).toEqual([`${prefix}conv:{c1}`, '1']);
    await sharded.publish('conv:{c1}', 'via-spublish');
    await classic.publish('conv:{c1}', 'via-publish');
    // Each publish is followed by the other's marker, so a stray delivery would be seen.
    await sharded.publish('conv:{c1}', 'sharded-marker');
    await classic.publish('conv:{c1}', 'classic-marker');
    expect(await heardSharded.waitForCount(2)).toEqual(['via-spublish', 'sharded-marker']);
    expect(await heardClassic.waitForCount(2)).toEqual(['via-publish', 'classic-marker']);
    expect(heardSharded.channels).toEqual(['conv:{c1}', 'conv:{c1}']);
  });

  test('the subscriptions of one loop turn travel as one SUBSCRIBE, and a subscribe then unsubscribe keep their order', async () => {
    const prefix = randomPrefix();
    const bus = new RedisBus({ publisher, subscriber: client(), prefix });
    buses.push(bus);
    const monitor = await client().monitor();
    monitors.push(monitor);
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((arg) => arg.startsWith(prefix))) seen.push(args);
    });
    const recorder = new Recorder();
    await Promise.all(['a', 'b', 'c'].map((channel) => bus.subscribe(channel, recorder.handler)));
    const dropped = new Recorder();
    await Promise.all([bus.subscribe('gone', dropped.handler), bus.unsubscribe('gone', dropped.handler)]);
    await bus.publish('gone', 'nobody');
    await bus.publish('c', 'marker');
    expect(await recorder.waitForCount(1)).toEqual(['marker']);
    const reply = (await admin.call('PUBSUB', 'NUMSUB', `${prefix}gone`)) as Array<string | number>;
    expect(reply.map(String)).toEqual([`${prefix}gone`, '0']);
    expect(dropped.payloads).toEqual([]);
    const commands = seen.map((args) => args.map((arg) => arg.replace(prefix, '')).join(' ').toLowerCase());
    expect(commands.filter((command) => /^(un)?subscribe /.test(command))).toEqual(['subscribe a b c', 'subscribe gone', 'unsubscribe gone']);
  });

  test('after a subscriber connection is killed, onResubscribed fires once subscriptions are back; delivery resumes', async () => {
    const prefix = randomPrefix();
    const connectionName = `parley-bus-test-${randomBytes(6).toString('hex')}`;
    const subscriber = client({ connectionName });
    const bus = new RedisBus({ publisher, subscriber, prefix });
    buses.push(bus);
    const recorder = new Recorder();
    const other = new Recorder();
    await bus.subscribe('room', recorder.handler);
    await bus.subscribe('other', other.handler);
    await bus.publish('room', 'before');
    await recorder.waitForCount(1);

    // When the listener runs, the subscriptions must be back: a client resyncs from
    // PostgreSQL right there, and anything published after that resync must reach it.
    let receiversSeenByListener: Promise<number> | undefined;
    let listenerCalls = 0;
    const resubscribed = new Promise<void>((resolve) => {
      bus.onResubscribed(() => {
        listenerCalls += 1;
        receiversSeenByListener ??= publisher.publish(`${prefix}room`, 'published-from-listener');
        resolve();
      });
    });

    const list = (await admin.call('CLIENT', 'LIST')) as string;
    const line = list.split('\n').find((entry) => entry.includes(` name=${connectionName} `));
    const id = line ? /(?:^|\s)id=(\d+)/.exec(line)?.[1] : undefined;
    if (!id) throw new Error(`no client named ${connectionName} in CLIENT LIST`);
    expect(Number(await admin.call('CLIENT', 'KILL', 'ID', id))).toBe(1);

    await within(resubscribed, 'onResubscribed');
    expect(listenerCalls).toBe(1);
    expect(await receiversSeenByListener).toBeGreaterThanOrEqual(1);
    await recorder.waitFor('published-from-listener');

    await bus.publish('room', 'after');
    await bus.publish('other', 'other-after');
    await recorder.waitFor('after');
    expect(await other.waitForCount(1)).toEqual(['other-after']);
    expect(recorder.payloads).toEqual(['before', 'published-from-listener', 'after']);
    expect(await bus.unsubscribe('room', recorder.handler)).toBeUndefined();
  });
});
