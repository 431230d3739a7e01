import type { Message } from '@parley/client';
import { check, invariantCounters, percentile, zeroes, type MemberView, type SendRecord } from './support/checker';

// The checker itself, on made-up histories: each counter moves when its fault is present,
// so a fault test that prints zeroes means the fault was absent, not unseen.

const CONV = 'c1';

function message(seq: number, id: string, body = `body ${id}`): Message {
  return {
    conversationId: CONV,
    seq,
    rev: seq,
    senderId: 'u1',
    clientMessageId: id,
    body,
    createdAt: '2024-01-01T00:00:00.000Z',
    editedAt: null,
    deletedAt: null,
  };
}

function acked(seq: number, id: string): SendRecord {
  return { clientMessageId: id, conversationId: CONV, sender: 'a', body: `body ${id}`, outcome: { kind: 'acked', message: message(seq, id) } };
}

const history = [message(1, 'm1'), message(2, 'm2'), message(3, 'm3')];
const records = [acked(1, 'm1'), acked(2, 'm2'), acked(3, 'm3')];
const views = (first: readonly Message[], second: readonly Message[] = first, delivered?: readonly Message[]): MemberView[] => [
  { member: 'a', conversationId: CONV, history: first, ...(delivered ? { delivered } : {}) },
  { member: 'b', conversationId: CONV, history: second },
];

test('a clean run counts nothing', () => {
  const report = check(records, views(history, history, history));
  expect(invariantCounters(report)).toEqual(zeroes());
  expect(report).toMatchObject({ sent: 3, acked: 3, failed: 0, timedOut: 0 });
});

test('an acked message missing from the history is lost, and leaves a gap', () => {
  const report = check(records, views([history[0]!, history[2]!]));
  expect(report).toMatchObject({ lost: 1, gaps: 1 });
});

test('an acked message missing from one client only is lost and that view diverges', () => {
  const report = check(records, views(history, history, [history[0]!, history[1]!]));
  expect(report).toMatchObject({ lost: 1, divergent: 1, gaps: 0 });
});

test('a client message id stored twice is a duplicate; a seq shown twice too', () => {
  expect(check(records, views([...history, message(4, 'm3')])).duplicated).toBe(2);
  expect(check(records, views(history, history, [...history, history[2]!])).duplicated).toBe(1);
});

test('a client showing seqs out of order is reordered', () => {
  expect(check(records, views(history, history, [history[1]!, history[0]!, history[2]!])).reordered).toBe(1);
});

test('members whose histories differ are divergent', () => {
  expect(check(records, views(history, [history[0]!, history[1]!])).divergent).toBe(1);
});

test('an ack whose seq is not the stored one is a wrong seq; a stored message nobody sent is a phantom', () => {
  expect(check([acked(1, 'm1'), acked(3, 'm2'), acked(2, 'm3')], views(history)).wrongSeq).toBe(2);
  expect(check(records, views([...history, message(4, 'x')])).phantom).toBe(1);
  expect(check(records, views([...history, message(4, 'x')]), { complete: false }).phantom).toBe(0);
});

test('a timed-out or failed send may be stored once; it is counted, never as lost', () => {
  const log: SendRecord[] = [
    acked(1, 'm1'),
    acked(2, 'm2'),
    { clientMessageId: 'm3', conversationId: CONV, sender: 'a', body: 'body m3', outcome: { kind: 'timeout' } },
    { clientMessageId: 'm4', conversationId: CONV, sender: 'a', body: 'body m4', outcome: { kind: 'failed', code: 'UNAVAILABLE', retryable: true } },
  ];
  const report = check(log, views(history));
  expect(report).toMatchObject({ sent: 4, acked: 2, failed: 1, timedOut: 1, unackedStored: 1 });
  expect(invariantCounters(report)).toEqual(zeroes());
});

test('percentile is nearest-rank', () => {
  expect(percentile([5, 1, 3], 99)).toBe(5);
  expect(percentile(Array.from({ length: 100 }, (_, index) => index + 1), 99)).toBe(99);
});
