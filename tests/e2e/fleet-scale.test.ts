import { httpRequest, type GatewayHandle } from '@parley/deploy';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { byNode, expectNothingLost, Fleet, Ledger, type FleetClient, type SpreadGroup } from './support/fleet';
import { Signal, within } from './support/wait';

// Scaling the gateway fleet under steady traffic, as docs/runbook.md tells an operator to:
// add a replica (render + nginx -t + reload) and new clients land on it; drain and remove
// another (out of nginx first, then SIGTERM); nothing is lost, no send fails, and the
// connections end balanced within BALANCE_TOLERANCE. Sockets opened before a reload stay
// on nginx's old workers until worker_shutdown_timeout, then reconnect through the new
// config, which spreads them over the current fleet: the test shortens that timeout so
// the rebalance happens within the test.
//
// Then: the Grafana dashboard and the alert rules query only metrics these processes export.

jest.setTimeout(240_000);

const ROOT = path.resolve(__dirname, '../..');
const INITIAL_CLIENTS = 24;
const LATE_CLIENTS = 8;
const SENDERS = 4;
/** Each sender's pace: steady load (4 × 4 messages/s, each delivered to 32 members), not a flood. */
const SEND_INTERVAL_MS = 250;
const WORKER_SHUTDOWN_SECONDS = 8;
const DRAIN_WINDOW_MS = 2000;
/** Balanced: the busiest and the idlest node differ by at most this many sockets, or 20 % of the mean if more. */
function balanceTolerance(mean: number): number {
  return Math.max(2, Math.ceil(0.2 * mean));
}

let fleet: Fleet;

beforeAll(async () => {
  fleet = await Fleet.start({
    name: 'scale',
    gateways: 3,
    drainWindowMs: DRAIN_WINDOW_MS,
    nginxWorkerShutdownTimeoutSeconds: WORKER_SHUTDOWN_SECONDS,
  });
});

afterAll(async () => {
  await fleet?.close();
});

/** Open sockets per live gateway, as each node reports them on /readyz. */
async function socketsPerNode(gateways: readonly GatewayHandle[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const gateway of gateways) {
    const response = await httpRequest(`${gateway.url}/readyz`);
    counts.set(gateway.nodeId, (JSON.parse(response.body) as { connections: number }).connections);
  }
  return counts;
}

function describeCounts(counts: Map<string, number>): string {
  return [...counts].map(([node, count]) => `${node}=${count}`).join(' ');
}

function spread(counts: Map<string, number>): { min: number; max: number; mean: number; tolerance: number; balanced: boolean } {
  const values = [...counts.values()];
  const min = Math.min(...values);
  const max = Math.max(...values);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const tolerance = balanceTolerance(mean);
  return { min, max, mean, tolerance, balanced: max - min <= tolerance };
}

/** When a client's current socket opened (its last `open` state). */
function openedAt(client: FleetClient): number {
  const opens = client.states.filter((change) => change.state === 'open');
  return opens[opens.length - 1]?.at ?? 0;
}

/**
 * Waits until every client holds a socket opened after `since` on one of `gateways`, and
 * the nodes' own counts add up to them: every socket then went through the current nginx
 * config. Client state changes wake the check; the nodes' counts are read when it holds.
 */
async function settled(clients: readonly FleetClient[], gateways: readonly GatewayHandle[], since: number, timeoutMs: number, what: string): Promise<Map<string, number>> {
  const nodes = new Set(gateways.map((gateway) => gateway.nodeId));
  const changed = new Signal();
  const wake = () => changed.notify();
  for (const client of clients) client.client.on('connectionState', wake);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await changed.until(
        () => clients.every((client) => client.client.connectionState === 'open' && openedAt(client) > since && nodes.has(client.nodeId ?? '')),
        Math.max(1, deadline - Date.now()),
        () => `${what}: ${clients.filter((client) => !(client.client.connectionState === 'open' && openedAt(client) > since)).length} clients not yet reconnected`,
      );
      const counts = await socketsPerNode(gateways);
      if ([...counts.values()].reduce((sum, count) => sum + count, 0) === clients.length) return counts;
      if (Date.now() > deadline) throw new Error(`${what}: nodes report ${describeCounts(counts)} for ${clients.length} clients`);
      // Re-read shortly: a node counts a socket a moment after the client saw its hello.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    for (const client of clients) client.client.off('connectionState', wake);
  }
}

/** One sender at a steady pace until `running()` is false; failures are counted, never retried by hand. */
async function paced(client: FleetClient, conversationId: string, ledger: Ledger, running: () => boolean, failures: string[]): Promise<void> {
  for (let index = 0; running(); index += 1) {
    const clientMessageId = `${client.label}-scale-${index}`;
    const body = `${client.label} #${index}`;
    ledger.noteSent(clientMessageId, client.label, body);
    try {
      ledger.noteAcked(clientMessageId, await client.client.send(conversationId, body, { clientMessageId }));
    } catch (error) {
      failures.push(`${clientMessageId}: ${String(error)}`);
    }
    // Pacing the load, not waiting for anything.
    await new Promise((resolve) => setTimeout(resolve, SEND_INTERVAL_MS));
  }
}

