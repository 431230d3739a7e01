import { watch } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createSelfSignedCert,
  discover,
  dnsResolver,
  EdgeConfigError,
  edgeSettings,
  EdgeSupervisor,
  findNginx,
  getFreePort,
  renderEdgeConfig,
  startProcess,
  testNginxConfig,
  waitForReady,
  type EdgeLog,
  type EdgeSettings,
  type ManagedProcess,
  type Resolver,
} from '@parley/deploy';
import { Signal } from '../e2e/support/wait';
import { kustomize, podSpecOf, readYaml, ROOT } from './support/manifests';

// The edge (deploy/src/edge.ts): the settings it reads, DNS discovery, every config it
// renders from the Compose and Kubernetes settings passing the real `nginx -t`, and a
// live supervisor in front of a real nginx: when it reloads, and when it must not.

jest.setTimeout(60_000);

const nginx = findNginx(); // throws saying how to install nginx when it is missing
let workDir: string;
let certPath: string;
let keyPath: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-edge-test-'));
  // Run as root, nginx's workers are `nobody` and must reach their temp dirs in here.
  await chmod(workDir, 0o755);
  const cert = await createSelfSignedCert({ dir: workDir });
  ({ certPath, keyPath } = cert);
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Settings as a deployment gives them, with paths moved into this test's directory. */
function localSettings(env: Record<string, string>, name: string, tls = { certPath, keyPath }): EdgeSettings {
  return edgeSettings({
    ...env,
    EDGE_TLS_CERT: tls.certPath,
    EDGE_TLS_KEY: tls.keyPath,
    EDGE_PREFIX: path.join(workDir, name),
    EDGE_WEB_ROOT: path.join(ROOT, 'packages/web/dist'),
    EDGE_LOG_TO_STDIO: 'false',
    EDGE_SELF_SIGNED: 'false',
    EDGE_NGINX: nginx,
  });
}

function composeEdgeEnv(): Record<string, string> {
  const compose = readYaml<{ services: Record<string, { environment: Record<string, string> }> }>('deploy/compose/compose.yaml');
  return compose.services['edge']!.environment;
}

function kubernetesEdgeEnv(): Record<string, string> {
  const edge = kustomize('deploy/kubernetes/overlays/example').find((object) => object.metadata.name === 'parley-edge' && object.kind === 'Deployment')!;
  const env = podSpecOf(edge).containers[0].env as Array<{ name: string; value: string }>;
  return Object.fromEntries(env.map((entry) => [entry.name, entry.value]));
}

/** The supervisor's log, as events a test can wait for (the supervisor's own timer drives them). */
class EdgeEvents {
  readonly seen: Array<{ event: string; fields: Record<string, unknown> }> = [];
  private readonly changed = new Signal();
  readonly log: EdgeLog = (event, fields = {}) => {
    this.seen.push({ event, fields });
    this.changed.notify();
  };

  count(event: string): number {
    return this.seen.filter((entry) => entry.event === event).length;
  }

  until(event: string, count = 1, timeoutMs = 10_000): Promise<void> {
    return this.changed.until(() => this.count(event) >= count, timeoutMs, () => `edge event "${event}" (seen: ${this.seen.map((entry) => entry.event).join(', ')})`);
  }
}

/** A resolver answering from a table the test edits; a name listed as failing rejects, as a resolver timeout does. */
function tableResolver(answers: Record<string, string[]>, failing = new Set<string>()): Resolver {
  return async (host) => {
    if (failing.has(host)) throw Object.assign(new Error(`queryA EAI_AGAIN ${host}`), { code: 'EAI_AGAIN' });
    return answers[host] ?? [];
  };
}

async function liveConfigId(port: number, ca: string, expected?: string): Promise<string> {
  const response = await waitForReady(`https://127.0.0.1:${port}/nginx/config-id`, {
    timeoutMs: 10_000,
    ca,
    isReady: (answer) => answer.status === 200 && (expected === undefined || answer.body.trim() === expected),
  });
  return response.body.trim();
}

