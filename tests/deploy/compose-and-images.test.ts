import { existsSync } from 'node:fs';
import path from 'node:path';
import { EDGE_ENV } from '@parley/deploy';
import { GatewayEnvSchema } from '@parley/gateway';
import { EnvSchema } from '@parley/message-service';
import { dockerStages, readText, readYaml, ROOT } from './support/manifests';

// The Compose file and the Dockerfile, checked for what a Docker engine would only tell
// at run time: healthchecks, pinned images, a stop grace longer than the drain, scalable
// gateways, non-root images with exec-form commands, and the services' own settings.

const VERSION = (JSON.parse(readText('package.json')) as { version: string }).version;
const WORKSPACES = (JSON.parse(readText('package.json')) as { workspaces: string[] }).workspaces;

interface ComposeService {
  image: string;
  build?: { context: string; dockerfile: string; target: string };
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  ports?: string[];
  container_name?: string;
  stop_grace_period?: string;
  profiles?: string[];
  restart?: string;
  volumes?: string[];
}
const compose = readYaml<{ services: Record<string, ComposeService>; volumes: Record<string, unknown> }>('deploy/compose/compose.yaml');
const services = compose.services;
const stages = dockerStages('deploy/docker/Dockerfile');

/** `${NAME:-default}` → default (what Compose uses when the variable is unset). */
function interpolate(value: string): string {
  return value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_all, _name: string, fallback: string | undefined) => fallback ?? '');
}

function seconds(duration: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration);
  if (!match) throw new Error(`cannot read duration ${duration}`);
  return Number(match[1]) / (match[2] === 'ms' ? 1000 : match[2] === 'm' ? 1 / 60 : 1);
}

function defaultsOf(schema: { properties: Record<string, { default?: unknown }> }): Record<string, string> {
  return Object.fromEntries(
    Object.entries(schema.properties)
      .filter(([, property]) => property.default !== undefined)
      .map(([name, property]) => [name, String(property.default)]),
  );
}

function requiredOf(schema: { properties: Record<string, { default?: unknown }> }): string[] {
  return Object.entries(schema.properties)
    .filter(([, property]) => property.default === undefined)
    .map(([name]) => name);
}

describe('compose', () => {
  test('runs PostgreSQL, Redis, the migrations, the message service, 3 gateways and the edge, each with a healthcheck', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'migrate', 'message', 'gateway', 'edge']));
    for (const [name, service] of Object.entries(services)) {
      if (name === 'migrate') continue; // one-shot: the others wait for it to complete
      expect({ name, healthcheck: service.healthcheck?.test?.[0] }).toEqual({ name, healthcheck: 'CMD' });
      expect(service.restart).toBe('unless-stopped');
    }
    // initdb's temporary server listens on the Unix socket only: PostgreSQL is healthy once it answers on TCP.
    expect(services['postgres']!.healthcheck!.test).toEqual(expect.arrayContaining(['pg_isready', '-h', '127.0.0.1']));
    expect(services['gateway']!.deploy?.replicas).toBe(3);
    expect(services['message']!.depends_on?.['migrate']?.condition).toBe('service_completed_successfully');
    expect(services['migrate']!.restart).toBe('no');
    for (const dependent of ['message', 'gateway', 'edge']) {
      for (const [dependency, { condition }] of Object.entries(services[dependent]!.depends_on ?? {})) {
        expect({ dependent, dependency, condition }).toEqual({
          dependent,
          dependency,
          condition: dependency === 'migrate' ? 'service_completed_successfully' : 'service_healthy',
        });
      }
    }
  });

  test('every image is pinned: third-party ones to a version tag, ours to this release and a Dockerfile target', () => {
    const targets = stages.map((stage) => stage.name);
    for (const [name, service] of Object.entries(services)) {
      const image = interpolate(service.image);
      const [repository, tag = ''] = image.split(/:(?=[^/]+$)/);
      expect({ name, tag }).not.toEqual({ name, tag: '' });
      expect(tag).not.toBe('latest');
      expect(tag).toMatch(/\d/);
      if (service.build) {
        expect({ name, image }).toEqual({ name, image: `parley-${service.build.target}:${VERSION}` });
        expect(targets).toContain(service.build.target);
        expect(path.resolve(ROOT, 'deploy/compose', service.build.context)).toBe(ROOT);
        expect(service.build.dockerfile).toBe('deploy/docker/Dockerfile');
      } else {
        expect(repository).not.toMatch(/^parley-/);
      }
    }
  });

  test('gateways scale: no fixed name or host port, and a stop grace longer than the drain', () => {
    const gateway = services['gateway']!;
    expect(gateway.container_name).toBeUndefined();
    expect(gateway.ports).toBeUndefined();
    const drainMs = Number(gateway.environment?.['DRAIN_WINDOW_MS'] ?? defaultsOf(GatewayEnvSchema)['DRAIN_WINDOW_MS']);
    // The gateway exits DRAIN_WINDOW_MS + 5 s after SIGTERM at the latest.
    expect(seconds(gateway.stop_grace_period!)).toBeGreaterThan(drainMs / 1000 + 5);
    expect(seconds(services['message']!.stop_grace_period!)).toBeGreaterThanOrEqual(10);
  });

  test('the services get only variables of their config schemas, every required one, with healthchecks on their ports', () => {
    for (const [name, schema] of [
      ['message', EnvSchema],
      ['gateway', GatewayEnvSchema],
    ] as const) {
      const env = services[name]!.environment ?? {};
      for (const variable of Object.keys(env)) expect({ name, variable, known: variable in schema.properties }).toEqual({ name, variable, known: true });
      for (const variable of requiredOf(schema)) expect({ name, variable, set: variable in env }).toEqual({ name, variable, set: true });
      const port = env['PORT'] ?? defaultsOf(schema)['PORT'];
      expect(services[name]!.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${port}/readyz`);
    }
    expect(Object.keys(services['migrate']!.environment ?? {})).toEqual(['DATABASE_URL']);
    expect(services['migrate']!.environment!['DATABASE_URL']).toBe(services['message']!.environment!['DATABASE_URL']);
    expect(services['gateway']!.environment!['REDIS_URL']).toBe(services['message']!.environment!['REDIS_URL']);
    const messagePort = services['message']!.environment!['PORT'] ?? defaultsOf(EnvSchema)['PORT'];
    expect(services['gateway']!.environment!['MESSAGE_SERVICE_URL']).toBe(`http://message:${messagePort}`);
  });

  test('the edge finds the gateways by their service name, with their heartbeat, and publishes TLS only', () => {
    const edge = services['edge']!;
    const env = edge.environment ?? {};
    for (const variable of Object.keys(env)) expect(Object.keys(EDGE_ENV)).toContain(variable);
    const gatewayPort = services['gateway']!.environment!['PORT'] ?? defaultsOf(GatewayEnvSchema)['PORT'];
    expect(env['EDGE_GATEWAYS']).toBe(`gateway:${gatewayPort}`);
    expect(env['EDGE_MESSAGE_SERVICES']).toBe(`message:${defaultsOf(EnvSchema)['PORT']}`);
    expect(env['EDGE_HEARTBEAT_MS']).toBe(services['gateway']!.environment!['HEARTBEAT_INTERVAL_MS']);
    expect(edge.ports!.map(interpolate)).toEqual(['8443:8443']);
    expect(env['EDGE_SELF_SIGNED']).toBe('true');
    // The certificate lives in a volume, so a restart keeps the one browsers accepted.
    const [volume, mountPath] = edge.volumes![0]!.split(':');
    expect(compose.volumes).toHaveProperty(volume!);
    expect(path.dirname(env['EDGE_TLS_CERT']!)).toBe(mountPath);
  });

  test('the observability profile mounts files that exist', () => {
    for (const name of ['prometheus', 'grafana']) {
      expect(services[name]!.profiles).toEqual(['observability']);
      for (const volume of services[name]!.volumes ?? []) {
        const [source] = volume.split(':');
        if (!source!.startsWith('.')) continue;
        expect({ volume, exists: existsSync(path.resolve(ROOT, 'deploy/compose', source!)) }).toEqual({ volume, exists: true });
      }
    }
  });
});

