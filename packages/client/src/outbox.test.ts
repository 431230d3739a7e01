import type { Message, SendMessageBody, SendMessageResponse } from '@parley/protocol';
import { ParleyClientError } from './errors';
import type { ClientRequest, ReplyFrame } from './frames';
import { Outbox } from './outbox';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

function stored(conversationId: string, seq: number, clientMessageId: string, body: string): Message {
  return {
    conversationId,
    seq,
    rev: seq,
    senderId: '00000000-0000-4000-8000-0000000000ff',
    clientMessageId,
    body,
    createdAt: '2026-01-01T00:00:00.000Z',
    editedAt: null,
    deletedAt: null,
  };
}

/** A connection whose replies the test decides, one request at a time. */
class ScriptedConnection {
  isOpen = true;
  isWanted = true;
  readonly frames: ClientRequest[] = [];
  private readonly waiting: Array<{ resolve: (reply: ReplyFrame) => void; reject: (error: unknown) => void }> = [];

  request(frame: ClientRequest): Promise<ReplyFrame> {
    this.frames.push(frame);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  ack(seq: number): void {
    const frame = this.frames[this.frames.length - this.waiting.length];
    const next = this.waiting.shift();
    if (!next || frame?.type !== 'send') throw new Error('nothing to ack');
    next.resolve({ type: 'ack', id: 'x', message: stored(frame.conversationId, seq, frame.clientMessageId, frame.body) });
  }

  fail(error: ParleyClientError): void {
    const next = this.waiting.shift();
    if (!next) throw new Error('nothing to fail');
    next.reject(error);
  }

  get outstanding(): number {
    return this.waiting.length;
  }
}

function restRecorder() {
  const calls: Array<{ conversationId: string; body: SendMessageBody }> = [];
  let seq = 100;
  return {
    calls,
    rest: {
      sendMessage: async (conversationId: string, body: SendMessageBody): Promise<SendMessageResponse> => {
        calls.push({ conversationId, body });
        seq += 1;
        return { message: stored(conversationId, seq, body.clientMessageId, body.body), duplicate: false };
      },
    },
  };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Outbox', () => {
  test('retries with the same client message id across a lost socket, and resolves once', async () => {
    const connection = new ScriptedConnection();
    const { rest } = restRecorder();
    const storedMessages: Message[] = [];
    const outbox = new Outbox({ connection, rest, onStored: (m) => storedMessages.push(m), restFallbackAfterMs: false });
    const sent = outbox.enqueue(A, 'hello', 'cmid-1');
    connection.isOpen = false;
    connection.fail(new ParleyClientError('DISCONNECTED', 'socket closed'));
    await flush();
    expect(connection.frames).toHaveLength(1); // waits for the socket
    connection.isOpen = true;
    outbox.pump();
    expect(connection.frames).toHaveLength(2);
    connection.ack(7);
    const message = await sent;
    expect(message).toMatchObject({ seq: 7, clientMessageId: 'cmid-1' });
    expect(connection.frames.map((f) => f.type === 'send' && f.clientMessageId)).toEqual(['cmid-1', 'cmid-1']);
    expect(storedMessages.map((m) => m.seq)).toEqual([7]);
    expect(outbox.size).toBe(0);
  });

  test('one conversation sends one at a time, in call order; another conversation does not wait', async () => {
    const connection = new ScriptedConnection();
    const outbox = new Outbox({ connection, rest: restRecorder().rest, onStored: () => {} });
    const first = outbox.enqueue(A, 'one', 'a1');
    const second = outbox.enqueue(A, 'two', 'a2');
    const other = outbox.enqueue(B, 'elsewhere', 'b1');
    expect(connection.frames.map((f) => f.type === 'send' && f.clientMessageId)).toEqual(['a1', 'b1']);
    connection.ack(1);
    await first;
    expect(connection.frames.map((f) => f.type === 'send' && f.clientMessageId)).toEqual(['a1', 'b1', 'a2']);
    connection.ack(1);
    connection.ack(2);
    await expect(other).resolves.toMatchObject({ conversationId: B });
    await expect(second).resolves.toMatchObject({ seq: 2, clientMessageId: 'a2' });
  });

  test('a retryable server error backs off and resends the same id; a final error rejects with the id and the queue moves on', async () => {
    jest.useFakeTimers();
    try {
      const connection = new ScriptedConnection();
      const outbox = new Outbox({ connection, rest: restRecorder().rest, onStored: () => {}, backoff: { initialMs: 100, jitter: 0 } });
      const doomed = outbox.enqueue(A, 'x', 'a1');
      const next = outbox.enqueue(A, 'y', 'a2');
      connection.fail(new ParleyClientError('UNAVAILABLE', 'busy', { retry: 'backoff' }));
      await jest.advanceTimersByTimeAsync(99);
      expect(connection.frames).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(connection.frames.map((f) => f.type === 'send' && f.clientMessageId)).toEqual(['a1', 'a1']);
      connection.fail(new ParleyClientError('NOT_A_MEMBER', 'no'));
      await expect(doomed).rejects.toMatchObject({ code: 'NOT_A_MEMBER', clientMessageId: 'a1', retryable: false });
      expect(connection.frames.map((f) => f.type === 'send' && f.clientMessageId)).toEqual(['a1', 'a1', 'a2']);
      connection.ack(1);
      await expect(next).resolves.toMatchObject({ clientMessageId: 'a2' });
    } finally {
      jest.useRealTimers();
    }
  });

  test('falls back to REST (same id) when the wanted socket stays down', async () => {
    jest.useFakeTimers();
    try {
      const connection = new ScriptedConnection();
      connection.isOpen = false;
      const { rest, calls } = restRecorder();
      const outbox = new Outbox({ connection, rest, onStored: () => {}, restFallbackAfterMs: 5000 });
      const sent = outbox.enqueue(A, 'via rest', 'r1');
      await jest.advanceTimersByTimeAsync(4999);
      expect(calls).toHaveLength(0);
      await jest.advanceTimersByTimeAsync(1);
      await expect(sent).resolves.toMatchObject({ clientMessageId: 'r1', body: 'via rest' });
      expect(calls).toEqual([{ conversationId: A, body: { clientMessageId: 'r1', body: 'via rest' } }]);
      expect(connection.frames).toHaveLength(0);
    } finally {
      jest.useRealTimers();
    }
  });

  test('without a wanted socket, sends go over REST at once', async () => {
    const connection = new ScriptedConnection();
    connection.isOpen = false;
    connection.isWanted = false;
    const { rest, calls } = restRecorder();
    const outbox = new Outbox({ connection, rest, onStored: () => {} });
    await expect(outbox.enqueue(A, 'now', 'n1')).resolves.toMatchObject({ clientMessageId: 'n1' });
    expect(calls).toHaveLength(1);
  });

  test('close rejects every waiting send with its client message id', async () => {
    const connection = new ScriptedConnection();
    const outbox = new Outbox({ connection, rest: restRecorder().rest, onStored: () => {} });
    const one = outbox.enqueue(A, 'x', 'a1');
    const two = outbox.enqueue(A, 'y', 'a2');
    outbox.close(new ParleyClientError('CLIENT_CLOSED', 'closed'));
    await expect(one).rejects.toMatchObject({ code: 'CLIENT_CLOSED', clientMessageId: 'a1' });
    await expect(two).rejects.toMatchObject({ code: 'CLIENT_CLOSED', clientMessageId: 'a2' });
    // A late ack of the first request changes nothing.
    connection.ack(1);
    expect(outbox.size).toBe(0);
  });
});
