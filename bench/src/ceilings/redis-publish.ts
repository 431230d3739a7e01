/**
 * Ceiling: PUBLISH throughput of the local Redis, with a subscriber (in another process)
 * on the channels being published to, so each publish is also pushed to a connection.
 *
 * - unpipelined, one in flight: a round trip per PUBLISH, the naive client
 * - unpipelined, N in flight: N PUBLISHes outstanding on one connection, each written
 *   on its own (what concurrent callers of one client get without batching)
 * - pipelined: batches of B commands in one write, one batch in flight
 *
 * Each is run with two clients. `raw` writes pre-encoded RESP on a socket and counts
 * reply lines, so the figure is Redis's (a Node client costs more per command than
 * Redis does, and on two cores it would otherwise be the client's figure); `ioredis` is
 * what a Node service using the usual client gets.
 */
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Child } from './children';

export interface RedisPublishOptions {
  redisUrl: string;
  /** Measured time per configuration. Default 3,000 ms. */
  durationMs?: number;
  /** Unmeasured publishing before the first configuration. Default 500 ms. */
  warmupMs?: number;
  /** Channels the subscriber listens on; publishes go round-robin over them. Default 4. */
  channels?: number;
  /** Default 200 bytes, about one chat message event. */
  payloadBytes?: number;
  /** Concurrency levels for unpipelined PUBLISH. Default [1, 16, 128]. */
  inFlight?: number[];
  /** Pipeline batch sizes. Default [10, 100, 1000]. */
  batches?: number[];
  /** Default both. */
  clients?: PublishClient[];
}

export type PublishClient = 'raw' | 'ioredis';

export interface RedisPublishRun {
  client: PublishClient;
  mode: 'unpipelined' | 'pipelined';
  /** PUBLISH commands awaited at once (unpipelined), or 1 batch (pipelined). */
  inFlight: number;
  /** Commands per write: 1 unpipelined. */
  batch: number;
  published: number;
  elapsedMs: number;
  publishesPerSecond: number;
  /** Messages the subscriber received for these publishes (equal to published unless Redis dropped some). */
  delivered: number;
  /** Redis server CPU (main and I/O threads), % of one core. */
  serverCpuPercent: number;
  serverCpuMicrosPerPublish: number;
  /** This (publishing) process, % of one core. */
  clientCpuPercent: number;
}

export interface RedisPublishResult {
  ceiling: 'redis-publish';
  redisVersion: string;
  channels: number;
  payloadBytes: number;
  runs: RedisPublishRun[];
  /** The highest publishes/s of each mode, over the clients measured. */
  best: { unpipelined: number; pipelined: number };
}

const SUBSCRIBER = join(__dirname, 'redis-subscriber.js');

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

function processCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** `PUBLISH channel payload` in RESP, encoded once per channel. */
function encodePublish(channel: string, payload: Buffer): Buffer {
  const head = `*3\r\n$7\r\nPUBLISH\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n$${payload.length}\r\n`;
  return Buffer.concat([Buffer.from(head), payload, Buffer.from('\r\n')]);
}

/**
 * A Redis connection that only writes pre-encoded commands and counts replies. A PUBLISH
 * reply is one integer line (":1\r\n"), so counting newlines counts replies; an error
 * reply is a line too, and is reported.
 */
