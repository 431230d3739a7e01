import type { ConversationSummary, Message, SyncBody, SyncResponse } from '@parley/protocol';
import { ParleyClientError } from './errors';
import { OrderedDelivery } from './ordered-delivery';
import { SyncEngine, type SyncEngineCallbacks } from './sync-engine';
import { MemorySyncStateStore, type ConversationSyncState } from './sync-store';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

function msg(conversationId: string, seq: number, rev: number, body: string | null = `m${seq}`): Message {
  return {
    conversationId,
    seq,
    rev,
    senderId: '00000000-0000-4000-8000-0000000000ff',
    clientMessageId: `c${seq}`,
    body,
    createdAt: '2026-01-01T00:00:00.000Z',
    editedAt: null,
    deletedAt: null,
  };
}

function summary(id: string, lastSeq: number, lastRev: number, lastReadSeq = 0, joinedSeq = 0): ConversationSummary {
  return {
    id,
    kind: 'group',
    title: 'g',
    role: 'member',
    memberCount: 2,
    peer: null,
    lastSeq,
    lastRev,
    lastReadSeq,
    joinedSeq,
    unreadCount: lastSeq - lastReadSeq,
    lastMessage: null,
    lastActivityAt: '2026-01-01T00:00:00.000Z',
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

function page(partial: Partial<SyncResponse>): SyncResponse {
  return { conversations: [], removed: [], messages: [], cursors: [], hasMore: false, ...partial };
}

/** A sync endpoint answering from a script, recording every request body. */
function scripted(responses: Array<SyncResponse | Error>) {
  const bodies: SyncBody[] = [];
  const api = {
    sync: async (body: SyncBody): Promise<SyncResponse> => {
      bodies.push(structuredClone(body));
      const next = responses.shift();
      if (!next) throw new Error('unexpected sync call');
      if (next instanceof Error) throw next;
      return next;
    },
  };
  return { api, bodies, responses };
}

function recorder() {
  const events: string[] = [];
  const errors: ParleyClientError[] = [];
  let onSynced: (() => void) | undefined;
  /** Resolves when the next complete pull finishes (however it was started). */
  const nextSynced = () => new Promise<void>((resolve) => (onSynced = resolve));
  const callbacks: SyncEngineCallbacks = {
    delivered: (items) => items.forEach(({ message }) => events.push(`message ${message.seq}@${message.rev}`)),
    updated: (message) => events.push(`updated ${message.seq}@${message.rev}`),
    conversation: (s) => events.push(`conversation ${s.id.slice(-1)}`),
    removed: (id) => events.push(`removed ${id.slice(-1)}`),
    ownRead: (id, seq) => events.push(`read ${id.slice(-1)} ${seq}`),
    synced: (stats) => {
      events.push(`synced ${stats.pages}`);
      onSynced?.();
    },
    error: (error) => errors.push(error),
  };
  return { events, errors, callbacks, nextSynced };
}

function engineWith(api: { sync(body: SyncBody): Promise<SyncResponse> }, stored: Record<string, ConversationSyncState> = {}) {
  const store = new MemorySyncStateStore();
  for (const [id, state] of Object.entries(stored)) store.save(id, state);
  const log = recorder();
  const holder: { engine?: SyncEngine } = {};
  const delivery = new OrderedDelivery({ revFloor: (id) => holder.engine?.cursorRev(id) ?? 0 });
  const engine = new SyncEngine({
    api,
    delivery,
    store,
    callbacks: log.callbacks,
    backoff: { initialMs: 1, maxMs: 1, jitter: 0 },
    gapBackoff: { initialMs: 1000, maxMs: 8000, jitter: 0 },
  });
  holder.engine = engine;
  engine.start();
  return { engine, store, delivery, ...log };
}

describe('SyncEngine', () => {
  test('loops until hasMore is false, sending the cursors it got back', async () => {
    const { api, bodies } = scripted([
      page({ conversations: [summary(A, 2, 2)], messages: [msg(A, 1, 1)], cursors: [{ conversationId: A, rev: 1 }], hasMore: true }),
      page({ messages: [msg(A, 2, 2)], cursors: [{ conversationId: A, rev: 2 }] }),
    ]);
    const { engine, events, store } = engineWith(api);
    await engine.request();
    expect(bodies.map((b) => b.cursors)).toEqual([[], [{ conversationId: A, rev: 1, lastReadSeq: 0 }]]);
    expect(events).toEqual(['conversation a', 'read a 0', 'message 1@1', 'message 2@2', 'synced 2']);
    expect(store.load()).toEqual({ [A]: { rev: 2, deliveredSeq: 2, lastReadSeq: 0 } });
  });

  test('rev order across pages is delivered in seq order, and a failed page never lets the cursor skip a held message', async () => {
    // Since rev 4: send 5 (rev 10), send 6 (rev 11), edit 5 (rev 12). Pages of one message: 6@11, then 5@12.
    const { api, bodies } = scripted([
      page({ conversations: [summary(A, 6, 12)], messages: [msg(A, 6, 11)], cursors: [{ conversationId: A, rev: 11 }], hasMore: true }),
      new ParleyClientError('UNAVAILABLE', 'database down', { status: 503 }),
      page({ conversations: [summary(A, 6, 12)], messages: [msg(A, 6, 11), msg(A, 5, 12, 'edited')], cursors: [{ conversationId: A, rev: 12 }] }),
    ]);
    const { engine, events, errors, store } = engineWith(api, { [A]: { rev: 4, deliveredSeq: 4, lastReadSeq: 0 } });
    await engine.request();
    // Within the run page 2 continues from page 1's cursor (11), but the committed cursor stopped
    // below the held 6 (waiting for the missing 5), so the retry after the failure pulled 6 again.
    expect(bodies.map((b) => b.cursors[0]?.rev)).toEqual([4, 11, 10]);
    expect(errors.map((e) => e.code)).toEqual(['UNAVAILABLE']);
    expect(events.filter((e) => e.startsWith('message'))).toEqual(['message 5@12', 'message 6@11']);
    expect(store.load()[A]).toEqual({ rev: 12, deliveredSeq: 6, lastReadSeq: 0 });
  });

  test('a member added later is anchored at their first visible message', async () => {
    const { api } = scripted([
      page({
        conversations: [summary(B, 52, 60, 50, 50)],
        messages: [msg(B, 52, 56), msg(B, 51, 57, 'edited')],
        cursors: [{ conversationId: B, rev: 60 }],
      }),
    ]);
    const { engine, events, store } = engineWith(api);
    await engine.request();
    expect(events.filter((e) => e.startsWith('message'))).toEqual(['message 51@57', 'message 52@56']);
    expect(store.load()[B]).toEqual({ rev: 60, deliveredSeq: 52, lastReadSeq: 50 });
  });

  test('a conversation with nothing visible yet is anchored by its summary, so its next message is delivered at once', async () => {
    const { api } = scripted([page({ conversations: [summary(B, 50, 70, 50, 50)], cursors: [{ conversationId: B, rev: 70 }] })]);
    const { engine, events } = engineWith(api);
    await engine.request();
    expect(engine.stateOf(B)).toEqual({ rev: 70, deliveredSeq: 50, lastReadSeq: 50 });
    expect(engine.ingest(msg(B, 51, 71), 'socket').kind).toBe('delivered');
    expect(events).toContain('message 51@71');
    expect(engine.cursorRev(B)).toBe(71); // the very next rev: the cursor follows live changes
  });

  test('live changes advance the cursor one rev at a time; a missing rev (a missed edit) opens a gap that a later check syncs', async () => {
    jest.useFakeTimers();
    try {
      const { api, bodies } = scripted([
        page({ messages: [msg(A, 3, 11, 'edited')], cursors: [{ conversationId: A, rev: 12 }] }),
      ]);
      const { engine, events, nextSynced } = engineWith(api, { [A]: { rev: 10, deliveredSeq: 5 } });
      await engine.load();
      const synced = nextSynced();
      expect(engine.ingest(msg(A, 6, 12), 'socket').kind).toBe('delivered');
      expect(engine.cursorRev(A)).toBe(10); // rev 11 never arrived
      expect(engine.hasOpenGap()).toBe(true);
      engine.checkGapsLater(1000);
      await jest.advanceTimersByTimeAsync(999);
      expect(bodies).toHaveLength(0);
      await jest.advanceTimersByTimeAsync(1);
      await synced;
      expect(bodies[0]?.cursors).toEqual([{ conversationId: A, rev: 10 }]);
      expect(events).toEqual(['message 6@12', 'updated 3@11', 'synced 1']);
      expect(engine.cursorRev(A)).toBe(12);
      expect(engine.hasOpenGap()).toBe(false);
    } finally {
      jest.useRealTimers();
    }
  });

  test('a removed conversation is forgotten, in memory and in the store', async () => {
    const { api } = scripted([page({ removed: [A] })]);
    const { engine, events, store } = engineWith(api, { [A]: { rev: 3, deliveredSeq: 3 } });
    await engine.request();
    expect(events).toEqual(['removed a', 'synced 1']);
    expect(store.load()).toEqual({});
    expect(engine.knownConversations()).toEqual([]);
  });

  test('requests during a pull are coalesced into one more pull', async () => {
    const { api, bodies } = scripted([page({}), page({})]);
    const { engine } = engineWith(api);
    const first = engine.request();
    const second = engine.request();
    const third = engine.request();
    await Promise.all([first, second, third]);
    expect(bodies).toHaveLength(2);
  });

  test('a failure that retrying cannot fix rejects the pull; a stopped engine refuses to pull', async () => {
    const { api } = scripted([new ParleyClientError('REFRESH_TOKEN_REUSED', 'reused')]);
    const { engine } = engineWith(api);
    await expect(engine.request()).rejects.toMatchObject({ code: 'REFRESH_TOKEN_REUSED' });
    await engine.stop();
    await expect(engine.request()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  test('my read marker from another device is reported once and sent back with the cursor', async () => {
    const { api, bodies } = scripted([
      page({ conversations: [summary(A, 9, 9, 7)], cursors: [{ conversationId: A, rev: 9 }] }),
      page({ conversations: [summary(A, 9, 9, 7)], cursors: [{ conversationId: A, rev: 9 }] }),
    ]);
    const { engine, events } = engineWith(api, { [A]: { rev: 9, deliveredSeq: 9, lastReadSeq: 5 } });
    await engine.request();
    await engine.request();
    expect(events.filter((e) => e.startsWith('read'))).toEqual(['read a 7']);
    expect(bodies[1]?.cursors).toEqual([{ conversationId: A, rev: 9, lastReadSeq: 7 }]);
  });

  test('removed and re-added while away: joinedSeq moves delivery past the seqs that will never come, and the cursor follows', async () => {
    const { api } = scripted([
      page({
        conversations: [summary(A, 22, 40, 20, 20)],
        messages: [msg(A, 21, 39), msg(A, 22, 40)],
        cursors: [{ conversationId: A, rev: 40 }],
      }),
    ]);
    const { engine, events, store } = engineWith(api, { [A]: { rev: 12, deliveredSeq: 10 } });
    await engine.request();
    expect(events.filter((e) => e.startsWith('message'))).toEqual(['message 21@39', 'message 22@40']);
    expect(store.load()[A]).toEqual({ rev: 40, deliveredSeq: 22, lastReadSeq: 20 });
    expect(engine.hasOpenGap()).toBe(false);
    expect(engine.ingest(msg(A, 23, 41), 'socket').kind).toBe('delivered');
  });

  test('a joined frame for a known conversation resets it; a page asked for before the reset is ignored for it', async () => {
    let release: (() => void) | undefined;
    const bodies: SyncBody[] = [];
    const responses = [
      // Asked for before the reset: an old view of A.
      page({ conversations: [summary(A, 12, 13)], messages: [msg(A, 11, 13)], cursors: [{ conversationId: A, rev: 13 }] }),
      page({ conversations: [summary(A, 21, 30, 20, 20)], messages: [msg(A, 21, 30)], cursors: [{ conversationId: A, rev: 30 }] }),
    ];
    const api = {
      sync: async (body: SyncBody) => {
        bodies.push(structuredClone(body));
        if (bodies.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return responses.shift()!;
      },
    };
    const { engine, events, store } = engineWith(api, { [A]: { rev: 12, deliveredSeq: 10 } });
    await engine.load();
    const running = engine.request();
    await Promise.resolve();
    expect(engine.reset(A)).toBe(true);
    expect(engine.reset(B)).toBe(false);
    const again = engine.request();
    release?.();
    await Promise.all([running, again]);
    expect(bodies.map((b) => b.cursors)).toEqual([[{ conversationId: A, rev: 12 }], []]);
    expect(events.filter((e) => e.startsWith('message') || e.startsWith('removed'))).toEqual(['message 21@30']);
    expect(store.load()[A]).toEqual({ rev: 30, deliveredSeq: 21, lastReadSeq: 20 });
  });

  test('a long first pull delivers and commits page by page; a failure resumes from the last page applied', async () => {
    const { api, bodies } = scripted([
      page({ conversations: [summary(A, 4, 4)], messages: [msg(A, 1, 1), msg(A, 2, 2)], cursors: [{ conversationId: A, rev: 2 }], hasMore: true }),
      new ParleyClientError('UNAVAILABLE', 'database down', { status: 503 }),
      page({ conversations: [summary(A, 4, 4)], messages: [msg(A, 3, 3), msg(A, 4, 4)], cursors: [{ conversationId: A, rev: 4 }] }),
    ]);
    const { engine, events, store } = engineWith(api);
    const seenAtFailure: string[] = [];
    const sync = api.sync;
    api.sync = async (body) => {
      if (bodies.length === 1) seenAtFailure.push(...events.filter((e) => e.startsWith('message')));
      return sync(body);
    };
    await engine.request();
    // The first page was shown before the second was asked for, and the retry continued from rev 2.
    expect(seenAtFailure).toEqual(['message 1@1', 'message 2@2']);
    expect(bodies.map((b) => b.cursors[0]?.rev)).toEqual([undefined, 2, 2]);
    expect(events.filter((e) => e.startsWith('message'))).toEqual(['message 1@1', 'message 2@2', 'message 3@3', 'message 4@4']);
    expect(store.load()[A]).toEqual({ rev: 4, deliveredSeq: 4, lastReadSeq: 0 });
  });

  test('a copy from a conversation I left is forgotten by the next pull and does not keep a gap open', async () => {
    const { api } = scripted([page({ removed: [B] }), page({})]);
    const { engine } = engineWith(api, { [A]: { rev: 3, deliveredSeq: 3 } });
    await engine.load();
    // The ack of a retried send to B, which I left meanwhile (never known, or known and removed).
    expect(engine.ingest(msg(B, 7, 9), 'send').kind).toBe('held');
    expect(engine.hasOpenGap()).toBe(true); // not checked by a pull yet
    await engine.request();
    expect(engine.hasOpenGap()).toBe(false);
    expect(engine.ingest(msg(B, 8, 10), 'send').kind).toBe('held');
    await engine.request();
    expect(engine.hasOpenGap()).toBe(false);
  });

  test('a gap the server cannot fill: follow-up pulls and gap-triggered pulls wait a growing delay, no storm', async () => {
    jest.useFakeTimers();
    try {
      let calls = 0;
      // The server never sends seq 4 (A is stuck with 5 held).
      const api = {
        sync: async (): Promise<SyncResponse> => {
          calls += 1;
          return page({ cursors: [{ conversationId: A, rev: 10 }] });
        },
      };
      const { engine } = engineWith(api, { [A]: { rev: 3, deliveredSeq: 3 } });
      await engine.load();
      expect(engine.ingest(msg(A, 5, 5), 'socket').kind).toBe('held');
      const first = engine.requestForGap();
      await jest.advanceTimersByTimeAsync(0);
      expect(calls).toBe(1);
      // Live messages keep arriving behind the gap: they do not start pulls of their own.
      for (let seq = 6; seq < 16; seq += 1) {
        expect(engine.ingest(msg(A, seq, seq), 'socket').kind).toBe('held');
        void engine.requestForGap();
      }
      await jest.advanceTimersByTimeAsync(999);
      expect(calls).toBe(1);
      await jest.advanceTimersByTimeAsync(1); // follow-up 1 after 1 s
      expect(calls).toBe(2);
      await jest.advanceTimersByTimeAsync(2000); // follow-up 2 after 2 s
      expect(calls).toBe(3);
      await jest.advanceTimersByTimeAsync(4000); // follow-up 3 after 4 s
      expect(calls).toBe(4);
      await first;
      for (let seq = 16; seq < 30; seq += 1) {
        engine.ingest(msg(A, seq, seq), 'socket');
        void engine.requestForGap();
      }
      await jest.advanceTimersByTimeAsync(7999);
      expect(calls).toBe(4);
      await jest.advanceTimersByTimeAsync(1); // one deferred pull, after the capped delay
      expect(calls).toBe(5);
      await engine.stop();
    } finally {
      jest.useRealTimers();
    }
  });

  test('clear forgets all state, in memory, in ordered delivery and in the store, and drops a pull in flight', async () => {
    let release: (() => void) | undefined;
    const api = {
      sync: async (): Promise<SyncResponse> => {
        await new Promise<void>((resolve) => (release = resolve));
        return page({ conversations: [summary(B, 1, 1)], messages: [msg(B, 1, 1)], cursors: [{ conversationId: B, rev: 1 }] });
      },
    };
    const { engine, delivery, events, store } = engineWith(api, { [A]: { rev: 3, deliveredSeq: 3 } });
    await engine.load();
    const running = engine.request();
    await Promise.resolve();
    await engine.clear();
    release?.();
    await expect(running).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(store.load()).toEqual({});
    expect(engine.knownConversations()).toEqual([]);
    expect(delivery.isAnchored(A)).toBe(false);
    expect(events).toEqual([]);
  });
});