/** `name` → summed value over its samples in a Prometheus text scrape, with a label filter. */
function sampleSum(scrape: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of scrape.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    if (Object.entries(labels).every(([key, value]) => (match[2] ?? '').includes(`${key}="${value}"`))) total += Number(match[3]);
  }
  return total;
}

let scrapes: { gateway: string; message: string } | undefined;

it('adds a gateway and new clients land on it, drains and removes another: nothing lost, no failed send, connections balanced', async () => {
  const started = Date.now();
  const members = await fleet.registerMany('s', INITIAL_CLIENTS + LATE_CLIENTS);
  const created = await members[0]!.client.rest.createGroup({ title: 'scale', memberIds: members.slice(1).map((member) => member.user.id) });
  const group: SpreadGroup = { members, conversationId: created.id };
  const initial = members.slice(0, INITIAL_CLIENTS);
  const late = members.slice(INITIAL_CLIENTS);
  await fleet.connectAll(initial);
  const [first, second, third] = fleet.topology.gateways;
  const before = await socketsPerNode([first!, second!, third!]);
  process.stdout.write(`[scale] 3 gateways, ${INITIAL_CLIENTS} clients: ${describeCounts(before)}\n`);
  expect(spread(before).balanced).toBe(true);

  const ledger = new Ledger();
  const failures: string[] = [];
  let running = true;
  const senders = initial.slice(0, SENDERS).map((member) => paced(member, group.conversationId, ledger, () => running, failures));
  await ledger.untilAcked(20, 30_000);

  // Scale out: one more replica, nginx re-rendered, checked and reloaded.
  const addStarted = Date.now();
  const added = await fleet.topology.addGateway();
  const addedAt = Date.now();
  await fleet.connectAll(late);
  const landed = late.filter((client) => client.nodeId === added.nodeId).length;
  const four = fleet.topology.gateways.filter((gateway) => gateway.nodeId !== undefined);
  const afterAdd = await socketsPerNode(four);
  process.stdout.write(
    `[scale] added ${added.nodeId} in ${addedAt - addStarted} ms; ${LATE_CLIENTS} new clients, ${landed} on it: ${describeCounts(afterAdd)}\n`,
  );
  // nginx counts connections afresh after a reload, so new sockets spread evenly over all
  // four: the new node gets at least its share of them.
  expect(landed).toBeGreaterThanOrEqual(Math.floor(LATE_CLIENTS / 4));

  // worker_shutdown_timeout later, the sockets of the old config reconnect through the new one.
  const rebalanced = await settled(members, four, addedAt, WORKER_SHUTDOWN_SECONDS * 1000 + 40_000, 'the rebalance after scale-out');
  const rebalancedIn = Date.now() - addedAt;
  process.stdout.write(`[scale] rebalanced over 4 within ${rebalancedIn} ms of the reload: ${describeCounts(rebalanced)}\n`);
  expect(spread(rebalanced)).toMatchObject({ balanced: true });

  // Scale in: the first replica out of nginx, then SIGTERM: its clients get 1012 and move.
  const victim = first!;
  const victimClients = members.filter((client) => client.nodeId === victim.nodeId);
  const removeStarted = Date.now();
  const exit = await fleet.topology.removeGateway(victim.nodeId);
  const removedIn = Date.now() - removeStarted;
  expect(exit).toEqual({ code: 0, signal: null });
  for (const client of victimClients) {
    const closes = client.states.filter((change) => change.at >= removeStarted && change.closeCode !== undefined);
    expect(closes[0]?.closeCode).toBe(1012);
  }
  const remaining = four.filter((gateway) => gateway.nodeId !== victim.nodeId);
  const final = await settled(members, remaining, removeStarted, WORKER_SHUTDOWN_SECONDS * 1000 + 40_000, 'the rebalance after scale-in');
  const finalSpread = spread(final);
  process.stdout.write(
    `[scale] drained ${victim.nodeId} (${victimClients.length} sockets) and removed it in ${removedIn} ms; ` +
      `settled within ${Date.now() - removeStarted} ms: ${describeCounts(final)} ` +
      `(max-min ${finalSpread.max - finalSpread.min}, tolerance ${finalSpread.tolerance})\n`,
  );
  expect(finalSpread.balanced).toBe(true);
  // The clients' own view agrees with the nodes'.
  expect(new Map([...byNode(members)].map(([node, clients]) => [node, clients.length]))).toEqual(final);

  running = false;
  await within(Promise.all(senders), 60_000, 'the senders to finish');
  const stats = await expectNothingLost('scale', ledger, group);
  expect(failures).toEqual([]);

  const gatewayScrape = (await httpRequest(`${remaining[0]!.url}/metrics`)).body;
  const messageScrape = (await httpRequest(`${fleet.topology.messageUrl}/metrics`)).body;
  scrapes = { gateway: gatewayScrape, message: messageScrape };
  // Sends that reached the service (each goes through its group commit, whichever call
  // carried it), against messages stored: the difference are retries the service answered
  // with the original (a reconnect cut the first ack).
  const sendsAtService = sampleSum(messageScrape, 'parley_send_batch_size_sum');
  const stored = sampleSum(messageScrape, 'parley_messages_stored_total');
  const reconnects = members.reduce((sum, client) => sum + client.states.filter((change) => change.state === 'open').length - 1, 0);
  process.stdout.write(
    `[scale] sends=${stats.sent} acked=${stats.acked} failed=${failures.length} stored=${stored} ` +
      `sends at the service=${sendsAtService} (retried=${sendsAtService - stored}) delivered=${stats.delivered} ` +
      `lost=${stats.lost} duplicated=${stats.duplicated} reconnects=${reconnects} in ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  expect(stored).toBe(stats.acked);
});

describe('observability', () => {
  /** Metric families (name → type) of a Prometheus text scrape. */
  function families(scrape: string): Map<string, string> {
    const found = new Map<string, string>();
    for (const match of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) found.set(match[1]!, match[2]!);
    return found;
  }

  /** Metric names a PromQL expression reads (`up` is Prometheus's own). */
  function metricsIn(expr: string): string[] {
    return [...expr.matchAll(/\b(parley_[a-z0-9_]+|up)\b/g)].map((match) => match[1]!);
  }

  function known(name: string, exported: Map<string, string>): boolean {
    if (name === 'up' || exported.has(name)) return true;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return base !== name && exported.get(base) === 'histogram';
  }

  it('the dashboard, the alert rules and docs/metrics.md name only metrics the services export, and the docs name them all', async () => {
    // A live scrape of this run's processes (after the traffic above; fresh ones if it did not run).
    const gateway = scrapes?.gateway ?? (await httpRequest(`${fleet.topology.gateways.at(-1)!.url}/metrics`)).body;
    const message = scrapes?.message ?? (await httpRequest(`${fleet.topology.messageUrl}/metrics`)).body;
    const exported = new Map([...families(gateway), ...families(message)]);
    expect(exported.get('parley_gateway_connections')).toBe('gauge');
    expect(exported.get('parley_messages_stored_total')).toBe('counter');

    const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/observability/grafana/dashboards/parley.json'), 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const dashboardMetrics = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        for (const name of metricsIn(target.expr)) {
          dashboardMetrics.add(name);
          expect({ panel: panel.title, metric: name, exported: known(name, exported) }).toEqual({ panel: panel.title, metric: name, exported: true });
        }
      }
    }
    // What the issue asks the dashboard to show, by the metric that shows it.
    for (const needed of [
      'parley_gateway_connections',
      'parley_messages_stored_total',
      'parley_gateway_event_deliveries_total',
      'parley_gateway_send_ack_seconds_bucket',
      'parley_gateway_fanout_seconds_bucket',
      'parley_gateway_slow_consumer_closes_total',
      'parley_gateway_redis_errors_total',
      'parley_db_errors_total',
      'parley_gateway_draining',
    ]) {
      expect(dashboardMetrics).toContain(needed);
    }

    const rules = parseYaml(readFileSync(path.join(ROOT, 'deploy/observability/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      for (const name of metricsIn(rule.expr)) {
        expect({ alert: rule.alert, metric: name, exported: known(name, exported) }).toEqual({ alert: rule.alert, metric: name, exported: true });
      }
    }

    // docs/metrics.md: a row per family, `<prefix>` standing for each service's runtime-metric prefix.
    const doc = readFileSync(path.join(ROOT, 'docs/metrics.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const match of doc.matchAll(/^\| `([a-z0-9_<>]+)` \| (counter|gauge|histogram|summary) \|/gm)) {
      const [, name, type] = match;
      for (const expanded of name!.includes('<prefix>') ? ['parley_gateway_', 'parley_message_'].map((prefix) => name!.replace('<prefix>', prefix)) : [name!]) {
        rows.set(expanded, type!);
      }
    }
    for (const [name, type] of exported) {
      expect({ metric: name, documented: rows.get(name) }).toEqual({ metric: name, documented: type });
    }
    for (const name of rows.keys()) {
      expect({ documented: name, exported: exported.has(name) }).toEqual({ documented: name, exported: true });
    }
  });
});
