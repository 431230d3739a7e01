import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { configIdOf, NginxConfigError, renderNginxConfig, webSocketTimeoutSeconds, type NginxConfigOptions } from './nginx-config';
import { findNginx, testNginxConfig } from './nginx-process';
import { createSelfSignedCert, type SelfSignedCert } from './tls';

const run = promisify(execFile);
const RENDER_CLI = path.resolve(__dirname, '../../nginx/render.mjs');

// Not skipped when nginx is missing: findNginx() throws saying how to install it.
const nginx = findNginx();
let workDir: string;
let tls: SelfSignedCert;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-nginx-config-'));
  tls = await createSelfSignedCert({ dir: workDir });
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

function gatewayAddresses(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `127.0.0.1:${4001 + index}`);
}

function options(overrides: Partial<NginxConfigOptions> = {}): NginxConfigOptions {
  return {
    gateways: gatewayAddresses(2),
    messageServices: ['127.0.0.1:3000'],
    listen: '127.0.0.1:8443',
    certPath: tls.certPath,
    keyPath: tls.keyPath,
    prefix: path.join(workDir, 'prefix'),
    ...overrides,
  };
}

/** The lines of one `upstream NAME { ... }` block. */
function upstreamBlock(config: string, name: string): string {
  const match = new RegExp(`upstream ${name} \\{([^}]*)\\}`).exec(config);
  if (!match) throw new Error(`no upstream ${name}`);
  return match[1]!;
}

describe('renderNginxConfig with the real nginx -t', () => {
  it.each([1, 3, 10])('renders a config for %i gateway(s) that nginx accepts without warnings', async (count) => {
    const prefix = path.join(workDir, `prefix-${count}`);
    await mkdir(prefix);
    const config = renderNginxConfig(options({ gateways: gatewayAddresses(count), prefix }));
    const configPath = path.join(prefix, 'parley.conf');
    await writeFile(configPath, config);

    const output = await testNginxConfig(nginx, prefix, configPath);
    expect(output).toContain('syntax is ok');
    expect(output).toContain('test is successful');
    expect(output).not.toMatch(/\[(warn|emerg|alert|crit)\]/);

    const gateways = upstreamBlock(config, 'parley_gateways');
    expect(gateways).toContain('least_conn;');
    expect(gateways.match(/^\s*server /gm)).toHaveLength(count);
    for (const address of gatewayAddresses(count)) expect(gateways).toContain(`server ${address} `);
    expect(config).not.toContain('{{');
  });
});

