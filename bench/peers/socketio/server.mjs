/**
 * The design Parley is compared with: a Socket.IO 4 server scaled out with
 * @socket.io/redis-adapter, as its documentation sets it up. Run it as several processes
 * against one Redis; a broadcast to a room reaches the members on every process. Not
 * part of the product: a peer for the fan-out benchmark (bench/src/ceilings/socketio.ts).
 *
 * A client connecting with query room=1 joins the room and is told "joined"; a client
 * with query role=sender has every "m" event it emits broadcast to the room (itself
 * excluded), unchanged.
 *
 *   PORT=0 REDIS_URL=redis://127.0.0.1:6379 ADAPTER_KEY=socket.io node server.mjs
 *
 * Forked with an IPC channel it reports {type:'listening', port} and answers
 * {type:'gc'} (with --expose-gc) and {type:'exit'}.
 */
import { createServer } from 'node:http';
import { setTimeout } from 'node:timers';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const ROOM = 'room';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const pubClient = new Redis(redisUrl);
const subClient = pubClient.duplicate();

const httpServer = createServer();
const io = new Server(httpServer, {
  serveClient: false,
  adapter: createAdapter(pubClient, subClient, { key: process.env.ADAPTER_KEY ?? 'socket.io' }),
});

io.on('connection', (socket) => {
  if (socket.handshake.query.role === 'sender') {
    socket.on('m', (payload) => socket.to(ROOM).emit('m', payload));
    return;
  }
  socket.join(ROOM);
  socket.emit('joined');
});

function report(message) {
  if (process.send) process.send(message);
}

// Listen only once the adapter's subscriptions are in place, or a broadcast published
// before then would miss this process's members: the adapter queued them on the
// subscriber connection when the namespace was created, and Redis answers in order.
await subClient.ping();
httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = httpServer.address();
  report({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});

process.on('message', (message) => {
  if (message.type === 'gc') {
    // Two passes: the first can leave garbage that only the second frees (weak callbacks).
    globalThis.gc?.();
    globalThis.gc?.();
    report({ type: 'gc-done', members: io.of('/').sockets.size, collected: typeof globalThis.gc === 'function', memory: process.memoryUsage() });
  } else if (message.type === 'exit') {
    io.close();
    pubClient.disconnect();
    subClient.disconnect();
    setTimeout(() => process.exit(0), 100);
  }
});

process.on('disconnect', () => process.exit(0));
