// WebSocket frames written by hand, for what a well-behaved client library never sends:
// fragment floods, compressed (RSV1) frames, and upgrades that never finish. Client
// frames are masked, as RFC 6455 requires. Everything connects to 127.0.0.1 only.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { WAIT_MS, within } from '../../support/gateway-harness';

export const Opcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9 } as const;

/** One masked client frame. */
export function clientFrame(opcode: number, payload: Buffer, options: { fin?: boolean; rsv1?: boolean } = {}): Buffer {
  const { fin = true, rsv1 = false } = options;
  const length = payload.length;
  const header: number[] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode];
  if (length < 126) header.push(0x80 | length);
  else if (length < 65536) header.push(0x80 | 126, length >> 8, length & 0xff);
  else {
    header.push(0x80 | 127, 0, 0, 0, 0);
    header.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let index = 0; index < length; index++) masked[index] = payload[index]! ^ mask[index % 4]!;
  return Buffer.concat([Buffer.from(header), mask, masked]);
}

export interface ServerFrameOnWire {
  opcode: number;
  payload: Buffer;
}

/**
 * A raw client socket past the upgrade: it parses the server's (unmasked) frames, keeps
 * the text ones and the close code, and lets a test write any bytes it likes.
 */
export class RawWebSocket {
  readonly texts: string[] = [];
  closeCode: number | undefined;
  /** Resolves when the TCP connection has ended, with the close code if one came. */
  readonly ended: Promise<number | undefined>;
  private buffer = Buffer.alloc(0);
  private readonly watchers = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve(this.closeCode)));
    socket.on('close', () => this.notify());
  }

  /** Upgrades with `token` and waits for the 101 and the hello frame. */
  static async open(port: number, token: string, extraHeaders = ''): Promise<{ raw: RawWebSocket; response: string }> {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    await within(once(socket, 'connect'), WAIT_MS, 'raw TCP connect');
    socket.write(upgradeRequest(port, token, extraHeaders));
    let head = Buffer.alloc(0);
    const { response, rest } = await within(
      new Promise<{ response: string; rest: Buffer }>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          socket.off('data', onData);
          const text = head.subarray(0, end).toString('latin1');
          if (!text.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
          else resolve({ response: text, rest: head.subarray(end + 4) });
        };
        socket.on('data', onData);
      }),
      WAIT_MS,
      'raw upgrade',
    );
    const raw = new RawWebSocket(socket);
    socket.on('data', (chunk: Buffer) => raw.onData(chunk));
    if (rest.length > 0) raw.onData(rest);
    await raw.waitFor(() => raw.texts.some((text) => text.includes('"type":"hello"')), 'hello');
    return { raw, response };
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  /** Resolves once `probe` holds; fails if the connection ends first or time runs out. */
  async waitFor(probe: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    await within(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (probe()) {
            this.watchers.delete(check);
            resolve();
          } else if (this.socket.destroyed) {
            this.watchers.delete(check);
            reject(new Error(`connection ended (close ${this.closeCode}) while waiting for ${what}`));
          }
        };
        this.watchers.add(check);
        check();
      }),
      timeoutMs,
      what,
    );
  }

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) break;
      const opcode = this.buffer[0]! & 0x0f;
      let length = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) break;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) break;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) break;
      const payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === Opcode.text) this.texts.push(payload.toString('utf8'));
      if (opcode === Opcode.close) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    }
    this.notify();
  }
}

export function upgradeRequest(port: number, token: string, extraHeaders = ''): string {
  return (
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
    `Authorization: Bearer ${token}\r\n${extraHeaders}\r\n`
  );
}
