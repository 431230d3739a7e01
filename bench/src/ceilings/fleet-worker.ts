/**
 * One client process of a ceiling run, driven by its parent over IPC. As receivers it
 * holds many sockets (bare `ws` or socket.io-client) spread over source addresses
 * 127.0.0.x, counts the frames of the current step and records send→deliver latency
 * from the timestamp in each frame; as the sender it pushes frames at a fixed rate or as
 * fast as a bounded window of unacknowledged frames allows. The bare `ws` ceiling and
 * the Socket.IO peer use this same process design, so they differ only in the server.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';
import { nowUs } from '../load/clock';
import { Histogram, type HistogramData } from '../load/histogram';
import { decodeString, encodePayload, frameSentMicros, frameStep } from './payload';

export type ClientKind = 'ws' | 'socketio';

export interface ConnectCommand {
  type: 'connect';
  kind: ClientKind;
  /** Socket i of this process connects to urls[(firstIndex + i) % urls.length]. */
  urls: string[];
  count: number;
  firstIndex: number;
  localAddresses: string[];
  /** Handshakes in progress at once. */
  concurrency: number;
}

export interface SenderCommand {
  type: 'sender';
  kind: ClientKind;
  url: string;
  localAddress: string;
  payloadBytes: number;
  /** Frames sent but not yet acknowledged by the server, in window mode. */
  window: number;
}

/** rate 0: as fast as the window allows (needs server acks); otherwise frames per second. */
export interface RunCommand {
  type: 'run';
  step: number;
  durationMs: number;
  rate: number;
}

export interface ConnectedReply {
  type: 'connected';
  open: number;
  failed: number;
  firstError?: string;
  elapsedMs: number;
}

export interface SnapshotReply {
  type: 'snapshot';
  step: number;
  received: number;
  /** Frames of another step (a late frame of an earlier one). */
  stale: number;
  open: number;
  closed: number;
  histogram: HistogramData;
  /** The same per server URL (index into the connect command's urls). */
  byUrl: Array<HistogramData>;
}

export interface RanReply {
  type: 'ran';
  step: number;
  sent: number;
  elapsedMs: number;
  /** For a fixed rate: frames the sender fell behind its schedule at the end. */
  behind: number;
}

const HANDSHAKE_TIMEOUT_MS = 15_000;

let step = -1;
let received = 0;
let stale = 0;
let open = 0;
let closed = 0;
const histogram = new Histogram();
const byUrl: Histogram[] = [];
const closers: Array<() => void> = [];

function onFrame(sentMicros: number, frameStep: number, urlHistogram: Histogram): void {
  if (frameStep === step) {
    received += 1;
    const latency = nowUs() - sentMicros;
    histogram.record(latency);
    urlHistogram.record(latency);
  } else {
    stale += 1;
  }
}

function reply(message: object): void {
  process.send!(message);
}

function socketIoOptions(localAddress: string, query: Record<string, string>): Partial<ManagerOptions & SocketOptions> {
  // localAddress is passed through to `ws` by engine.io-client but is not in its types.
  return {
    transports: ['websocket'],
    forceNew: true, // one engine.io connection per client, not one shared Manager
    reconnection: false,
    timeout: HANDSHAKE_TIMEOUT_MS,
    query,
    localAddress,
  } as Partial<ManagerOptions & SocketOptions>;
}

function connectReceiver(kind: ClientKind, url: string, localAddress: string, urlHistogram: Histogram): Promise<void> {
  return new Promise((resolve, reject) => {
    if (kind === 'ws') {
      // UTF-8 validation off: the frames are ASCII, and the receivers must cost less than the server.
      const socket = new WebSocket(url, { localAddress, perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, skipUTF8Validation: true });
      socket.once('open', () => {
        open += 1;
        socket.on('message', (data) => onFrame(frameSentMicros(data as Buffer), frameStep(data as Buffer), urlHistogram));
        socket.once('close', () => {
          open -= 1;
          closed += 1;
        });
        closers.push(() => socket.terminate());
        resolve();
      });
      // Kept for the socket's life: an error after the handshake (a reset at teardown) must not go unhandled.
      socket.on('error', (error) => {
        if (socket.readyState !== WebSocket.OPEN) reject(error);
      });
      return;
    }
    const socket: Socket = io(url, socketIoOptions(localAddress, { room: '1' }));
    // Ready when the server says the socket joined the room, not at connect: only then do broadcasts reach it.
    socket.once('joined', () => {
      open += 1;
      socket.on('m', (payload: string) => {
        const { sentMicros, step: payloadStep } = decodeString(payload);
        onFrame(sentMicros, payloadStep, urlHistogram);
      });
      socket.once('disconnect', () => {
        open -= 1;
        closed += 1;
      });
      closers.push(() => socket.disconnect());
      resolve();
    });
    socket.once('connect_error', (error) => reject(error));
  });
}

