import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The template every rendered config comes from (nginx/parley.conf.template). */
export const NGINX_TEMPLATE_PATH = path.resolve(__dirname, '../../nginx/parley.conf.template');

/** The built web client (`npm run build`), served at `/` unless a config names another directory. */
export const WEB_ROOT = path.resolve(__dirname, '../../packages/web/dist');

export const NGINX_DEFAULTS = {
  maxConnsPerIp: 200,
  heartbeatMs: 25000,
  workerProcesses: 'auto' as number | 'auto',
  workerConnections: 4096,
  workerShutdownTimeoutSeconds: 300,
  clientHeaderTimeoutSeconds: 10,
};

/** What a rendered config needs. Addresses are `host:port` (`[v6]:port` for IPv6). */
export interface NginxConfigOptions {
  /** Gateway replicas behind `/ws`, at least one. */
  gateways: readonly string[];
  /** Message-service replicas behind `/v1/`, `/.well-known/`, `/openapi.json`, `/healthz`, `/readyz`. */
  messageServices: readonly string[];
  /** TLS listen address, e.g. `127.0.0.1:8443` or `0.0.0.0:443`. */
  listen: string;
  /** Absolute paths of the PEM certificate (chain) and its private key. */
  certPath: string;
  keyPath: string;
  /** Absolute directory for the pid file, logs and temp files; must exist before nginx starts. */
  prefix: string;
  /** Absolute directory of the web client's static files, served at `/` (default WEB_ROOT). */
  webRoot?: string;
  /** Open connections allowed per client address; over it nginx answers 429. */
  maxConnsPerIp?: number;
  /** The gateways' ping interval; the WebSocket idle timeouts are sized from it. */
  heartbeatMs?: number;
  workerProcesses?: number | 'auto';
  workerConnections?: number;
  /** How long old workers keep serving open sockets after a reload or graceful stop. */
  workerShutdownTimeoutSeconds?: number;
  /**
   * Deadline for the TLS handshake plus the whole request head (an upgrade included): a
   * client that trickles its headers (slowloris) holds a connection no longer than this.
   */
  clientHeaderTimeoutSeconds?: number;
  /** Template text; defaults to nginx/parley.conf.template. */
  template?: string;
}

export class NginxConfigError extends Error {
  override name = 'NginxConfigError';
}

const ADDRESS = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\*):(\d{1,5})$/;
// Characters that would end a quoted nginx string, start a variable or a new line.
const UNSAFE_PATH = /["\\$;{}\n\r\t\0]/;

function address(value: string, what: string, allowWildcard = false): string {
  const match = ADDRESS.exec(value);
  const port = match ? Number(match[2]) : 0;
  if (!match || port < 1 || port > 65535 || (match[1] === '*' && !allowWildcard)) {
    throw new NginxConfigError(`${what}: expected host:port, got ${JSON.stringify(value)}`);
  }
  return value;
}

function absolutePath(value: string, what: string): string {
  if (!path.isAbsolute(value)) throw new NginxConfigError(`${what} must be an absolute path, got ${JSON.stringify(value)}`);
  if (UNSAFE_PATH.test(value)) throw new NginxConfigError(`${what} contains a character nginx cannot take: ${JSON.stringify(value)}`);
  return path.normalize(value);
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new NginxConfigError(`${what} must be a positive integer, got ${value}`);
  return value;
}

function addressList(values: readonly string[], what: string): string[] {
  if (values.length === 0) throw new NginxConfigError(`at least one ${what} is required`);
  const checked = values.map((value) => address(value, what));
  const duplicate = checked.find((value, index) => checked.indexOf(value) !== index);
  if (duplicate) throw new NginxConfigError(`${what} ${duplicate} is listed twice`);
  return checked;
}

let defaultTemplate: string | undefined;
function loadDefaultTemplate(): string {
  defaultTemplate ??= readFileSync(NGINX_TEMPLATE_PATH, 'utf8');
  return defaultTemplate;
}

/**
 * Seconds nginx waits on a silent WebSocket: three heartbeats, at least 60, so a socket
 * is cut only after the gateway and the client have both missed several pings.
 */
export function webSocketTimeoutSeconds(heartbeatMs: number): number {
  return Math.max(60, Math.ceil((3 * heartbeatMs) / 1000));
}

/**
 * Renders a complete standalone nginx.conf for N gateway replicas. Deterministic: the
 * same options give the same text, and the `config id` it embeds (served to loopback at
 * `/nginx/config-id`) is a hash of that text, so a reload can be seen to have landed.
 */
export function renderNginxConfig(options: NginxConfigOptions): string {
  const gateways = addressList(options.gateways, 'gateway');
  const messageServices = addressList(options.messageServices, 'message service');
  const workerConnections = positiveInteger(
    options.workerConnections ?? NGINX_DEFAULTS.workerConnections,
    'workerConnections',
  );
  const workerProcesses = options.workerProcesses ?? NGINX_DEFAULTS.workerProcesses;
  const heartbeatMs = positiveInteger(options.heartbeatMs ?? NGINX_DEFAULTS.heartbeatMs, 'heartbeatMs');
  const values: Record<string, string> = {
    prefix: absolutePath(options.prefix, 'prefix'),
    cert: absolutePath(options.certPath, 'certPath'),
    key: absolutePath(options.keyPath, 'keyPath'),
    web_root: absolutePath(options.webRoot ?? WEB_ROOT, 'webRoot'),
    listen: address(options.listen, 'listen', true),
    max_conns_per_ip: String(positiveInteger(options.maxConnsPerIp ?? NGINX_DEFAULTS.maxConnsPerIp, 'maxConnsPerIp')),
    heartbeat_ms: String(heartbeatMs),
    ws_timeout: `${webSocketTimeoutSeconds(heartbeatMs)}s`,
    worker_processes: workerProcesses === 'auto' ? 'auto' : String(positiveInteger(workerProcesses, 'workerProcesses')),
    worker_connections: String(workerConnections),
    rlimit_nofile: String(workerConnections * 2),
    worker_shutdown_timeout: `${positiveInteger(
      options.workerShutdownTimeoutSeconds ?? NGINX_DEFAULTS.workerShutdownTimeoutSeconds,
      'workerShutdownTimeoutSeconds',
    )}s`,
    client_header_timeout: `${positiveInteger(
      options.clientHeaderTimeoutSeconds ?? NGINX_DEFAULTS.clientHeaderTimeoutSeconds,
      'clientHeaderTimeoutSeconds',
    )}s`,
    // A dead replica is skipped for 10 s after one failure, then tried again.
    gateway_servers: gateways.map((gateway) => `        server ${gateway} max_fails=1 fail_timeout=10s;`).join('\n'),
    message_servers: messageServices.map((service) => `        server ${service} max_fails=1 fail_timeout=5s;`).join('\n'),
    config_id: '',
  };

  const fill = (template: string) =>
    template.replace(/\{\{([a-z_]+)\}\}/g, (_match, name: string) => {
      const value = values[name];
      if (value === undefined) throw new NginxConfigError(`template uses an unknown placeholder {{${name}}}`);
      return value;
    });
  const template = options.template ?? loadDefaultTemplate();
  values['config_id'] = createHash('sha256').update(fill(template)).digest('hex').slice(0, 16);
  return fill(template);
}

/** The config id a rendered config carries (see renderNginxConfig). */
export function configIdOf(renderedConfig: string): string {
  const match = /^# config id: ([0-9a-f]{16})$/m.exec(renderedConfig);
  if (!match) throw new NginxConfigError('rendered config has no "# config id:" line');
  return match[1]!;
}