describe('Dockerfile', () => {
  const runtime = ['gateway', 'message', 'migrate', 'edge'];

  test('every stage starts from a pinned image or an earlier stage', () => {
    const names = new Set<string>();
    for (const stage of stages) {
      if (!names.has(stage.from)) expect(stage.from).toMatch(/^[a-z0-9./-]+:\d+\.\d+\.\d+-[a-z0-9-]+$/);
      names.add(stage.name);
    }
    expect(stages.map((stage) => stage.name)).toEqual(expect.arrayContaining(runtime));
  });

  test('runtime images run as node, with an exec-form command, a healthcheck and SIGTERM', () => {
    const byName = new Map(stages.map((stage) => [stage.name, stage]));
    const inherited = (name: string, keyword: string): string | undefined => {
      const stage = byName.get(name)!;
      const own = stage.instructions.filter(([word]) => word === keyword).pop()?.[1];
      return own ?? (byName.has(stage.from) ? inherited(stage.from, keyword) : undefined);
    };
    for (const name of runtime) {
      expect({ name, user: inherited(name, 'USER') }).toEqual({ name, user: 'node' });
      const cmd = inherited(name, 'CMD')!;
      expect(() => JSON.parse(cmd) as string[]).not.toThrow();
      expect((JSON.parse(cmd) as string[])[0]).toBe('node');
      expect(inherited(name, 'ENTRYPOINT')).toBeUndefined();
      const health = inherited(name, 'HEALTHCHECK')!;
      if (name === 'migrate') expect(health).toBe('NONE');
      else expect(health).toMatch(/CMD \["node", /);
      expect(inherited(name, 'STOPSIGNAL')).toBe('SIGTERM');
    }
    // The services' health check asks /readyz on PORT, which each image sets to its service's default.
    for (const [name, schema] of [
      ['gateway', GatewayEnvSchema],
      ['message', EnvSchema],
    ] as const) {
      expect(inherited(name, 'HEALTHCHECK')).toContain("'http://127.0.0.1:'+process.env.PORT+'/readyz'");
      expect(inherited(name, 'ENV')).toBe(`PORT=${defaultsOf(schema)['PORT']}`);
    }
  });

  test('installs from the lockfile, production dependencies only in runtime images, with every workspace manifest', () => {
    const manifests = stages.find((stage) => stage.name === 'manifests')!;
    const copied = manifests.instructions.filter(([word]) => word === 'COPY').map(([, rest]) => rest.split(' ')[0]);
    expect(copied).toEqual(['package.json', ...WORKSPACES.map((workspace) => `${workspace}/package.json`)]);
    expect(manifests.instructions[1]).toEqual(['COPY', 'package.json package-lock.json ./']);
    for (const [stage, workspace] of [
      ['gateway-deps', '@parley/gateway'],
      ['message-deps', '@parley/message-service'],
    ]) {
      const run = stages.find((candidate) => candidate.name === stage)!.instructions.find(([word]) => word === 'RUN')![1];
      expect(run).toContain(`npm ci --omit=dev`);
      expect(run).toContain(`--workspace=${workspace}`);
    }
    const dockerignore = readText('.dockerignore').split('\n');
    for (const entry of ['**/node_modules', '**/dist', '.git']) expect(dockerignore).toContain(entry);
  });
});
