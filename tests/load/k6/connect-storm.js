// @ts-check
/**
 * Connect storm: USERS authenticated sockets opened through nginx at RATE new sockets per
 * second (user i at RAMP + i / RATE), each answered `hello` and a `ping`, then all held
 * open until the end of DURATION and closed. The arrivals are scheduled, not paced by the
 * server: if the fleet cannot accept RATE a second, connect latency grows and the
 * thresholds fail, instead of the storm quietly slowing down.
 *
 *   k6 run -e USERS=10000 -e RATE=2000 -e DURATION=30s tests/load/k6/connect-storm.js
 */
import {
  COMMON_THRESHOLDS,
  loadConfig,
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

const cfg = loadConfig({ USERS: 1000, RATE: 200, DURATION: '30s' });
const arrivalsS = cfg.users / cfg.rate;
requireThat(
  arrivalsS <= cfg.durationS,
  `USERS / RATE = ${arrivalsS} s of arrivals do not fit in DURATION = ${cfg.durationS} s: raise DURATION or RATE`,
);

export const options = scenarioOptions(
  cfg,
  'connect_storm',
  Object.assign({}, COMMON_THRESHOLDS, {
    parley_connect_hello_ms: ['p(99)<1000'],
    ws_connecting: ['p(99)<1000'],
    parley_ping_ms: ['p(99)<100'],
  }),
);

/** Registers the users; the VUs log in themselves (see lib/parley.js, vuSession). */
export function setup() {
  const runId = P.newRunId();
  registerUsers(cfg, runId, cfg.users);
  return { runId, t0: Date.now() };
}

export default function (/** @type {import('./lib/parley.js').SetupData} */ data) {
  const index = userIndex();
  const plan = timeline(cfg, data);
  const session = vuSession(cfg, data, index);
  const slot = plan.windowStart + (index / cfg.rate) * 1000;
  // Logged in too late for its arrival slot: the storm is no longer the one configured.
  if (Date.now() > slot + 1000) recordError('late', { phase: 'login' });
  sleepUntil(slot);
  runSocket(cfg, session, data.runId, {
    untilMs: plan.windowEnd,
    onHello(conn) {
      conn.ping();
    },
  });
}