class RawPublisher {
  private waiting: { count: number; resolve: () => void } | undefined;
  private replies = 0;
  error: string | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (chunk[0] === 45 /* '-' */ && this.error === undefined) this.error = chunk.toString('latin1', 0, Math.min(chunk.length, 200));
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) this.replies += 1;
      if (this.waiting && this.replies >= this.waiting.count) {
        const { resolve } = this.waiting;
        this.waiting = undefined;
        resolve();
      }
    });
  }

  static async connect(redisUrl: string): Promise<RawPublisher> {
    const url = new URL(redisUrl);
    const socket = connect({ host: url.hostname, port: Number(url.port || 6379), noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const publisher = new RawPublisher(socket);
    if (url.password) {
      const args = url.username ? ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.password)];
      socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
      await publisher.until(1);
      if (publisher.error) throw new Error(`AUTH: ${publisher.error}`);
    }
    return publisher;
  }

  get count(): number {
    return this.replies;
  }

  write(buffer: Buffer): void {
    this.socket.write(buffer);
  }

  /** Resolves once `total` replies (since connecting) have arrived. */
  until(total: number): Promise<void> {
    if (this.replies >= total) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting = { count: total, resolve };
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function measureRedisPublish(options: RedisPublishOptions): Promise<RedisPublishResult> {
  const durationMs = options.durationMs ?? 3000;
  const payloadBytes = options.payloadBytes ?? 200;
  const channelCount = options.channels ?? 4;
  // Names of one length: the subscriber counts pushes by their (then constant) size.
  const channels = Array.from({ length: channelCount }, (_, index) => `ceiling:publish:${process.pid}:${Date.now().toString(36)}:${String(index).padStart(4, '0')}`);
  const payload = Buffer.alloc(payloadBytes, 'x');
  if (channelCount > 10_000) throw new Error('at most 10,000 channels');
  const encoded = channels.map((channel) => encodePublish(channel, payload));
  const subscriber = Child.start('redis subscriber', SUBSCRIBER, { env: { REDIS_URL: options.redisUrl } });
  const publisher = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
  const stats = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
  let raw: RawPublisher | undefined;
  try {
    await subscriber.request({ type: 'subscribe', channels, payloadBytes }, 'subscribed', 30_000);
    raw = await RawPublisher.connect(options.redisUrl);
    const rawClient = raw;
    const server = await stats.info('server');
    const redisVersion = /^redis_version:(\S+)/m.exec(server)?.[1] ?? 'unknown';
    let next = 0;
    const channelIndex = () => (next = (next + 1) % channelCount);

    const ioredisUnpipelined = async (inFlight: number, forMs: number) => {
      const deadline = performance.now() + forMs;
      let published = 0;
      const lane = async () => {
        while (performance.now() < deadline) {
          await publisher.publish(channels[channelIndex()]!, payload);
          published += 1;
        }
      };
      await Promise.all(Array.from({ length: inFlight }, lane));
      return published;
    };
    const ioredisPipelined = async (batch: number, forMs: number) => {
      const deadline = performance.now() + forMs;
      let published = 0;
      while (performance.now() < deadline) {
        const pipeline = publisher.pipeline();
        for (let index = 0; index < batch; index += 1) pipeline.publish(channels[channelIndex()]!, payload);
        await pipeline.exec();
        published += batch;
      }
      return published;
    };
    // N outstanding: each reply is answered with one more command, written on its own.
    const rawUnpipelined = (inFlight: number, forMs: number) =>
      new Promise<number>((resolve) => {
        const deadline = performance.now() + forMs;
        const base = rawClient.count;
        let sent = 0;
        let stopped = false;
        const pump = () => {
          if (!stopped && performance.now() >= deadline) stopped = true;
          const done = rawClient.count - base;
          if (stopped) {
            if (done >= sent) resolve(sent);
            else void rawClient.until(base + sent).then(() => resolve(sent));
            return;
          }
          while (sent - done < inFlight) {
            rawClient.write(encoded[channelIndex()]!);
            sent += 1;
          }
          void rawClient.until(base + sent - inFlight + 1).then(pump);
        };
        pump();
      });
    const rawPipelined = async (batch: number, forMs: number) => {
      const batches = encoded.map((_, first) => Buffer.concat(Array.from({ length: batch }, (_unused, index) => encoded[(first + index) % channelCount]!)));
      const deadline = performance.now() + forMs;
      let published = 0;
      for (let index = 0; performance.now() < deadline; index += 1) {
        const target = rawClient.count + batch;
        rawClient.write(batches[index % batches.length]!);
        await rawClient.until(target);
        published += batch;
      }
      return published;
    };

    const received = async () => (await subscriber.request<{ type: 'count'; received: number }>({ type: 'count' }, 'count')).received;
    // Waits until the subscriber has everything, or nothing more arrives for a while.
    const settle = async (target: number) => {
      let last = await received();
      for (let idle = 0; last < target && idle < 10; ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const now = await received();
        idle = now > last ? 0 : idle + 1;
        last = now;
      }
      return last;
    };

    if ((options.warmupMs ?? 500) > 0) {
      const warm = (await ioredisUnpipelined(16, options.warmupMs ?? 500)) + (await rawUnpipelined(16, options.warmupMs ?? 500));
      await settle((await received()) + warm);
    }
    const configurations = (options.clients ?? ['raw', 'ioredis']).flatMap((client) => [
      ...(options.inFlight ?? [1, 16, 128]).map((inFlight) => ({ client, mode: 'unpipelined' as const, inFlight, batch: 1 })),
      ...(options.batches ?? [10, 100, 1000]).map((batch) => ({ client, mode: 'pipelined' as const, inFlight: 1, batch })),
    ]);
    const runs: RedisPublishRun[] = [];
    for (const configuration of configurations) {
      const before = await settle(0);
      const serverCpu0 = await redisCpuSeconds(stats);
      const clientCpu0 = processCpuSeconds();
      const started = performance.now();
      const { client, mode, inFlight, batch } = configuration;
      const published =
        client === 'raw'
          ? mode === 'unpipelined'
            ? await rawUnpipelined(inFlight, durationMs)
            : await rawPipelined(batch, durationMs)
          : mode === 'unpipelined'
            ? await ioredisUnpipelined(inFlight, durationMs)
            : await ioredisPipelined(batch, durationMs);
      const elapsedMs = performance.now() - started;
      const clientCpu = processCpuSeconds() - clientCpu0;
      const serverCpu = (await redisCpuSeconds(stats)) - serverCpu0;
      if (rawClient.error) throw new Error(`PUBLISH failed: ${rawClient.error}`);
      const delivered = (await settle(before + published)) - before;
      runs.push({
        ...configuration,
        published,
        elapsedMs: Math.round(elapsedMs),
        publishesPerSecond: Math.round((published / elapsedMs) * 1000),
        delivered,
        serverCpuPercent: Math.round((serverCpu / elapsedMs) * 100_000),
        serverCpuMicrosPerPublish: Math.round((serverCpu / published) * 1e6 * 100) / 100,
        clientCpuPercent: Math.round((clientCpu / elapsedMs) * 100_000),
      });
    }
    const best = (mode: RedisPublishRun['mode']) => Math.max(0, ...runs.filter((run) => run.mode === mode).map((run) => run.publishesPerSecond));
    return { ceiling: 'redis-publish', redisVersion, channels: channelCount, payloadBytes, runs, best: { unpipelined: best('unpipelined'), pipelined: best('pipelined') } };
  } finally {
    raw?.close();
    publisher.disconnect();
    stats.disconnect();
    await subscriber.stop();
  }
}