describe('settings', () => {
  test('defaults, and a bad value names its variable', () => {
    const settings = edgeSettings({});
    expect(settings).toMatchObject({ gateways: ['gateway:4000'], messageServices: ['message:3000'], listen: '0.0.0.0:8443', intervalMs: 2000, reloadMinIntervalMs: 10_000, workerProcesses: 'auto' });
    expect(edgeSettings({ EDGE_GATEWAYS: 'a:1, b:2', EDGE_WORKERS: '4', EDGE_RELOAD_MIN_INTERVAL_MS: '0' })).toMatchObject({ gateways: ['a:1', 'b:2'], workerProcesses: 4, reloadMinIntervalMs: 0 });
    expect(() => edgeSettings({ EDGE_GATEWAYS: 'gateway' })).toThrow(/EDGE_GATEWAYS/);
    expect(() => edgeSettings({ EDGE_GATEWAYS: 'gateway:99999' })).toThrow(EdgeConfigError);
    expect(() => edgeSettings({ EDGE_DISCOVERY_INTERVAL_MS: '5' })).toThrow(/EDGE_DISCOVERY_INTERVAL_MS/);
    expect(() => edgeSettings({ EDGE_RELOAD_MIN_INTERVAL_MS: '-1' })).toThrow(/EDGE_RELOAD_MIN_INTERVAL_MS/);
    expect(() => edgeSettings({ EDGE_SELF_SIGNED: 'yes' })).toThrow(/EDGE_SELF_SIGNED/);
  });
});

describe('discovery', () => {
  test('one upstream per address, sorted and unique; IPv6 bracketed; a name without addresses adds nothing', async () => {
    const resolve = tableResolver({ gateway: ['10.0.0.3', '10.0.0.1', '10.0.0.3'], six: ['fd00::2'] });
    expect(await discover(['gateway:4000', 'six:4000', 'missing:4000'], resolve)).toEqual(['10.0.0.1:4000', '10.0.0.3:4000', '[fd00::2]:4000']);
    expect(await discover(['missing:4000'], resolve)).toEqual([]);
  });

  test('a lookup that fails fails the discovery, rather than dropping that name\'s replicas', async () => {
    const resolve = tableResolver({ gateway: ['10.0.0.1'], other: ['10.0.0.2'] }, new Set(['other']));
    await expect(discover(['gateway:4000', 'other:4000'], resolve)).rejects.toThrow(/EAI_AGAIN/);
  });

  test('real DNS: an address resolves to itself, localhost through /etc/hosts, a name that does not exist to nothing', async () => {
    expect(await discover(['127.0.0.1:4000', 'localhost:4001', '[::1]:4002'])).toEqual(expect.arrayContaining(['127.0.0.1:4000', '127.0.0.1:4001', '[::1]:4002']));
    expect(await dnsResolver('no-such-replica.invalid')).toEqual([]);
  });
});

describe('rendered configs pass nginx -t', () => {
  const fleets: Array<[string, string[]]> = [
    ['1 gateway', ['10.0.0.1:4000']],
    ['3 gateways', ['10.0.0.1:4000', '10.0.0.2:4000', '10.0.0.3:4000']],
    ['10 gateways, one IPv6', [...Array.from({ length: 9 }, (_, index) => `10.1.0.${index + 1}:4000`), '[fd00::10]:4000']],
  ];
  test.each([
    ['compose', composeEdgeEnv],
    ['kubernetes', kubernetesEdgeEnv],
  ])('%s edge settings', async (name, envOf) => {
    for (const [what, gateways] of fleets) {
      const settings = localSettings(envOf(), `${name}-${what.replace(/\W+/g, '-')}`);
      await mkdir(settings.prefix, { recursive: true });
      const text = renderEdgeConfig(settings, gateways, ['10.0.1.1:3000', '10.0.1.2:3000']);
      for (const gateway of gateways) expect(text).toContain(`server ${gateway} `);
      const file = path.join(settings.prefix, 'parley.conf');
      await writeFile(file, text);
      await expect(testNginxConfig(nginx, settings.prefix, file)).resolves.toContain('test is successful');
    }
  });
});

