import path from 'node:path';
import { NGINX_DEFAULTS } from './nginx-config';

/**
 * Every variable the edge reads, with its default (the Compose file and the Kubernetes
 * manifests are checked against this list, deploy/compose/README.md documents it).
 */
export const EDGE_ENV = {
  EDGE_GATEWAYS: 'gateway:4000',
  EDGE_MESSAGE_SERVICES: 'message:3000',
  EDGE_LISTEN: '0.0.0.0:8443',
  EDGE_TLS_CERT: '/etc/parley-edge/tls/tls.crt',
  EDGE_TLS_KEY: '/etc/parley-edge/tls/tls.key',
  EDGE_SELF_SIGNED: 'false',
  EDGE_SELF_SIGNED_NAMES: 'localhost',
  EDGE_PREFIX: '/run/parley-edge/nginx',
  EDGE_WEB_ROOT: '/srv/parley/web',
  EDGE_DISCOVERY_INTERVAL_MS: '2000',
  EDGE_RELOAD_MIN_INTERVAL_MS: '10000',
  EDGE_MAX_CONNS_PER_IP: String(NGINX_DEFAULTS.maxConnsPerIp),
  EDGE_HEARTBEAT_MS: String(NGINX_DEFAULTS.heartbeatMs),
  EDGE_WORKERS: 'auto',
  EDGE_WORKER_CONNECTIONS: String(NGINX_DEFAULTS.workerConnections),
  EDGE_WORKER_SHUTDOWN_TIMEOUT_SECONDS: String(NGINX_DEFAULTS.workerShutdownTimeoutSeconds),
  EDGE_LOG_TO_STDIO: 'true',
  EDGE_STOP_GRACE_MS: '10000',
  EDGE_NGINX: '',
} as const;
export type EdgeEnvName = keyof typeof EDGE_ENV;

export interface EdgeSettings {
  /** `name:port` to resolve, each to one upstream server per address. */
  gateways: string[];
  messageServices: string[];
  listen: string;
  certPath: string;
  keyPath: string;
  /** Make a self-signed certificate (P-256, browsers accept it) when none is at certPath. */
  selfSigned: boolean;
  selfSignedNames: string[];
  prefix: string;
  webRoot: string;
  /** How often the names are resolved again (and the certificate read again). */
  intervalMs: number;
  /** The least time between two reloads: changes meanwhile wait and go in one reload. */
  reloadMinIntervalMs: number;
  maxConnsPerIp: number;
  heartbeatMs: number;
  workerProcesses: number | 'auto';
  workerConnections: number;
  workerShutdownTimeoutSeconds: number;
  /** nginx's access and error logs go to stdout and stderr (symlinks in the prefix), as containers expect. */
  logToStdio: boolean;
  /** On SIGTERM, how long open WebSockets may stay before nginx is told to close them. */
  stopGraceMs: number;
  nginx: string;
}

export class EdgeConfigError extends Error {
  override name = 'EdgeConfigError';
}

/** `name:port`, `address:port` or `[v6]:port`: group 1 is the host, group 2 the port. */
export const TARGET = /^([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;

function targets(value: string, name: string): string[] {
  const list = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (list.length === 0) throw new EdgeConfigError(`${name} names no host:port`);
  for (const item of list) {
    const match = TARGET.exec(item);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw new EdgeConfigError(`${name}: expected host:port[,host:port...], got ${JSON.stringify(item)}`);
    }
  }
  return list;
}

function integer(value: string, name: string, minimum: number): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < minimum) throw new EdgeConfigError(`${name} must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
  return parsed;
}

function flag(value: string, name: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new EdgeConfigError(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** Reads and checks every EDGE_* variable; throws an EdgeConfigError naming a bad one. */
export function edgeSettings(source: NodeJS.ProcessEnv): EdgeSettings {
  const env = (name: EdgeEnvName): string => {
    const value = source[name];
    return value === undefined || value === '' ? EDGE_ENV[name] : value;
  };
  const workers = env('EDGE_WORKERS');
  return {
    gateways: targets(env('EDGE_GATEWAYS'), 'EDGE_GATEWAYS'),
    messageServices: targets(env('EDGE_MESSAGE_SERVICES'), 'EDGE_MESSAGE_SERVICES'),
    listen: env('EDGE_LISTEN'),
    certPath: path.resolve(env('EDGE_TLS_CERT')),
    keyPath: path.resolve(env('EDGE_TLS_KEY')),
    selfSigned: flag(env('EDGE_SELF_SIGNED'), 'EDGE_SELF_SIGNED'),
    selfSignedNames: env('EDGE_SELF_SIGNED_NAMES').split(',').map((name) => name.trim()).filter(Boolean),
    prefix: path.resolve(env('EDGE_PREFIX')),
    webRoot: path.resolve(env('EDGE_WEB_ROOT')),
    intervalMs: integer(env('EDGE_DISCOVERY_INTERVAL_MS'), 'EDGE_DISCOVERY_INTERVAL_MS', 100),
    reloadMinIntervalMs: integer(env('EDGE_RELOAD_MIN_INTERVAL_MS'), 'EDGE_RELOAD_MIN_INTERVAL_MS', 0),
    maxConnsPerIp: integer(env('EDGE_MAX_CONNS_PER_IP'), 'EDGE_MAX_CONNS_PER_IP', 1),
    heartbeatMs: integer(env('EDGE_HEARTBEAT_MS'), 'EDGE_HEARTBEAT_MS', 1000),
    workerProcesses: workers === 'auto' ? 'auto' : integer(workers, 'EDGE_WORKERS', 1),
    workerConnections: integer(env('EDGE_WORKER_CONNECTIONS'), 'EDGE_WORKER_CONNECTIONS', 16),
    workerShutdownTimeoutSeconds: integer(env('EDGE_WORKER_SHUTDOWN_TIMEOUT_SECONDS'), 'EDGE_WORKER_SHUTDOWN_TIMEOUT_SECONDS', 1),
    logToStdio: flag(env('EDGE_LOG_TO_STDIO'), 'EDGE_LOG_TO_STDIO'),
    stopGraceMs: integer(env('EDGE_STOP_GRACE_MS'), 'EDGE_STOP_GRACE_MS', 0),
    nginx: env('EDGE_NGINX'),
  };
}
