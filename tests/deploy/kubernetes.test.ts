import { generateSigningJwk } from '@parley/auth';
import { EDGE_ENV } from '@parley/deploy';
import { GatewayEnvSchema, loadGatewayConfig } from '@parley/gateway';
import { EnvSchema, loadConfig } from '@parley/message-service';
import { containersOf, dockerStages, kustomize, podSpecOf, readText, readYaml, splitImage, type Container, type K8sObject } from './support/manifests';

// What the Kubernetes manifests must hold, checked on the rendered example overlay (and
// the base): probes, a grace period longer than the drain, resources, non-root, pinned
// images, disruption budgets, autoscaling, and exactly the services' own settings.

const VERSION = (JSON.parse(readText('package.json')) as { version: string }).version;
const overlay = kustomize('deploy/kubernetes/overlays/example');
const readme = readText('deploy/kubernetes/README.md');

function find(kind: string, name: string, objects: K8sObject[] = overlay): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in ${objects.map((object) => `${object.kind}/${object.metadata.name}`).join(', ')}`);
  return found;
}

function container(deployment: string, kind = 'Deployment'): Container {
  return podSpecOf(find(kind, deployment)).containers[0] as Container;
}

/** Every variable a container sees: its ConfigMaps (envFrom) and its own env entries. */
function envOf(c: Container): Map<string, string | { secret: string; key: string } | { field: string }> {
  const env = new Map<string, string | { secret: string; key: string } | { field: string }>();
  for (const source of c['envFrom'] ?? []) {
    const data = find('ConfigMap', source.configMapRef.name).data as Record<string, string>;
    for (const [name, value] of Object.entries(data)) env.set(name, value);
  }
  for (const entry of c['env'] ?? []) {
    if (entry.value !== undefined) env.set(entry.name, String(entry.value));
    else if (entry.valueFrom?.secretKeyRef) env.set(entry.name, { secret: entry.valueFrom.secretKeyRef.name, key: entry.valueFrom.secretKeyRef.key });
    else if (entry.valueFrom?.fieldRef) env.set(entry.name, { field: entry.valueFrom.fieldRef.fieldPath });
    else throw new Error(`env ${entry.name}: unsupported source`);
  }
  return env;
}

const workloads = overlay.filter((object) => podSpecOf(object) !== undefined);
const deployments = overlay.filter((object) => object.kind === 'Deployment');

test('the overlay holds the message service, the gateways, the edge and the migration Job', () => {
  expect(deployments.map((object) => object.metadata.name).sort()).toEqual(['parley-edge', 'parley-gateway', 'parley-message']);
  expect(find('Job', 'parley-migrate').kind).toBe('Job');
  for (const object of overlay) {
    if (object.kind !== 'Namespace') expect({ object: object.metadata.name, namespace: object.metadata.namespace }).toEqual({ object: object.metadata.name, namespace: 'parley' });
  }
  for (const object of [...workloads, ...overlay.filter((candidate) => candidate.kind === 'Service')]) {
    expect(object.metadata.labels?.['app.kubernetes.io/part-of']).toBe('parley');
  }
  // The base renders on its own too, without a namespace (an overlay picks it).
  const base = kustomize('deploy/kubernetes/base');
  expect(base.filter((object) => object.kind === 'Deployment')).toHaveLength(3);
});

test('every container runs a pinned image of this version, as non-root, read-only, with resources set', () => {
  const targets = new Set(dockerStages('deploy/docker/Dockerfile').map((stage) => stage.name));
  for (const object of workloads) {
    const spec = podSpecOf(object);
    expect({ pod: object.metadata.name, runAsNonRoot: spec.securityContext?.runAsNonRoot }).toEqual({ pod: object.metadata.name, runAsNonRoot: true });
    expect(spec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(spec.automountServiceAccountToken).toBe(false);
  }
  const containers = containersOf(overlay);
  expect(containers.length).toBeGreaterThanOrEqual(4);
  for (const c of containers) {
    const [name, tag] = splitImage(c.image);
    expect({ image: c.image, tag }).toEqual({ image: c.image, tag: VERSION });
    // Each image is a target of deploy/docker/Dockerfile (parley-<target>).
    expect(targets).toContain(name.split('/').pop()!.replace(/^parley-/, ''));
    expect(c['resources']?.requests?.cpu).toBeDefined();
    expect(c['resources']?.requests?.memory).toBeDefined();
    expect(c['resources']?.limits?.memory).toBeDefined();
    expect(c['securityContext']).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  }
});

test('long-running containers have readiness and liveness probes; the services probe /readyz and /healthz', () => {
  for (const deployment of deployments) {
    const c = podSpecOf(deployment).containers[0] as Container;
    expect({ name: deployment.metadata.name, readiness: Boolean(c['readinessProbe']), liveness: Boolean(c['livenessProbe']) }).toEqual({
      name: deployment.metadata.name,
      readiness: true,
      liveness: true,
    });
  }
  for (const name of ['parley-gateway', 'parley-message']) {
    const c = container(name);
    expect(c['readinessProbe'].httpGet.path).toBe('/readyz');
    expect(c['livenessProbe'].httpGet.path).toBe('/healthz');
    const port = c['ports'].find((candidate: { name: string }) => candidate.name === c['readinessProbe'].httpGet.port);
    expect(String(port.containerPort)).toBe(envOf(c).get('PORT'));
  }
});

test('the gateway grace period covers preStop + DRAIN_WINDOW_MS + the 5 s exit margin, with a rolling update that keeps capacity', () => {
  const gateway = find('Deployment', 'parley-gateway');
  const spec = podSpecOf(gateway);
  const c = container('parley-gateway');
  const drainSeconds = Number(envOf(c).get('DRAIN_WINDOW_MS')) / 1000;
  const preStop = c['lifecycle'].preStop.exec.command as string[];
  expect(preStop[0]).toBe('sleep');
  const preStopSeconds = Number(preStop[1]);
  expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(preStopSeconds + drainSeconds + 5);
  expect(gateway['spec'].strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
  for (const deployment of deployments) {
    const pod = podSpecOf(deployment);
    const sleep = Number((pod.containers[0].lifecycle?.preStop?.exec?.command ?? ['sleep', '0'])[1]);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleep);
  }
  // The edge: preStop, then its open sockets get EDGE_STOP_GRACE_MS before nginx cuts them.
  const edge = container('parley-edge');
  const edgeStopSeconds = Number(envOf(edge).get('EDGE_STOP_GRACE_MS') ?? EDGE_ENV.EDGE_STOP_GRACE_MS) / 1000;
  expect(podSpecOf(find('Deployment', 'parley-edge')).terminationGracePeriodSeconds).toBeGreaterThan(Number(edge['lifecycle'].preStop.exec.command[1]) + edgeStopSeconds);
  // A backend pod waits out, before it stops, the time an edge takes to drop it: the DNS
  // record's TTL (5 s with CoreDNS) and the two lookups the edge wants before it reloads.
  const interval = Number(envOf(edge).get('EDGE_DISCOVERY_INTERVAL_MS') ?? EDGE_ENV.EDGE_DISCOVERY_INTERVAL_MS) / 1000;
  for (const name of ['parley-gateway', 'parley-message']) {
    const preStop = Number(container(name)['lifecycle'].preStop.exec.command[1]);
    expect({ name, preStop, enough: preStop >= 5 + 2 * interval }).toEqual({ name, preStop, enough: true });
  }
});

test('a Deployment an HPA scales sets no replica count, which every apply would reset the fleet to', () => {
  const autoscaled = overlay.filter((object) => object.kind === 'HorizontalPodAutoscaler').map((hpa) => hpa['spec'].scaleTargetRef.name as string);
  expect(autoscaled.sort()).toEqual(['parley-gateway', 'parley-message']);
  for (const name of autoscaled) expect({ name, replicas: find('Deployment', name)['spec'].replicas }).toEqual({ name, replicas: undefined });
});

test('every Deployment has a PodDisruptionBudget and every Service selects pods that exist', () => {
  for (const deployment of deployments) {
    const labels = podSpecOf(deployment) && deployment['spec'].template.metadata.labels;
    const budgets = overlay.filter(
      (object) =>
        object.kind === 'PodDisruptionBudget' &&
        Object.entries(object['spec'].selector.matchLabels as Record<string, string>).every(([key, value]) => labels[key] === value),
    );
    expect({ deployment: deployment.metadata.name, budgets: budgets.length }).toEqual({ deployment: deployment.metadata.name, budgets: 1 });
    expect(budgets[0]!['spec'].maxUnavailable).toBe(1);
  }
  for (const service of overlay.filter((object) => object.kind === 'Service')) {
    const selector = service['spec'].selector as Record<string, string>;
    const target = deployments.find((deployment) =>
      Object.entries(selector).every(([key, value]) => deployment['spec'].template.metadata.labels[key] === value),
    );
    expect({ service: service.metadata.name, selects: target?.metadata.name ?? 'nothing' }).not.toEqual({ service: service.metadata.name, selects: 'nothing' });
    const ports = (podSpecOf(target!).containers[0].ports as Array<{ name: string }>).map((port) => port.name);
    for (const port of service['spec'].ports as Array<{ targetPort: string }>) expect(ports).toContain(port.targetPort);
  }
});

test('the gateway HPA scales on connections per pod (the metric the adapter serves and the gateway exports) and CPU, and scales in slowly', () => {
  const hpa = find('HorizontalPodAutoscaler', 'parley-gateway');
  expect(hpa['spec'].scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'parley-gateway' });
  const metrics = hpa['spec'].metrics as Array<{ type: string; pods?: { metric: { name: string } }; resource?: { name: string } }>;
  const podsMetric = metrics.find((metric) => metric.type === 'Pods')!.pods!.metric.name;
  expect(podsMetric).toBe('parley_gateway_connections');
  expect(metrics.find((metric) => metric.type === 'Resource')!.resource!.name).toBe('cpu');
  const adapter = readYaml<{ rules: { custom: Array<{ seriesQuery: string; name: { as: string } }> } }>('deploy/kubernetes/extras/prometheus-adapter-values.yaml');
  expect(adapter.rules.custom.map((rule) => rule.name.as)).toContain(podsMetric);
  expect(adapter.rules.custom[0]!.seriesQuery).toContain(podsMetric);
  expect(hpa['spec'].minReplicas).toBeGreaterThanOrEqual(3);
  expect(hpa['spec'].behavior.scaleDown.policies).toEqual([{ type: 'Pods', value: 1, periodSeconds: 120 }]);
  // Target below MAX_CONNECTIONS, with room for a drained node's share.
  const maxConnections = Number(envOf(container('parley-gateway')).get('MAX_CONNECTIONS'));
  const target = Number(hpa['spec'].metrics.find((metric: { type: string }) => metric.type === 'Pods').pods.target.averageValue);
  expect(target).toBeLessThanOrEqual(maxConnections / 2);
});

test('the services get exactly the variables of their config schemas, and the values load', async () => {
  const gatewayEnv = envOf(container('parley-gateway'));
  const messageEnv = envOf(container('parley-message'));
  expect([...gatewayEnv.keys()].sort()).toEqual(Object.keys(GatewayEnvSchema.properties).sort());
  // Test-only faults (refused outside NODE_ENV=test) never belong in a deployment.
  const deployable = Object.entries(EnvSchema.properties)
    .filter(([, property]) => !String(property.description ?? '').startsWith('Test-only'))
    .map(([name]) => name);
  expect([...messageEnv.keys()].sort()).toEqual(deployable.sort());
  expect(deployable).not.toContain('FAULT_EXIT_AFTER_COMMIT');

  const plain = (env: ReturnType<typeof envOf>, secrets: Record<string, string>) =>
    Object.fromEntries(
      [...env].map(([name, value]) => [name, typeof value === 'string' ? value : 'secret' in value ? secrets[`${value.secret}/${value.key}`] : 'pod-0']),
    );
  const signingKey = JSON.stringify(await generateSigningJwk('k8s-test'));
  const secrets = {
    'parley-backing/REDIS_URL': 'redis://redis:6379',
    'parley-backing/DATABASE_URL': 'postgres://parley@postgres:5432/parley',
    'parley-auth/AUTH_SIGNING_KEY': signingKey,
    'parley-auth/AUTH_PREVIOUS_KEYS': '[]',
  };
  expect(loadGatewayConfig(plain(gatewayEnv, secrets)).drainWindowMs).toBeGreaterThan(0);
  await expect(loadConfig(plain(messageEnv, secrets))).resolves.toMatchObject({ port: 3000 });
  // The secrets they reference are the ones the README says how to create.
  const referenced = new Set<string>();
  for (const env of [gatewayEnv, messageEnv, envOf(container('parley-migrate', 'Job'))]) {
    for (const value of env.values()) if (typeof value === 'object' && 'secret' in value) referenced.add(`${value.secret}/${value.key}`);
  }
  expect([...referenced].sort()).toEqual(Object.keys(secrets).sort());
  for (const ref of referenced) {
    const [name, key] = ref.split('/');
    expect(readme).toMatch(new RegExp(`create secret generic ${name}[^\\n]*(\\\\\\n[^\\n]*)*--from-(literal|file)=${key}=`));
  }
  // The gateways and the migrations use the same database and Redis secrets as the service.
  expect(gatewayEnv.get('MESSAGE_SERVICE_URL')).toBe(`http://parley-message:${messageEnv.get('PORT')}`);
});

