import type { Message } from '@parley/protocol';
import { OrderedDelivery, type OfferOutcome } from './ordered-delivery';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

/** A message; `rev` defaults to `seq` (a conversation with sends only). */
function msg(seq: number, options: { rev?: number; body?: string | null; conversationId?: string } = {}): Message {
  return {
    conversationId: options.conversationId ?? A,
    seq,
    rev: options.rev ?? seq,
    senderId: '00000000-0000-4000-8000-0000000000ff',
    clientMessageId: `c${seq}`,
    body: options.body === undefined ? `m${seq}` : options.body,
    createdAt: '2026-01-01T00:00:00.000Z',
    editedAt: null,
    deletedAt: options.body === null ? '2026-01-01T00:00:01.000Z' : null,
  };
}

const seqs = (outcome: OfferOutcome) => (outcome.kind === 'delivered' ? outcome.delivered.map((d) => d.message.seq) : []);

describe('OrderedDelivery', () => {
  test('delivers consecutive seqs at once, in order', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 0);
    expect(seqs(delivery.offer(msg(1), 'socket'))).toEqual([1]);
    expect(seqs(delivery.offer(msg(2), 'socket'))).toEqual([2]);
    expect(delivery.deliveredSeq(A)).toBe(2);
  });

  test('drops a duplicate: the same message via the socket and again via sync is delivered once', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 4);
    expect(seqs(delivery.offer(msg(5), 'socket'))).toEqual([5]);
    expect(delivery.offer(msg(5), 'sync')).toEqual({ kind: 'duplicate' });
    expect(delivery.offer(msg(5), 'send')).toEqual({ kind: 'duplicate' });
    expect(delivery.deliveredSeq(A)).toBe(5);
  });

  test('a gap holds later messages (seq 7 after 5) until the missing one arrives, then releases them in order', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 5);
    expect(delivery.offer(msg(7), 'socket')).toEqual({ kind: 'held', reason: 'gap' });
    expect(delivery.offer(msg(8), 'socket')).toEqual({ kind: 'held', reason: 'gap' });
    expect(delivery.heldCount(A)).toBe(2);
    expect(delivery.minHeldRev(A)).toBe(7);
    expect(delivery.conversationsWithHeld()).toEqual([A]);

    const outcome = delivery.offer(msg(6), 'sync');
    expect(outcome.kind).toBe('delivered');
    if (outcome.kind !== 'delivered') return;
    expect(outcome.delivered.map((d) => [d.message.seq, d.source])).toEqual([
      [6, 'sync'],
      [7, 'socket'],
      [8, 'socket'],
    ]);
    expect(delivery.heldCount(A)).toBe(0);
    expect(delivery.minHeldRev(A)).toBeUndefined();
    // A late copy of a held-then-delivered message is a duplicate.
    expect(delivery.offer(msg(7), 'sync')).toEqual({ kind: 'duplicate' });
  });

  test('a sync page in rev order (seq 6 before an edited seq 5) still comes out in seq order', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 4);
    // Since the cursor: send 5 (rev 10), send 6 (rev 11), edit 5 (rev 12). Sync returns 6@11, 5@12.
    expect(delivery.offer(msg(6, { rev: 11 }), 'sync')).toEqual({ kind: 'held', reason: 'gap' });
    const outcome = delivery.offer(msg(5, { rev: 12, body: 'edited' }), 'sync');
    expect(seqs(outcome)).toEqual([5, 6]);
    if (outcome.kind === 'delivered') expect(outcome.delivered[0]?.message.body).toBe('edited');
  });

  test('newer versions of a delivered message are updates; older or equal ones are dropped', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 0);
    delivery.offer(msg(1, { rev: 1 }), 'socket');
    const edit = delivery.offer(msg(1, { rev: 3, body: 'edited' }), 'socket');
    expect(edit).toMatchObject({ kind: 'updated', source: 'socket', message: { seq: 1, rev: 3, body: 'edited' } });
    // The same edit again via sync, and the original send arriving late: both already applied.
    expect(delivery.offer(msg(1, { rev: 3, body: 'edited' }), 'sync')).toEqual({ kind: 'duplicate' });
    expect(delivery.offer(msg(1, { rev: 1 }), 'sync')).toEqual({ kind: 'duplicate' });
    const deleted = delivery.offer(msg(1, { rev: 4, body: null }), 'sync');
    expect(deleted).toMatchObject({ kind: 'updated', message: { body: null } });
  });

  test('versions at or below the cursor (revFloor) are dropped even when the seen-memory forgot them', () => {
    const floor = new Map([[A, 10]]);
    const delivery = new OrderedDelivery({ revFloor: (id) => floor.get(id) ?? 0, seenCapacity: 1 });
    delivery.restore(A, 9);
    expect(delivery.offer(msg(3, { rev: 8 }), 'sync')).toEqual({ kind: 'duplicate' });
    expect(delivery.offer(msg(3, { rev: 10 }), 'sync')).toEqual({ kind: 'duplicate' });
    expect(delivery.offer(msg(3, { rev: 11 }), 'sync').kind).toBe('updated');
  });

  test('the seen-memory is bounded: the oldest entries are forgotten first', () => {
    const delivery = new OrderedDelivery({ seenCapacity: 2 });
    delivery.restore(A, 0);
    [1, 2, 3].forEach((seq) => delivery.offer(msg(seq), 'socket'));
    // seq 1 was forgotten: a copy of it is taken for an update (harmless, same content); 3 is still known.
    expect(delivery.offer(msg(1), 'sync').kind).toBe('updated');
    expect(delivery.offer(msg(3), 'sync')).toEqual({ kind: 'duplicate' });
  });

  test('a held message is replaced by a newer version of it, never by an older one', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 0);
    delivery.offer(msg(2, { rev: 5, body: 'v2' }), 'socket');
    delivery.offer(msg(2, { rev: 2, body: 'v1' }), 'sync');
    const outcome = delivery.offer(msg(1), 'sync');
    expect(outcome.kind === 'delivered' && outcome.delivered.map((d) => d.message.body)).toEqual(['m1', 'v2']);
  });

  test('an unanchored conversation holds everything until anchored at its joinedSeq', () => {
    const delivery = new OrderedDelivery();
    expect(delivery.isAnchored(B)).toBe(false);
    expect(delivery.offer(msg(52, { conversationId: B }), 'socket')).toEqual({ kind: 'held', reason: 'unanchored' });
    expect(delivery.offer(msg(51, { conversationId: B }), 'sync')).toEqual({ kind: 'held', reason: 'unanchored' });
    // A member added at seq 50 sees 51 first.
    expect(delivery.anchorAt(B, 50).map((d) => d.message.seq)).toEqual([51, 52]);
    expect(delivery.deliveredSeq(B)).toBe(52);
    expect(delivery.anchorAt(B, 40)).toEqual([]); // already past it: no effect
    expect(delivery.deliveredSeq(B)).toBe(52);
  });

  test('anchorAt never drops a held message: copies at or below joinedSeq come out first, in seq order', () => {
    const delivery = new OrderedDelivery();
    delivery.offer(msg(3), 'socket');
    expect(delivery.anchorAt(A, 10).map((d) => d.message.seq)).toEqual([3]);
    expect(delivery.deliveredSeq(A)).toBe(10);
    expect(seqs(delivery.offer(msg(11), 'socket'))).toEqual([11]);
  });

  test('anchorAt without held messages sets the mark: the next seq is delivered, a later one is a gap', () => {
    const delivery = new OrderedDelivery();
    expect(delivery.anchorAt(A, 50)).toEqual([]);
    expect(delivery.offer(msg(52), 'socket')).toEqual({ kind: 'held', reason: 'gap' });
    expect(seqs(delivery.offer(msg(51), 'socket'))).toEqual([51, 52]);
  });

  test('removed and re-added: anchorAt moves an anchored mark up past seqs that will never come and releases what waits', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 10);
    // Re-added at seq 20: 11..20 are not visible any more, 21 and 22 arrived live.
    expect(delivery.offer(msg(22), 'socket')).toEqual({ kind: 'held', reason: 'gap' });
    expect(delivery.offer(msg(21), 'socket')).toEqual({ kind: 'held', reason: 'gap' });
    expect(delivery.anchorAt(A, 20).map((d) => d.message.seq)).toEqual([21, 22]);
    expect(delivery.conversationsWithHeld()).toEqual([]);
    expect(seqs(delivery.offer(msg(23), 'socket'))).toEqual([23]);
  });

  test('restore after a copy was held counts copies at or below the mark as delivered', () => {
    const delivery = new OrderedDelivery();
    delivery.offer(msg(4), 'socket');
    delivery.offer(msg(6), 'socket');
    expect(delivery.restore(A, 5).map((d) => d.message.seq)).toEqual([6]);
    expect(delivery.heldCount(A)).toBe(0);
  });

  test('conversations are independent', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 0);
    delivery.restore(B, 0);
    expect(delivery.offer(msg(2), 'socket').kind).toBe('held');
    expect(seqs(delivery.offer(msg(1, { conversationId: B }), 'socket'))).toEqual([1]);
    expect(delivery.conversationsWithHeld()).toEqual([A]);
  });

  test('forget drops held messages and the seen-memory of a conversation', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 0);
    delivery.offer(msg(1), 'socket');
    delivery.offer(msg(3), 'socket');
    delivery.forget(A);
    expect(delivery.isAnchored(A)).toBe(false);
    expect(delivery.heldCount(A)).toBe(0);
    expect(delivery.conversationsWithHeld()).toEqual([]);
  });

  test('restore only moves the mark forward', () => {
    const delivery = new OrderedDelivery();
    delivery.restore(A, 5);
    delivery.restore(A, 3);
    expect(delivery.deliveredSeq(A)).toBe(5);
  });
});
