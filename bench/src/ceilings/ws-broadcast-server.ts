/**
 * The bare `ws` broadcast server: the least a WebSocket server can do to fan a frame out
 * to a room, as the ceiling Parley's gateways are held against. Every socket that
 * connects to / is a member of the one room; a socket on /send is the sender, and each
 * text frame it sends is written to every member unchanged.
 *
 *   BROADCAST_MODE=per-frame  one send per member per frame: one frame per write syscall
 *   BROADCAST_MODE=coalesced  members' sockets are corked for the event-loop turn and
 *                             uncorked once after it, so all frames a member got in that
 *                             turn leave in one write
 *
 * The sender is acknowledged ("a<frames fanned out so far>") once the frames are written
 * and no member's socket has more than HIGH_WATER bytes queued in user space: the sender
 * keeps a bounded window on it, so the run measures how fast the server drains, not how
 * long a queue can grow. Driven over IPC by its parent (port, gc, exit).
 */
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

const mode = process.env['BROADCAST_MODE'] === 'coalesced' ? 'coalesced' : 'per-frame';
const HIGH_WATER = 256 * 1024;
const TEXT = { binary: false } as const;

const room = new Set<WebSocket>();
// Members whose socket is over HIGH_WATER; the sender is not acknowledged until they drain.
const congested = new Set<Socket>();
let sender: WebSocket | undefined;
let fannedOut = 0;
let acknowledged = 0;
const corked: Socket[] = [];
let flushScheduled = false;

/** The TCP socket under a `ws` socket: cork/uncork and the write queue length are only there. */
function rawSocket(socket: WebSocket): Socket {
  return (socket as unknown as { _socket: Socket })._socket;
}

function watch(raw: Socket): void {
  if (raw.writableLength <= HIGH_WATER || congested.has(raw)) return;
  congested.add(raw);
  const release = () => {
    raw.off('drain', release);
    raw.off('close', release);
    congested.delete(raw);
    acknowledge();
  };
  raw.on('drain', release);
  raw.on('close', release);
}

function acknowledge(): void {
  if (congested.size > 0 || acknowledged === fannedOut || !sender) return;
  acknowledged = fannedOut;
  sender.send(`a${fannedOut}`);
}

function flush(): void {
  flushScheduled = false;
  for (const raw of corked) {
    raw.uncork();
    watch(raw);
  }
  corked.length = 0;
  acknowledge();
}

function broadcast(frame: Buffer): void {
  if (mode === 'coalesced') {
    if (!flushScheduled) {
      flushScheduled = true;
      for (const member of room) {
        const raw = rawSocket(member);
        raw.cork();
        corked.push(raw);
      }
      setImmediate(flush);
    }
    // Members that joined mid-turn are written to uncorked; there are none while measuring.
    for (const member of room) member.send(frame, TEXT);
    fannedOut += 1;
    return;
  }
  for (const member of room) {
    member.send(frame, TEXT);
    watch(rawSocket(member));
  }
  fannedOut += 1;
  acknowledge();
}

const server = new WebSocketServer({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0), perMessageDeflate: false, clientTracking: false });

server.on('connection', (socket, request) => {
  if (request.url === '/send') {
    sender = socket;
    socket.on('message', (data) => broadcast(data as Buffer));
    socket.once('close', () => {
      if (sender === socket) sender = undefined;
    });
    return;
  }
  room.add(socket);
  socket.once('close', () => room.delete(socket));
  socket.on('error', () => socket.terminate());
});

server.once('listening', () => {
  const address = server.address();
  process.send!({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0, mode });
});

process.on('message', (message: { type: string }) => {
  if (message.type === 'gc') {
    // Two passes: the first can leave garbage that only the second frees (weak callbacks).
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    process.send!({ type: 'gc-done', members: room.size, collected: gc !== undefined, memory: process.memoryUsage() });
  } else if (message.type === 'exit') {
    for (const member of room) member.terminate();
    server.close();
    setTimeout(() => process.exit(0), 100);
  }
});

process.on('disconnect', () => process.exit(0));
