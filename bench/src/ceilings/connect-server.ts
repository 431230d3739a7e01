/**
 * The bare upgrade server of the connect ceiling: accepts every WebSocket upgrade on /ws
 * (selecting Parley's subprotocol, as a client insists on it), says `hello` and does
 * nothing else; any other request gets 200 (nginx's readiness check passes through).
 * What a Parley gateway adds to a connection (verifying the token, the routing call,
 * subscriptions, presence) is exactly what this server leaves out. Driven over IPC by
 * its parent (listening, exit).
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const SUBPROTOCOL = 'parley.v1';
const HELLO = Buffer.from('{"type":"hello"}');

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});
const sockets = new Set<WebSocket>();

const server = createServer((_request, response) => response.end('ok'));
server.on('upgrade', (request, socket, head) => {
  socket.on('error', () => socket.destroy());
  wss.handleUpgrade(request, socket, head, (ws) => {
    sockets.add(ws);
    ws.once('close', () => sockets.delete(ws));
    ws.on('error', () => ws.terminate());
    ws.send(HELLO, { binary: false });
  });
});

server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.send!({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});

process.on('message', (message: { type: string }) => {
  if (message.type !== 'exit') return;
  for (const socket of sockets) socket.terminate();
  server.close();
  setTimeout(() => process.exit(0), 100);
});

process.on('disconnect', () => process.exit(0));