async function connectAll(command: ConnectCommand): Promise<void> {
  const started = performance.now();
  while (byUrl.length < command.urls.length) byUrl.push(new Histogram());
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const lane = async () => {
    while (next < command.count) {
      const index = command.firstIndex + next;
      next += 1;
      const urlIndex = index % command.urls.length;
      const localAddress = command.localAddresses[index % command.localAddresses.length]!;
      try {
        await connectReceiver(command.kind, command.urls[urlIndex]!, localAddress, byUrl[urlIndex]!);
      } catch (error) {
        failed += 1;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, command.concurrency) }, lane));
  const message: ConnectedReply = { type: 'connected', open, failed, firstError, elapsedMs: Math.round(performance.now() - started) };
  reply(message);
}

// ---- sender ----

interface Sender {
  sendFrame(payload: string): void;
  acked: number;
  sentTotal: number;
}

let sender: Sender | undefined;
let senderConfig: SenderCommand | undefined;
let onAck: (() => void) | undefined;

function connectSender(command: SenderCommand): Promise<Sender> {
  return new Promise((resolve, reject) => {
    if (command.kind === 'ws') {
      const socket = new WebSocket(command.url, { localAddress: command.localAddress, perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
      const state: Sender = {
        acked: 0,
        sentTotal: 0,
        sendFrame: (payload) => {
          state.sentTotal += 1;
          socket.send(payload);
        },
      };
      socket.once('open', () => resolve(state));
      socket.on('error', reject);
      // The server acknowledges with "a<frames fanned out so far>" once it has written them.
      socket.on('message', (data) => {
        state.acked = Number((data as Buffer).toString('latin1', 1));
        onAck?.();
      });
      closers.push(() => socket.terminate());
      return;
    }
    const socket = io(command.url, socketIoOptions(command.localAddress, { role: 'sender' }));
    const state: Sender = {
      acked: 0,
      sentTotal: 0,
      sendFrame: (payload) => {
        state.sentTotal += 1;
        socket.emit('m', payload);
      },
    };
    socket.once('connect', () => resolve(state));
    socket.once('connect_error', reject);
    closers.push(() => socket.disconnect());
  });
}

function run(command: RunCommand): void {
  const active = sender!;
  const config = senderConfig!;
  const started = nowUs();
  const endAt = started + command.durationMs * 1000;
  let sent = 0;
  const finish = (behind: number) => {
    const message: RanReply = { type: 'ran', step: command.step, sent, elapsedMs: (nowUs() - started) / 1000, behind };
    reply(message);
  };
  if (command.rate === 0) {
    // Window mode: top up to `window` unacknowledged frames whenever an ack arrives.
    const fill = () => {
      const now = nowUs();
      if (now >= endAt) {
        onAck = undefined;
        finish(0);
        return;
      }
      while (active.sentTotal - active.acked < config.window) {
        active.sendFrame(encodePayload(nowUs(), command.step, sent, config.payloadBytes));
        sent += 1;
      }
    };
    onAck = fill;
    fill();
    // If no ack ever comes, end the step on time anyway.
    setTimeout(() => {
      if (onAck === fill) {
        onAck = undefined;
        finish(0);
      }
    }, command.durationMs + 50);
    return;
  }
  // Fixed rate: each frame carries its scheduled time, so a sender that falls behind
  // shows up as latency instead of silently lowering the offered load.
  const intervalMicros = 1e6 / command.rate;
  const total = Math.floor((command.durationMs / 1000) * command.rate);
  const tick = () => {
    const now = nowUs();
    const due = Math.min(total, Math.floor((now - started) / intervalMicros) + 1);
    while (sent < due) {
      active.sendFrame(encodePayload(started + sent * intervalMicros, command.step, sent, config.payloadBytes));
      sent += 1;
    }
    if (sent >= total || now >= endAt + 1e6) {
      clearInterval(timer);
      finish(total - sent);
    }
  };
  const timer = setInterval(tick, 1);
  tick();
}

// ---- commands ----

process.on('message', (command: { type: string }) => {
  switch (command.type) {
    case 'connect':
      void connectAll(command as ConnectCommand);
      break;
    case 'sender': {
      senderConfig = command as SenderCommand;
      connectSender(senderConfig).then(
        (connected) => {
          sender = connected;
          reply({ type: 'sender-ready' });
        },
        (error: Error) => reply({ type: 'error', message: `sender could not connect: ${error.message}` }),
      );
      break;
    }
    case 'run':
      run(command as RunCommand);
      break;
    case 'step': {
      step = (command as unknown as { step: number }).step;
      received = 0;
      stale = 0;
      histogram.reset();
      for (const entry of byUrl) entry.reset();
      reply({ type: 'stepped', step });
      break;
    }
    case 'snapshot': {
      const message: SnapshotReply = { type: 'snapshot', step, received, stale, open, closed, histogram: histogram.toData(), byUrl: byUrl.map((entry) => entry.toData()) };
      reply(message);
      break;
    }
    case 'exit':
      for (const close of closers) close();
      setTimeout(() => process.exit(0), 100);
      break;
    default:
      break;
  }
});

process.on('uncaughtException', (error) => {
  reply({ type: 'error', message: error.stack ?? error.message });
  setTimeout(() => process.exit(1), 100);
});

process.on('disconnect', () => process.exit(0));
