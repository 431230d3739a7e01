import { EDGE_ENV } from '@parley/deploy';
import { databaseErrorKind } from '../../services/message/src/repositories/database-errors';
import { readText, readYaml } from './support/manifests';

// The alert rules, the dashboard and the runbook hang together: every alert has a
// severity, a summary and a runbook section that exists; the dashboard is importable; the
// Compose Prometheus loads the rules under the job names they use. (That they query only
// exported metrics is checked against a live scrape in tests/e2e/fleet-scale.test.ts.)

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description?: string; runbook_url: string };
}
const rules = readYaml<{ groups: Array<{ name: string; rules: Rule[] }> }>('deploy/observability/alerts.yml').groups.flatMap((group) => group.rules);
const runbook = readText('docs/runbook.md');

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}
const anchors = new Set([...runbook.matchAll(/^#{2,4} (.+)$/gm)].map((match) => slug(match[1]!)));

test('every alert has a severity, a summary and its own runbook section', () => {
  expect(rules.length).toBeGreaterThanOrEqual(10);
  const names = rules.map((rule) => rule.alert);
  expect(new Set(names).size).toBe(names.length);
  for (const rule of rules) {
    expect(['critical', 'warning', 'info']).toContain(rule.labels.severity);
    expect(rule.annotations.summary.length).toBeGreaterThan(10);
    expect(rule.annotations.runbook_url).toBe(`docs/runbook.md#${rule.alert.toLowerCase()}`);
    expect({ alert: rule.alert, section: anchors.has(rule.alert.toLowerCase()) }).toEqual({ alert: rule.alert, section: true });
  }
  // What the operators asked to be alerted on.
  for (const needed of ['ParleyGatewayNotReady', 'ParleyDeliveryLag', 'ParleyHighErrorRate', 'ParleyConnectionImbalance']) expect(names).toContain(needed);
  // And the runbook explains no alert that does not exist.
  const alertSections = [...runbook.matchAll(/^### (Parley\w+)$/gm)].map((match) => match[1]);
  expect(alertSections.sort()).toEqual([...names].sort());
});

test('links into the runbook from the other docs land on a section', () => {
  for (const file of ['docs/runbook.md', 'docs/scaling.md', 'deploy/compose/README.md', 'deploy/kubernetes/README.md', 'deploy/kubernetes/base/message.yaml']) {
    for (const match of readText(file).matchAll(/runbook\.md#([a-z0-9-]+)/g)) {
      expect({ file, anchor: match[1], exists: anchors.has(match[1]!) }).toEqual({ file, anchor: match[1], exists: true });
    }
  }
  for (const match of runbook.matchAll(/\]\(#([a-z0-9-]+)\)/g)) expect(anchors).toContain(match[1]);
});

test('the dashboard is importable: a datasource variable, unique panel ids, every query on it', () => {
  const dashboard = JSON.parse(readText('deploy/observability/grafana/dashboards/parley.json')) as {
    uid: string;
    templating: { list: Array<{ name: string; type: string }> };
    panels: Array<{ id: number; type: string; title: string; gridPos: { x: number; w: number }; datasource?: { uid: string }; targets?: Array<{ expr: string; refId: string }> }>;
  };
  expect(dashboard.uid).toBe('parley-overview');
  expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource' }));
  const ids = dashboard.panels.map((panel) => panel.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const panel of dashboard.panels) {
    expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
    if (panel.type === 'row') continue;
    expect({ panel: panel.title, datasource: panel.datasource?.uid }).toEqual({ panel: panel.title, datasource: '${datasource}' });
    expect(panel.targets?.length).toBeGreaterThan(0);
    for (const target of panel.targets ?? []) expect(target.expr).toMatch(/parley_|up\{/);
  }
});

test('the Compose Prometheus loads the rules and names its jobs as the rules and the dashboard expect', () => {
  const prometheus = readYaml<{ rule_files: string[]; scrape_configs: Array<{ job_name: string; dns_sd_configs: Array<{ names: string[]; port: number }> }> }>(
    'deploy/observability/prometheus.yml',
  );
  const compose = readYaml<{ services: Record<string, { volumes?: string[] }> }>('deploy/compose/compose.yaml');
  const mounts = compose.services['prometheus']!.volumes!.map((volume) => volume.split(':'));
  for (const file of prometheus.rule_files) expect(mounts.map(([, target]) => target)).toContain(file);
  expect(mounts).toContainEqual(['../observability/alerts.yml', '/etc/prometheus/alerts.yml', 'ro']);
  const jobs = prometheus.scrape_configs.map((config) => config.job_name);
  for (const rule of rules) for (const match of rule.expr.matchAll(/job="([^"]+)"/g)) expect(jobs).toContain(match[1]);
  // The PodMonitors on Kubernetes give the same job names.
  const monitors = readText('deploy/kubernetes/components/monitoring/podmonitors.yaml');
  for (const job of jobs) expect(monitors).toContain(`replacement: ${job}`);
  const provider = readYaml<{ providers: Array<{ options: { path: string } }> }>('deploy/observability/grafana/provisioning/dashboards/parley.yml');
  expect(compose.services['grafana']!.volumes).toContain(`../observability/grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
});

test('every edge setting is documented, with its default', () => {
  const doc = readText('deploy/compose/README.md');
  for (const [name, fallback] of Object.entries(EDGE_ENV)) {
    const row = doc.split('\n').find((line) => line.startsWith('|') && line.includes(`\`${name}\``));
    expect({ name, documented: Boolean(row) }).toEqual({ name, documented: true });
    if (fallback && !name.startsWith('EDGE_TLS_')) expect({ name, row }).toEqual({ name, row: expect.stringContaining(`\`${fallback}\``) });
  }
});

test('PostgreSQL errors are told apart from other request errors', () => {
  const pgError = (code: string) => Object.assign(new Error('db'), { code });
  expect(databaseErrorKind(pgError('ECONNREFUSED'))).toBe('unavailable');
  expect(databaseErrorKind(pgError('57P01'))).toBe('unavailable'); // admin shutdown (failover)
  expect(databaseErrorKind(pgError('53300'))).toBe('unavailable'); // too many clients
  expect(databaseErrorKind(pgError('55P03'))).toBe('unavailable'); // lock wait timeout
  expect(databaseErrorKind(new Error('timeout exceeded when trying to connect'))).toBe('unavailable');
  expect(databaseErrorKind(pgError('42P01'))).toBe('query'); // undefined table
  expect(databaseErrorKind(pgError('23505'))).toBe('query');
  expect(databaseErrorKind(pgError('FST_ERR_VALIDATION'))).toBeUndefined();
  expect(databaseErrorKind(pgError('NOT_FOUND'))).toBeUndefined();
  expect(databaseErrorKind(new Error('plain'))).toBeUndefined();
  expect(databaseErrorKind('not an error')).toBeUndefined();
});