test('the edge resolves headless Services of ready pods, with the gateways heartbeat, and only variables it knows', () => {
  const edge = container('parley-edge');
  const env = envOf(edge);
  for (const name of env.keys()) expect(Object.keys(EDGE_ENV)).toContain(name);
  expect(env.get('EDGE_HEARTBEAT_MS')).toBe(envOf(container('parley-gateway')).get('HEARTBEAT_INTERVAL_MS'));
  for (const [variable, deployment] of [
    ['EDGE_GATEWAYS', 'parley-gateway'],
    ['EDGE_MESSAGE_SERVICES', 'parley-message'],
  ] as const) {
    const [host, port] = String(env.get(variable)).split(':');
    const service = find('Service', host!);
    expect(service['spec'].clusterIP).toBe('None');
    expect(service['spec'].publishNotReadyAddresses ?? false).toBe(false);
    expect(service['spec'].selector['app.kubernetes.io/name']).toBe(deployment);
    expect(String(service['spec'].ports[0].port)).toBe(port);
    expect(port).toBe(envOf(container(deployment)).get('PORT'));
  }
  // TLS comes from the parley-tls Secret, mounted where EDGE_TLS_CERT points.
  const mount = (edge['volumeMounts'] as Array<{ name: string; mountPath: string }>).find((candidate) => candidate.name === 'tls')!;
  expect(String(env.get('EDGE_TLS_CERT')).startsWith(`${mount.mountPath}/`)).toBe(true);
  expect(readme).toContain('create secret tls parley-tls');
  expect(find('Service', 'parley-edge')['spec'].type).toBe('LoadBalancer');
});

test('migrations run as a Job from the migrate image, retried on failure', () => {
  const job = find('Job', 'parley-migrate');
  expect(podSpecOf(job).restartPolicy).toBe('OnFailure');
  expect(job['spec'].backoffLimit).toBeGreaterThan(0);
  expect(splitImage(container('parley-migrate', 'Job').image)[0]).toMatch(/parley-migrate$/);
  const migrate = dockerStages('deploy/docker/Dockerfile').find((stage) => stage.name === 'migrate')!;
  expect(migrate.instructions).toContainEqual(['CMD', '["node", "migrations/dist/cli.js"]']);
});
