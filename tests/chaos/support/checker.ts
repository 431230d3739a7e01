import type { Message } from '@parley/client';

/**
 * The one checker of DESIGN.md invariants 1–3, in the style of a Jepsen checker: the test
 * logs every send's outcome (acked with its seq, failed with an error, timed out, or still
 * pending), then hands over every member's full history as the message service returns it
 * (and, when there is one, what the member's client showed). The checker does not wait or
 * retry; it only counts.
 */

/** What a sender learned about one send. */
export type SendOutcome =
  | { kind: 'acked'; message: Message }
  | { kind: 'failed'; code: string; retryable: boolean }
  | { kind: 'timeout' }
  | { kind: 'pending' };

export interface SendRecord {
  clientMessageId: string;
  conversationId: string;
  sender: string;
  body: string;
  outcome: SendOutcome;
}

/** One member's view of one conversation. */
export interface MemberView {
  member: string;
  conversationId: string;
  /** The member's full history from the message service (GET history, paged forward). */
  history: readonly Message[];
  /** What the member's client emitted, in emission order (absent: the member has no client). */
  delivered?: readonly Message[];
}

export interface CheckReport {
  sent: number;
  acked: number;
  failed: number;
  /** Timed out, or still without an answer when checked: its message may exist once or not at all. */
  timedOut: number;
  /** Acked messages that some member's history or client lacks (each message counted once). */
  lost: number;
  /** Extra copies: a client message id stored twice, or a seq a client emitted twice. */
  duplicated: number;
  /** Places where a member's history or client went backwards or stood still in seq. */
  reordered: number;
  /** Seqs missing between 1 and the highest seq of a conversation's history. */
  gaps: number;
  /** Member views that differ from the conversation's reference history. */
  divergent: number;
  /** Acks whose seq or body differ from what is stored under that client message id. */
  wrongSeq: number;
  /** Stored messages nobody sent (a body or id the ledger does not know). */
  phantom: number;
  /** Sends that failed or timed out but are stored (allowed, at most once each). */
  unackedStored: number;
}

/** The invariant counters that must all be zero. */
export const MUST_BE_ZERO = ['lost', 'duplicated', 'reordered', 'gaps', 'divergent', 'wrongSeq', 'phantom'] as const;

const key = (message: Pick<Message, 'senderId' | 'clientMessageId'>) => `${message.senderId}/${message.clientMessageId}`;
const shape = (message: Message) => `${message.seq}|${key(message)}|${message.body ?? ''}`;

/**
 * Checks the send log against the histories. `complete` says the log holds every send made
 * to these conversations, so any stored message outside it is a phantom.
 */
export function check(records: readonly SendRecord[], views: readonly MemberView[], options: { complete?: boolean } = {}): CheckReport {
  const complete = options.complete ?? true;
  const report: CheckReport = {
    sent: records.length,
    acked: 0,
    failed: 0,
    timedOut: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    gaps: 0,
    divergent: 0,
    wrongSeq: 0,
    phantom: 0,
    unackedStored: 0,
  };
  const byId = new Map(records.map((record) => [record.clientMessageId, record]));
  for (const record of records) {
    if (record.outcome.kind === 'acked') report.acked += 1;
    else if (record.outcome.kind === 'failed') report.failed += 1;
    else report.timedOut += 1;
  }

  const conversations = new Map<string, MemberView[]>();
  for (const view of views) {
    const list = conversations.get(view.conversationId) ?? [];
    list.push(view);
    conversations.set(view.conversationId, list);
  }

  const lostIds = new Set<string>();
  for (const [conversationId, members] of conversations) {
    const reference = members[0]!.history;
    const referenceShape = reference.map(shape).join('\n');

    // Gaps: every seq from 1 to the highest is there.
    const seqs = new Set(reference.map((message) => message.seq));
    const highest = reference.reduce((max, message) => Math.max(max, message.seq), 0);
    for (let seq = 1; seq <= highest; seq += 1) if (!seqs.has(seq)) report.gaps += 1;

    // The reference against the log: acks match what is stored, nothing unknown is stored,
    // an unacknowledged send is stored at most once (copies count as duplicates below).
    const stored = new Map<string, Message>();
    for (const message of reference) {
      stored.set(message.clientMessageId, message);
      const record = byId.get(message.clientMessageId);
      if (!record || record.body !== message.body) {
        if (complete) report.phantom += 1;
        continue;
      }
      if (record.outcome.kind !== 'acked') report.unackedStored += 1;
    }
    for (const record of records) {
      if (record.conversationId !== conversationId || record.outcome.kind !== 'acked') continue;
      const found = stored.get(record.clientMessageId);
      if (found && (found.seq !== record.outcome.message.seq || found.body !== record.outcome.message.body)) report.wrongSeq += 1;
    }

    for (const view of members) {
      const lists = [view.history, ...(view.delivered ? [view.delivered] : [])];
      for (const list of lists) {
        const ids = new Set(list.map(key));
        const distinctSeqs = new Set(list.map((message) => message.seq));
        report.duplicated += list.length - Math.min(ids.size, distinctSeqs.size);
        for (let index = 1; index < list.length; index += 1) if (list[index]!.seq <= list[index - 1]!.seq) report.reordered += 1;
        const present = new Set(list.map((message) => message.clientMessageId));
        for (const record of records) {
          if (record.conversationId === conversationId && record.outcome.kind === 'acked' && !present.has(record.clientMessageId)) {
            lostIds.add(record.clientMessageId);
          }
        }
      }
      if (view.history.map(shape).join('\n') !== referenceShape) report.divergent += 1;
      if (view.delivered && view.delivered.map(shape).join('\n') !== referenceShape) report.divergent += 1;
    }
  }
  // An acked message in a conversation nobody's history was given for is lost too.
  for (const record of records) {
    if (record.outcome.kind === 'acked' && !conversations.has(record.conversationId)) lostIds.add(record.clientMessageId);
  }
  report.lost = lostIds.size;
  return report;
}

/** One line: the counters, then any extra figures (`recovery_ms=…`). */
export function formatReport(what: string, report: CheckReport, extra: Record<string, string | number> = {}): string {
  const fields: Array<[string, string | number]> = [
    ['sent', report.sent],
    ['acked', report.acked],
    ['failed', report.failed],
    ['timed-out', report.timedOut],
    ['lost', report.lost],
    ['duplicated', report.duplicated],
    ['reordered', report.reordered],
    ['gaps', report.gaps],
    ['divergent', report.divergent],
    ['wrong-seq', report.wrongSeq],
    ['phantom', report.phantom],
    ['unacked-stored', report.unackedStored],
    ...Object.entries(extra),
  ];
  return `[${what}] ${fields.map(([name, value]) => `${name}=${value}`).join(' ')}`;
}

/** The invariant counters of a report, for `expect(...).toEqual(zeroes())`. */
export function invariantCounters(report: CheckReport): Record<(typeof MUST_BE_ZERO)[number], number> {
  return Object.fromEntries(MUST_BE_ZERO.map((name) => [name, report[name]])) as Record<(typeof MUST_BE_ZERO)[number], number>;
}

export function zeroes(): Record<(typeof MUST_BE_ZERO)[number], number> {
  return Object.fromEntries(MUST_BE_ZERO.map((name) => [name, 0])) as Record<(typeof MUST_BE_ZERO)[number], number>;
}

/** The p-th percentile (0–100) of some durations, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