describe('supervisor', () => {
  test('waits for upstreams before starting nginx, then its own timer applies a fleet change once two lookups agree', async () => {
    const port = await getFreePort();
    const answers: Record<string, string[]> = { gateway: [], message: ['127.0.0.1'] };
    const events = new EdgeEvents();
    const settings = localSettings(
      { EDGE_LISTEN: `127.0.0.1:${port}`, EDGE_WORKERS: '1', EDGE_DISCOVERY_INTERVAL_MS: '100', EDGE_RELOAD_MIN_INTERVAL_MS: '0' },
      'timer',
    );
    const edge = new EdgeSupervisor(settings, { resolve: tableResolver(answers), log: events.log });
    const started = edge.start();
    // No gateway resolves yet: it waits rather than render an empty upstream.
    await events.until('waiting for upstreams to resolve');
    expect(edge.nginxPid).toBeUndefined();
    answers['gateway'] = ['127.0.0.2'];
    await started;
    try {
      const ca = await readFile(certPath, 'utf8');
      expect(await liveConfigId(port, ca)).toBe(edge.configId);
      expect(edge.upstreams).toEqual({ gateways: ['127.0.0.2:4000'], messageServices: ['127.0.0.1:3000'] });

      // Scale out: a second replica appears in DNS; the interval refresh sees it, the next confirms it.
      answers['gateway'] = ['127.0.0.3', '127.0.0.2'];
      await events.until('reloaded');
      expect(events.count('change seen; applied if the next lookup agrees')).toBe(1);
      expect(edge.upstreams.gateways).toEqual(['127.0.0.2:4000', '127.0.0.3:4000']);
      expect(await liveConfigId(port, ca, edge.configId)).toBe(edge.configId);
      expect(await readFile(edge.configPath, 'utf8')).toContain('server 127.0.0.3:4000 ');
    } finally {
      expect(await edge.stop(5000)).toBe(0);
    }
    expect(events.count('reloaded')).toBe(1);
  });

  describe('driven lookup by lookup', () => {
    // The interval is longer than any test: only the test's refresh() calls look again.
    const manual = { EDGE_WORKERS: '1', EDGE_DISCOVERY_INTERVAL_MS: '600000', EDGE_RELOAD_MIN_INTERVAL_MS: '10000' };
    let clock = 0;
    let answers: Record<string, string[]>;
    let failing: Set<string>;
    let events: EdgeEvents;
    let edge: EdgeSupervisor;
    let port: number;
    let tls: { certPath: string; keyPath: string };
    let ca: string;

    beforeEach(async () => {
      clock = 1_000_000;
      answers = { gateway: ['127.0.0.2'], message: ['127.0.0.1'] };
      failing = new Set();
      events = new EdgeEvents();
      port = await getFreePort();
      // A copy of the certificate per test: one of them renews it.
      const dir = await mkdtemp(path.join(workDir, 'tls-'));
      tls = { certPath: path.join(dir, 'tls.crt'), keyPath: path.join(dir, 'tls.key') };
      await copyFile(certPath, tls.certPath);
      await copyFile(keyPath, tls.keyPath);
      ca = await readFile(certPath, 'utf8');
      const settings = localSettings({ ...manual, EDGE_LISTEN: `127.0.0.1:${port}` }, path.basename(dir), tls);
      edge = new EdgeSupervisor(settings, { resolve: tableResolver(answers, failing), log: events.log, now: () => clock });
      await edge.start();
      await liveConfigId(port, ca, edge.configId);
    });

    afterEach(async () => {
      expect(await edge.stop(5000)).toBe(0);
    });

    test('an answer that flaps between two fleets never reloads', async () => {
      const configId = edge.configId;
      for (const gateways of [['127.0.0.2', '127.0.0.3'], ['127.0.0.2'], ['127.0.0.2', '127.0.0.3'], ['127.0.0.4'], ['127.0.0.2']]) {
        answers['gateway'] = gateways;
        expect(await edge.refresh()).toBe(false);
      }
      expect(events.count('reloaded')).toBe(0);
      expect(edge.configId).toBe(configId);
      expect(edge.upstreams.gateways).toEqual(['127.0.0.2:4000']);
    });

    test('reloads are spaced by EDGE_RELOAD_MIN_INTERVAL_MS; changes meanwhile wait for the next one', async () => {
      answers['gateway'] = ['127.0.0.2', '127.0.0.3'];
      expect(await edge.refresh()).toBe(false); // seen
      expect(await edge.refresh()).toBe(true); // confirmed: the first reload is never held back
      await liveConfigId(port, ca, edge.configId);

      clock += 4000;
      answers['gateway'] = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
      expect(await edge.refresh()).toBe(false);
      expect(await edge.refresh()).toBe(false); // confirmed, but 4 s after the last reload
      expect(events.count('reload deferred: the last one was too recent')).toBe(1);
      answers['gateway'] = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
      expect(await edge.refresh()).toBe(false);
      expect(await edge.refresh()).toBe(false);
      expect(edge.upstreams.gateways).toHaveLength(2);

      clock += 6000;
      expect(await edge.refresh()).toBe(true); // both changes, in one reload
      expect(edge.upstreams.gateways).toEqual(['127.0.0.2:4000', '127.0.0.3:4000', '127.0.0.4:4000', '127.0.0.5:4000']);
      expect(events.count('reloaded')).toBe(2);
      await liveConfigId(port, ca, edge.configId);
    });

    test('a failing lookup or a name resolving to nothing keeps the live config', async () => {
      const configId = edge.configId;
      failing.add('gateway');
      await expect(edge.refresh()).rejects.toThrow(/EAI_AGAIN/);
      failing.clear();
      answers['gateway'] = [];
      expect(await edge.refresh()).toBe(false);
      expect(await edge.refresh()).toBe(false);
      expect(events.count('an upstream resolved to nothing; keeping the current config')).toBe(2);
      expect(edge.configId).toBe(configId);
      expect(edge.upstreams.gateways).toEqual(['127.0.0.2:4000']);
      expect(await liveConfigId(port, ca)).toBe(configId);
    });

    test('a renewed certificate is loaded; one nginx refuses is never installed and is retried at the reload pace', async () => {
      // Renewed in place, as a rotated Kubernetes Secret is.
      const renewed = await createSelfSignedCert({ dir: await mkdtemp(path.join(workDir, 'renewed-')) });
      await copyFile(renewed.keyPath, tls.keyPath);
      await copyFile(renewed.certPath, tls.certPath);
      expect(await edge.refresh()).toBe(false);
      expect(await edge.refresh()).toBe(true);
      expect(events.seen.find((entry) => entry.event === 'reloaded')?.fields['certificateChanged']).toBe(true);
      // New connections get the renewed certificate: the old one no longer verifies them.
      await liveConfigId(port, renewed.certPem);

      clock += 60_000;
      await writeFile(tls.certPath, 'not a certificate\n');
      expect(await edge.refresh()).toBe(false);
      await expect(edge.refresh()).rejects.toThrow(/nginx -t refused/);
      expect(await edge.refresh()).toBe(false); // not tried again until the reload interval has passed
      expect(events.count('reload deferred: the last one was too recent')).toBe(1);
      // nginx still serves, with the renewed certificate it loaded.
      expect(await liveConfigId(port, renewed.certPem)).toBe(edge.configId);
    });
  });

  test('stopped while it waits for upstreams, it never starts nginx', async () => {
    const events = new EdgeEvents();
    const settings = localSettings({ EDGE_LISTEN: `127.0.0.1:${await getFreePort()}`, EDGE_DISCOVERY_INTERVAL_MS: '600000' }, 'never');
    const edge = new EdgeSupervisor(settings, { resolve: tableResolver({ message: ['127.0.0.1'] }), log: events.log });
    const started = edge.start();
    await events.until('waiting for upstreams to resolve');
    expect(await edge.stop(1000)).toBe(0);
    await started; // woken at once, not after the 10-minute interval
    expect(edge.nginxPid).toBeUndefined();
    expect(events.count('waiting for upstreams to resolve')).toBe(1);
  }, 10_000);

  test('the container entry point: logs to stdout and stderr, answers its health check, exits 0 on SIGTERM', async () => {
    const port = await getFreePort();
    const dir = path.join(workDir, 'cli');
    await mkdir(dir, { recursive: true });
    const env = {
      ...process.env,
      EDGE_GATEWAYS: '127.0.0.1:4000',
      EDGE_MESSAGE_SERVICES: '127.0.0.1:3000',
      EDGE_LISTEN: `127.0.0.1:${port}`,
      EDGE_PREFIX: path.join(dir, 'nginx'),
      // As in the Compose file: a certificate made on first start, kept in a volume.
      EDGE_SELF_SIGNED: 'true',
      EDGE_TLS_CERT: path.join(dir, 'tls', 'tls.crt'),
      EDGE_TLS_KEY: path.join(dir, 'tls', 'tls.key'),
      EDGE_WEB_ROOT: path.join(ROOT, 'packages/web/dist'),
      EDGE_WORKERS: '1',
      EDGE_NGINX: nginx,
    };
    const cli = path.join(ROOT, 'deploy/dist/edge-cli.js');
    // stdout and stderr go to a file, as a container's go to a pipe: nginx opens them by path.
    const child = await startProcess({ name: 'edge', command: process.execPath, args: [cli], env, logDir: dir });
    try {
      await untilLogged(child, '"event":"nginx started"');
      // The certificate made on first start is the one nginx serves: trusting it alone, the page loads.
      const ca = await readFile(path.join(dir, 'tls', 'tls.crt'), 'utf8');
      await waitForReady(`https://127.0.0.1:${port}/index.html`, { timeoutMs: 20_000, process: child, ca });
      const health = await startProcess({ name: 'health', command: process.execPath, args: [cli, 'health'], env, logDir: dir });
      expect(await health.waitForExit()).toEqual({ code: 0, signal: null });
      const log = child.logTail(200);
      expect(log).toContain('"event":"nginx started"');
      expect(log).toContain('"uri":"/index.html","status":200'); // nginx's access log, through the symlink
    } finally {
      expect(await child.stop('SIGTERM', 10_000)).toEqual({ code: 0, signal: null });
    }
    // Refused when nothing is listening.
    const refused = await startProcess({ name: 'health-refused', command: process.execPath, args: [cli, 'health'], env, logDir: dir });
    expect(await refused.waitForExit()).toEqual({ code: 1, signal: null });
  });
});

/** Resolves once a process's log holds `text`: woken by writes to the log file, failing if the process exits first. */
async function untilLogged(child: ManagedProcess, text: string, timeoutMs = 20_000): Promise<void> {
  const changed = new Signal();
  const watcher = watch(child.logPath, () => changed.notify());
  void child.waitForExit().then(() => changed.notify());
  try {
    await changed.until(
      () => {
        if (child.logTail(200).includes(text)) return true;
        if (child.exitStatus) throw new Error(`${child.name} exited before logging ${text}:\n${child.logTail()}`);
        return false;
      },
      timeoutMs,
      () => `${child.name} to log ${text}; its log:\n${child.logTail()}`,
    );
  } finally {
    watcher.close();
  }
}