describe('renderNginxConfig', () => {
  it('keeps nginx inside the prefix: pid, logs and every temp path', () => {
    const prefix = path.join(workDir, 'p');
    const config = renderNginxConfig(options({ prefix }));
    for (const directive of [
      'pid',
      'error_log',
      'access_log',
      'client_body_temp_path',
      'proxy_temp_path',
      'fastcgi_temp_path',
      'uwsgi_temp_path',
      'scgi_temp_path',
    ]) {
      const line = new RegExp(`^\\s*${directive} "([^"]+)"`, 'm').exec(config);
      expect(line?.[1]?.startsWith(`${prefix}/`)).toBe(true);
    }
  });

  it('proxies /ws as a WebSocket with timeouts longer than the heartbeat', () => {
    const config = renderNginxConfig(options({ heartbeatMs: 40000 }));
    const ws = /location = \/ws \{([^}]*)\}/.exec(config)?.[1] ?? '';
    expect(ws).toContain('proxy_pass http://parley_gateways;');
    expect(ws).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(ws).toContain('proxy_set_header Connection $connection_upgrade;');
    expect(ws).toContain('proxy_set_header X-Request-Id $request_id;');
    expect(ws).toContain('proxy_set_header X-Real-IP $remote_addr;');
    expect(ws).toMatch(/proxy_next_upstream error timeout/);
    expect(ws).toContain('proxy_read_timeout 120s;');
    expect(ws).toContain('proxy_send_timeout 120s;');
    expect(config).toMatch(/map \$http_upgrade \$connection_upgrade/);
  });

  it('sizes the WebSocket timeout to three heartbeats, at least a minute', () => {
    expect(webSocketTimeoutSeconds(25000)).toBe(75);
    expect(webSocketTimeoutSeconds(1000)).toBe(60);
    expect(webSocketTimeoutSeconds(25000) * 1000).toBeGreaterThan(2 * 25000);
  });

  it('sends the REST routes to the message service over keep-alive connections', () => {
    const config = renderNginxConfig(options({ messageServices: ['127.0.0.1:3000', '127.0.0.1:3001'] }));
    const message = upstreamBlock(config, 'parley_message');
    expect(message).toContain('server 127.0.0.1:3000 ');
    expect(message).toContain('server 127.0.0.1:3001 ');
    expect(message).toMatch(/keepalive \d+;/);
    const location = /location ~ (\S+) \{([^}]*)\}/.exec(config);
    const pattern = new RegExp(location![1]!);
    for (const route of ['/v1/conversations', '/.well-known/jwks.json', '/openapi.json', '/readyz', '/healthz']) {
      expect(pattern.test(route)).toBe(true);
    }
    expect(pattern.test('/ws')).toBe(false);
    expect(pattern.test('/v2/x')).toBe(false);
    expect(location![2]).toContain('proxy_set_header Connection "";');
    expect(location![2]).toContain('proxy_http_version 1.1;');
  });

  it('limits connections per address (default 200, configurable) with 429, and bodies to 2m', () => {
    expect(renderNginxConfig(options())).toContain('limit_conn parley_conn_per_ip 200;');
    const config = renderNginxConfig(options({ maxConnsPerIp: 7 }));
    expect(config).toContain('limit_conn parley_conn_per_ip 7;');
    expect(config).toContain('limit_conn_status 429;');
    expect(config).toContain('client_max_body_size 2m;');
  });

  it('is deterministic, and its config id changes with the fleet', () => {
    const two = renderNginxConfig(options());
    expect(renderNginxConfig(options())).toBe(two);
    const three = renderNginxConfig(options({ gateways: gatewayAddresses(3) }));
    expect(configIdOf(three)).not.toBe(configIdOf(two));
    expect(two).toContain(`return 200 "${configIdOf(two)}\\n";`);
  });

  it.each<[string, Partial<NginxConfigOptions>]>([
    ['no gateway', { gateways: [] }],
    ['an address without a port', { gateways: ['127.0.0.1'] }],
    ['a port out of range', { gateways: ['127.0.0.1:70000'] }],
    ['a duplicate gateway', { gateways: ['127.0.0.1:4001', '127.0.0.1:4001'] }],
    ['no message service', { messageServices: [] }],
    ['a relative prefix', { prefix: 'relative/dir' }],
    ['a path that would end the nginx string', { certPath: '/tmp/a";evil' }],
    ['a path with an nginx variable', { keyPath: '/tmp/$host/key.pem' }],
    ['a zero connection limit', { maxConnsPerIp: 0 }],
    ['a fractional heartbeat', { heartbeatMs: 2.5 }],
  ])('refuses %s', (_what, overrides) => {
    expect(() => renderNginxConfig(options(overrides))).toThrow(NginxConfigError);
  });

  it('accepts IPv6 and host names as addresses', () => {
    const config = renderNginxConfig(options({ gateways: ['[::1]:4001', 'gateway-2.internal:4000'], listen: '[::]:443' }));
    expect(config).toContain('server [::1]:4001 ');
    expect(config).toContain('server gateway-2.internal:4000 ');
    expect(config).toContain('listen [::]:443 ssl;');
  });

  it('fails on a placeholder the renderer does not know', () => {
    expect(() => renderNginxConfig(options({ template: 'worker_processes {{nope}};' }))).toThrow(/\{\{nope\}\}/);
  });
});

describe('nginx/render.mjs', () => {
  it('writes what renderNginxConfig renders (one implementation), and nginx accepts it', async () => {
    const prefix = path.join(workDir, 'cli-prefix');
    const out = path.join(workDir, 'cli', 'parley.conf');
    const { stdout } = await run(process.execPath, [
      RENDER_CLI,
      '--gateway', '127.0.0.1:4001',
      '--gateway', '127.0.0.1:4002',
      '--gateway', '127.0.0.1:4003',
      '--message', '127.0.0.1:3000',
      '--listen', '127.0.0.1:8443',
      '--cert', tls.certPath,
      '--key', tls.keyPath,
      '--prefix', prefix,
      '--out', out,
      '--max-conns-per-ip', '50',
      '--heartbeat-ms', '30000',
    ]);
    expect(stdout).toContain('3 gateway(s)');
    const expected = renderNginxConfig(
      options({ gateways: gatewayAddresses(3), prefix, maxConnsPerIp: 50, heartbeatMs: 30000 }),
    );
    expect(await readFile(out, 'utf8')).toBe(expected);
    expect(await testNginxConfig(nginx, prefix, out)).toContain('test is successful');
  });

  it('exits 2 naming a missing option', async () => {
    const failure = await run(process.execPath, [RENDER_CLI, '--gateway', '127.0.0.1:4001']).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 2, stderr: expect.stringContaining('--message is required') });
  });
});
