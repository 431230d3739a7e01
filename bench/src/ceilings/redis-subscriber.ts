/**
 * The subscriber of the PUBLISH ceiling, in a process of its own, on a raw socket. It
 * must keep up with 400k+ messages/s (Redis disconnects a subscriber whose output buffer
 * passes its pubsub limit), which a Node client parsing each push does not. Every channel
 * name has the same length and every payload the same size, so every push has the same
 * size, and the number received is the bytes after the subscribe replies divided by it.
 */
import { connect } from 'node:net';

function bulk(value: string): string {
  return `$${Buffer.byteLength(value)}\r\n${value}\r\n`;
}

function command(args: string[]): string {
  return `*${args.length}\r\n${args.map(bulk).join('')}`;
}

let bytes = 0;
let headerBytes = 0;
let messageBytes = 1;

process.on('message', (message: { type: string; channels?: string[]; payloadBytes?: number }) => {
  if (message.type === 'subscribe') {
    const channels = message.channels!;
    const length = Buffer.byteLength(channels[0]!);
    if (channels.some((channel) => Buffer.byteLength(channel) !== length)) {
      process.send!({ type: 'error', message: 'channel names must all have the same length' });
      return;
    }
    const url = new URL(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
    const socket = connect({ host: url.hostname, port: Number(url.port || 6379) });
    let toSend = '';
    if (url.password) {
      toSend += command(url.username ? ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.password)]);
      headerBytes += '+OK\r\n'.length;
    }
    toSend += command(['SUBSCRIBE', ...channels]);
    channels.forEach((channel, index) => {
      headerBytes += `*3\r\n${bulk('subscribe')}${bulk(channel)}:${index + 1}\r\n`.length;
    });
    messageBytes = `*3\r\n${bulk('message')}${bulk(channels[0]!)}$${message.payloadBytes}\r\n`.length + message.payloadBytes! + 2;
    let subscribed = false;
    socket.on('data', (chunk: Buffer) => {
      if (bytes === 0 && chunk[0] === 45 /* '-' */) {
        process.send!({ type: 'error', message: chunk.toString('latin1', 0, Math.min(200, chunk.length)) });
        return;
      }
      bytes += chunk.length;
      if (!subscribed && bytes >= headerBytes) {
        subscribed = true;
        process.send!({ type: 'subscribed' });
      }
    });
    socket.on('error', (error) => process.send!({ type: 'error', message: error.message }));
    socket.on('close', () => process.send!({ type: 'error', message: 'Redis closed the subscriber connection' }));
    socket.write(toSend);
  } else if (message.type === 'count') {
    process.send!({ type: 'count', received: Math.max(0, Math.floor((bytes - headerBytes) / messageBytes)) });
  } else if (message.type === 'exit') {
    process.exit(0);
  }
});

process.on('disconnect', () => process.exit(0));
