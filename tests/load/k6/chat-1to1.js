// @ts-check
/**
 * Steady 1:1 chat: USERS connected users in USERS / 2 direct conversations; together they
 * send RATE messages a second over the socket (each user RATE / USERS a second, evenly
 * phased), whatever the replies, for DURATION. Every message is stored (its `ack` comes
 * after the PostgreSQL commit) and pushed to both members' sockets.
 *
 *   k6 run -e USERS=10000 -e RATE=1000 -e DURATION=2m tests/load/k6/chat-1to1.js
 */
import {
  COMMON_THRESHOLDS,
  callInSlices,
  holdSocket,
  loadConfig,
  recordError,
  registerUsers,
  requireThat,
  scenarioOptions,
  paceOver,
  settleDeliveries,
  timeline,
  userIndex,
  vuSession,
} from './lib/parley.js';
import * as P from './lib/frames.js';

const cfg = loadConfig({ USERS: 200, RATE: 100, DURATION: '60s' });
requireThat(cfg.users % 2 === 0, `USERS must be even (users chat in pairs), got ${cfg.users}`);
/** Each user sends every periodMs. */
const periodMs = (cfg.users / cfg.rate) * 1000;
const framesPerSocket = (cfg.rate / cfg.users) * (1 + (cfg.readEvery > 0 ? 1 / cfg.readEvery : 0));
requireThat(
  framesPerSocket < cfg.framesPerSecond,
  `RATE / USERS = ${framesPerSocket} frames a second per socket reaches the gateways' limit (FRAMES_PER_SECOND = ${cfg.framesPerSecond})`,
);

// The latency targets at 1,000 messages a second over 10,000 users.
export const options = scenarioOptions(
  cfg,
  'chat_1to1',
  Object.assign({}, COMMON_THRESHOLDS, {
    parley_send_ack_ms: ['p(50)<=3', 'p(99)<=15'],
    parley_send_deliver_ms: ['p(99)<=20'],
    parley_deliveries_missing: ['count<1'],
    parley_deliveries_expected: ['count>0'],
  }),
);

/** Registers the users and opens the direct conversation of each pair (2k, 2k + 1). */
export function setup() {
  const runId = P.newRunId();
  const users = registerUsers(cfg, runId, cfg.users);
  /** @type {P.RestRequest[]} */
  const opens = [];
  for (let first = 0; first < users.length; first += 2) {
    opens.push(P.openDirectRequest(users[first].accessToken, users[first + 1].userId));
  }
  callInSlices(cfg, opens, [200, 201]);
  return { runId, t0: Date.now() };
}

export default function (/** @type {import('./lib/parley.js').SetupData} */ data) {
  const index = userIndex();
  const plan = timeline(cfg, data);
  const session = vuSession(cfg, data, index);
  const direct = session.conversations().filter((conversation) => conversation.kind === 'direct');
  requireThat(direct.length === 1, `${session.username} should have one direct conversation, has ${direct.length}`);
  const conversationId = direct[0].id;
  const tracker = new P.DeliveryTracker();
  let firstHello = true;
  let received = 0;

  holdSocket(
    cfg,
    data,
    session,
    tracker,
    (conn) => {
      if (firstHello && Date.now() > plan.windowStart) recordError('late', { phase: 'connect' });
      firstHello = false;
      // Deliveries count from what the conversation held once this socket listened.
      const now = session.conversations().filter((conversation) => conversation.id === conversationId);
      tracker.open(conversationId, now.length === 1 ? now[0].lastSeq : 0);
      paceOver(conn, plan, periodMs, (index / cfg.users) * periodMs, () => conn.send(conversationId));
    },
    (conn, frame) => {
      // READ_EVERY > 0: the reader marks read every Nth message from the peer, as a
      // client showing the conversation would (each read is one more published event).
      if (cfg.readEvery === 0 || !frame.stored || frame.stored.senderId === session.userId) return;
      received += 1;
      if (received % cfg.readEvery === 0) conn.read(conversationId, frame.stored.seq);
    },
  );
  settleDeliveries(session, tracker);
}
