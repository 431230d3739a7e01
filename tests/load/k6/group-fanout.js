// @ts-check
/**
 * Group fan-out: USERS connected users in USERS / GROUP_SIZE groups. In each group the
 * first SENDERS members send; together all senders offer RATE messages a second for
 * DURATION. Every message is pushed to all GROUP_SIZE members' sockets, so deliveries
 * run at about RATE × GROUP_SIZE a second. SENDERS=50 on one group is the hot
 * conversation (many concurrent senders on one seq counter).
 *
 *   k6 run -e USERS=1000 -e GROUP_SIZE=1000 -e RATE=100 -e DURATION=60s tests/load/k6/group-fanout.js
 *   k6 run -e USERS=50 -e GROUP_SIZE=50 -e SENDERS=50 -e RATE=2000 -e FRAMES_PER_SECOND=100 tests/load/k6/group-fanout.js
 */
import {
  COMMON_THRESHOLDS,
  callInSlices,
  chunks,
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

const cfg = loadConfig({ USERS: 100, RATE: 20, DURATION: '60s', GROUP_SIZE: 100, SENDERS: 1 });
requireThat(cfg.users % cfg.groupSize === 0, `USERS (${cfg.users}) must be a multiple of GROUP_SIZE (${cfg.groupSize})`);
requireThat(cfg.senders <= cfg.groupSize, `SENDERS (${cfg.senders}) cannot exceed GROUP_SIZE (${cfg.groupSize})`);
const groups = cfg.users / cfg.groupSize;
const allSenders = groups * cfg.senders;
/** Each sender sends every periodMs. */
const periodMs = (allSenders / cfg.rate) * 1000;
requireThat(
  cfg.rate / allSenders < cfg.framesPerSecond,
  `RATE / senders = ${cfg.rate / allSenders} frames a second per socket reaches the gateways' limit (FRAMES_PER_SECOND = ${cfg.framesPerSecond}): add SENDERS or raise the gateways' RATE_LIMIT_FRAMES_PER_SECOND and FRAMES_PER_SECOND`,
);

// The fan-out target: p99 send→deliver within 100 ms.
export const options = scenarioOptions(
  cfg,
  'group_fanout',
  Object.assign({}, COMMON_THRESHOLDS, {
    parley_send_ack_ms: ['p(99)<100'],
    parley_send_deliver_ms: ['p(99)<100'],
    parley_deliveries_missing: ['count<1'],
    parley_deliveries_expected: ['count>0'],
  }),
);

/**
 * Registers the users and makes the groups: member 0 of each creates it with up to
 * 1,000 others, and adds the rest 1,000 at a time.
 */
export function setup() {
  const runId = P.newRunId();
  const users = registerUsers(cfg, runId, cfg.users);
  /** @type {P.RestRequest[]} */
  const creates = [];
  /** @type {string[][][]} */
  const later = [];
  for (let group = 0; group < groups; group += 1) {
    const members = users.slice(group * cfg.groupSize, (group + 1) * cfg.groupSize);
    const others = chunks(
      members.slice(1).map((member) => member.userId),
      P.GROUP_MEMBERS_PER_REQUEST,
    );
    creates.push(P.createGroupRequest(members[0].accessToken, `k6 ${runId} group ${group}`, others.length > 0 ? others[0] : []));
    later.push(others.slice(1));
  }
  const created = callInSlices(cfg, creates, [201]).map((json) => P.readConversation(json).id);
  /** @type {P.RestRequest[]} */
  const adds = [];
  later.forEach((batches, group) => {
    const owner = users[group * cfg.groupSize];
    for (const userIds of batches) adds.push(P.addMembersRequest(owner.accessToken, created[group], userIds));
  });
  callInSlices(cfg, adds, [200]);
  return { runId, t0: Date.now() };
}

export default function (/** @type {import('./lib/parley.js').SetupData} */ data) {
  const index = userIndex();
  const plan = timeline(cfg, data);
  const group = Math.floor(index / cfg.groupSize);
  const position = index % cfg.groupSize;
  const session = vuSession(cfg, data, index);
  const mine = session.conversations().filter((conversation) => conversation.kind === 'group');
  requireThat(mine.length === 1, `${session.username} should be in one group, is in ${mine.length}`);
  const conversationId = mine[0].id;
  const tracker = new P.DeliveryTracker();
  let firstHello = true;

  holdSocket(cfg, data, session, tracker, (conn) => {
    if (firstHello && Date.now() > plan.windowStart) recordError('late', { phase: 'connect' });
    firstHello = false;
    const now = session.conversations().filter((conversation) => conversation.id === conversationId);
    tracker.open(conversationId, now.length === 1 ? now[0].lastSeq : 0);
    if (position >= cfg.senders) return;
    const sender = group * cfg.senders + position;
    paceOver(conn, plan, periodMs, (sender / allSenders) * periodMs, () => conn.send(conversationId));
  });
  settleDeliveries(session, tracker);
}
