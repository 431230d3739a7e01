// @ts-check
/**
 * Offline catch-up: USERS users each come back to BACKLOG messages that arrived while
 * they were offline, at RATE returning users a second (user i at RAMP + i / RATE): the
 * herd after an outage. Each connects, waits for `hello`, pulls everything with
 * `POST /v1/sync` page by page (SYNC_LIMIT messages a page) as docs/protocol.md
 * prescribes, marks the newest message read over the socket, and leaves.
 * `parley_catchup_ms` runs from the connect to the last page applied.
 *
 * The backlog is made in setup(): SENDERS other users, each in direct conversations with
 * USERS / SENDERS of them, send it through the REST API (the same idempotent send).
 *
 *   k6 run -e USERS=10000 -e RATE=2000 -e BACKLOG=20 -e DURATION=30s tests/load/k6/offline-catchup.js
 */
import {
  COMMON_THRESHOLDS,
  call,
  callInSlices,
  loadConfig,
  metrics,
  recordError,
  registerUsers,
  requireThat,
  runSocket,
  scenarioOptions,
  sleepUntil,
  timeline,
  userIndex,
  vuSession,
} from './lib/parley.js';
import * as P from './lib/frames.js';

const cfg = loadConfig({ USERS: 200, RATE: 50, DURATION: '30s', SENDERS: 10, BACKLOG: 50 });
const arrivalsS = cfg.users / cfg.rate;
requireThat(
  arrivalsS <= cfg.durationS,
  `USERS / RATE = ${arrivalsS} s of arrivals do not fit in DURATION = ${cfg.durationS} s: raise DURATION or RATE`,
);
requireThat(cfg.senders <= cfg.users, `SENDERS (${cfg.senders}) cannot exceed USERS (${cfg.users})`);
/** A sync page loop that does not end is a protocol bug (docs/protocol.md, Recovering with sync). */
const MAX_SYNC_PAGES = 10000;

// The reconnect target: every client back and caught up within 10 s.
export const options = scenarioOptions(
  cfg,
  'offline_catchup',
  Object.assign({}, COMMON_THRESHOLDS, {
    parley_catchup_ms: ['p(99)<10000'],
    parley_deliveries_missing: ['count<1'],
    parley_deliveries_expected: ['count>0'],
  }),
);

/**
 * Registers USERS returning users (indexes 0…USERS-1, one per VU) and SENDERS senders
 * after them, opens each returning user's conversation with sender `i % SENDERS`, and
 * sends the backlog, interleaved across conversations so no one conversation is hot.
 */
export function setup() {
  const runId = P.newRunId();
  const users = registerUsers(cfg, runId, cfg.users + cfg.senders);
  const senderOf = (/** @type {number} */ index) => users[cfg.users + (index % cfg.senders)];
  /** @type {P.RestRequest[]} */
  const opens = [];
  for (let index = 0; index < cfg.users; index += 1) {
    opens.push(P.openDirectRequest(senderOf(index).accessToken, users[index].userId));
  }
  const conversations = callInSlices(cfg, opens, [200, 201]).map((json) => P.readConversation(json).id);
  /** @type {P.RestRequest[]} */
  const sends = [];
  for (let n = 1; n <= cfg.backlog; n += 1) {
    for (let index = 0; index < cfg.users; index += 1) {
      const body = P.loadBody(runId, Date.now(), cfg.messageLength);
      const clientMessageId = P.clientMessageIdFor(runId, `s${index}`, n);
      sends.push(P.sendMessageRequest(senderOf(index).accessToken, conversations[index], clientMessageId, body));
    }
  }
  // 200 is a retried send the service had already stored (same client message id).
  callInSlices(cfg, sends, [200, 201]);
  return { runId, t0: Date.now() };
}

export default function (/** @type {import('./lib/parley.js').SetupData} */ data) {
  const index = userIndex();
  const plan = timeline(cfg, data);
  const session = vuSession(cfg, data, index);
  const slot = plan.windowStart + (index / cfg.rate) * 1000;
  if (Date.now() > slot + 1000) recordError('late', { phase: 'login' });
  sleepUntil(slot);
  const startedAt = Date.now();
  let caughtUp = false;

  runSocket(cfg, session, data.runId, {
    untilMs: plan.drainEnd,
    onHello(conn) {
      const state = new P.SyncState();
      /** @type {{ [key: string]: boolean }} */
      const seen = {};
      let got = 0;
      /** @type {P.SyncedMessage | null} */
      let newest = null;
      for (let pages = 1; ; pages += 1) {
        const request = P.syncRequest(session.accessToken, state.cursors(), cfg.syncLimit);
        const page = state.apply(call(cfg, request, [200], 30).json);
        for (const message of page.messages) {
          const load = P.readLoadBody(message.body);
          const key = `${message.conversationId}:${message.seq}`;
          if (!load || load.runId !== data.runId || seen[key]) continue;
          seen[key] = true;
          got += 1;
          if (newest === null || message.seq > newest.seq) newest = message;
        }
        if (!page.hasMore) break;
        if (pages >= MAX_SYNC_PAGES) {
          recordError('sync_never_ends');
          break;
        }
      }
      metrics.catchup.add(Date.now() - startedAt);
      metrics.synced.add(got);
      metrics.deliveriesExpected.add(cfg.backlog);
      metrics.deliveriesMissing.add(Math.max(0, cfg.backlog - got));
      caughtUp = true;
      // Opening the conversation: mark the newest read, then leave once it is acknowledged.
      if (newest === null) conn.close();
      else conn.read(newest.conversationId, newest.seq);
    },
    onReply(conn, request) {
      if (request.kind === 'read') conn.close();
    },
  });
  if (!caughtUp) {
    recordError('not_caught_up');
    metrics.deliveriesExpected.add(cfg.backlog);
    metrics.deliveriesMissing.add(cfg.backlog);
  }
}
