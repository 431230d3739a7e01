import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dnsResolver, discover, type Resolver } from './edge-discovery';
import type { EdgeSettings } from './edge-settings';
import { configIdOf, renderNginxConfig } from './nginx-config';
import { findNginx } from './nginx-process';
import { createSelfSignedCert } from './tls';

export * from './edge-discovery';
export * from './edge-settings';

/**
 * The edge: nginx in a container, its upstreams discovered by DNS. In Docker Compose a
 * service name (`gateway`) resolves to one address per replica; in Kubernetes a headless
 * Service does the same for ready pods. See EdgeSupervisor for when it reloads.
 */

/** The upstream addresses a config is rendered from. */
export interface EdgeFleet {
  gateways: string[];
  messageServices: string[];
}

/** The nginx config for this edge and these upstream addresses. */
export function renderEdgeConfig(settings: EdgeSettings, gateways: readonly string[], messageServices: readonly string[]): string {
  return renderNginxConfig({
    gateways,
    messageServices,
    listen: settings.listen,
    certPath: settings.certPath,
    keyPath: settings.keyPath,
    prefix: settings.prefix,
    webRoot: settings.webRoot,
    maxConnsPerIp: settings.maxConnsPerIp,
    heartbeatMs: settings.heartbeatMs,
    workerProcesses: settings.workerProcesses,
    workerConnections: settings.workerConnections,
    workerShutdownTimeoutSeconds: settings.workerShutdownTimeoutSeconds,
  });
}

export interface EdgeLog {
  (event: string, fields?: Record<string, unknown>): void;
}

const jsonLog: EdgeLog = (event, fields = {}) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), service: 'edge', event, ...fields })}\n`);
};

export interface EdgeDeps {
  resolve?: Resolver;
  log?: EdgeLog;
  /** Where the config goes (default `<prefix>/parley.conf`). */
  configPath?: string;
  /** The clock the reload spacing is measured on (milliseconds). */
  now?: () => number;
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((value, index) => value === b[index]);

/**
 * Runs nginx and keeps its upstreams in line with DNS. `start()` waits until at least one
 * gateway and one message service resolve, renders, checks and starts nginx. `refresh()`
 * (run every `intervalMs`) resolves again and reads the certificate again; it reloads
 * when they changed, under three rules:
 *
 * - A change is applied once two lookups in a row agree on it, so an answer that flaps
 *   between two sets never reloads. Each reload starts new workers and leaves the old
 *   ones holding their WebSockets until `worker_shutdown_timeout`, then closing them all:
 *   reloads are not free.
 * - Reloads are at least `reloadMinIntervalMs` apart; what changes meanwhile goes into
 *   the next one (pods of one scale-out becoming ready one by one).
 * - An upstream that resolves to nothing, or a lookup that fails, keeps the live config:
 *   an empty upstream would answer every request with 503. A render `nginx -t` refuses
 *   never replaces the live config either.
 */
export class EdgeSupervisor {
  private nginxProcess: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: EdgeFleet = { gateways: [], messageServices: [] };
  /** A hash of the certificate and key nginx was last told to load. */
  private tlsFingerprint = '';
  /** A change seen by the latest lookup and not applied yet. */
  private pending: { key: string; deferred: boolean } | undefined;
  private lastReloadAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<boolean> | undefined;
  private stopping = false;
  private wakeStart: (() => void) | undefined;
  private readonly resolve: Resolver;
  private readonly log: EdgeLog;
  private readonly now: () => number;
  readonly configPath: string;
  readonly exited: Promise<number>;
  private onExit!: (code: number) => void;
  /** The id of the config nginx was last told to load. */
  configId = '';

  constructor(
    readonly settings: EdgeSettings,
    deps: EdgeDeps = {},
  ) {
    this.resolve = deps.resolve ?? dnsResolver;
    this.log = deps.log ?? jsonLog;
    this.now = deps.now ?? Date.now;
    this.configPath = deps.configPath ?? path.join(settings.prefix, 'parley.conf');
    this.exited = new Promise((resolve) => {
      this.onExit = resolve;
    });
  }

  get upstreams(): EdgeFleet {
    return { gateways: [...this.current.gateways], messageServices: [...this.current.messageServices] };
  }

  get nginxPid(): number | undefined {
    return this.nginxProcess?.pid;
  }

  private nginxBinary(): string {
    return this.settings.nginx || findNginx();
  }

  async start(): Promise<void> {
    await this.prepareFiles();
    for (;;) {
      if (this.stopping) return;
      const found = await this.lookup().catch((error: unknown) => {
        this.log('lookup failed', { error: (error as Error).message });
        return undefined;
      });
      if (found && hasBoth(found)) {
        await this.install(found, await this.readTlsFingerprint());
        break;
      }
      if (found) this.log('waiting for upstreams to resolve', { gateways: this.settings.gateways, messageServices: this.settings.messageServices, found });
      await new Promise<void>((resolve) => {
        this.wakeStart = resolve;
        setTimeout(resolve, this.settings.intervalMs).unref();
      });
    }
    // stop() arrived while the first config was being checked: nginx must not start now.
    if (this.stopping) return;
    const child = spawn(this.nginxBinary(), ['-e', 'stderr', '-p', this.settings.prefix, '-c', this.configPath, '-g', 'daemon off;'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.nginxProcess = child;
    child.on('error', (error) => {
      this.log('nginx could not start', { error: error.message });
      clearInterval(this.timer);
      this.onExit(1);
    });
    child.on('exit', (code, signal) => {
      this.log('nginx exited', { code, signal });
      clearInterval(this.timer);
      this.onExit(this.stopping ? 0 : (code ?? 1));
    });
    this.log('nginx started', { pid: child.pid, configId: this.configId, ...this.current });
    this.timer = setInterval(() => {
      void this.refresh().catch((error: unknown) => this.log('refresh failed', { error: (error as Error).message }));
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  /** The log symlinks and, when asked for, a self-signed certificate. */
  private async prepareFiles(): Promise<void> {
    const { settings } = this;
    await mkdir(settings.prefix, { recursive: true });
    if (settings.logToStdio) {
      for (const [file, target] of [
        ['access.log', '/dev/stdout'],
        ['error.log', '/dev/stderr'],
      ] as const) {
        await rm(path.join(settings.prefix, file), { force: true });
        await symlink(target, path.join(settings.prefix, file));
      }
    }
    if (!existsSync(settings.certPath) && settings.selfSigned) {
      const dir = path.dirname(settings.certPath);
      await mkdir(dir, { recursive: true });
      const made = await createSelfSignedCert({ dir, keyType: 'p256', dnsNames: settings.selfSignedNames, days: 365 });
      await mkdir(path.dirname(settings.keyPath), { recursive: true });
      if (made.keyPath !== settings.keyPath) await rename(made.keyPath, settings.keyPath);
      if (made.certPath !== settings.certPath) await rename(made.certPath, settings.certPath);
      this.log('self-signed certificate made', { certPath: settings.certPath, names: settings.selfSignedNames });
    }
  }

  /**
   * Looks again and reloads when the rules of the class allow it. Resolves true when it
   * reloaded; rejects (keeping the live config) when a lookup fails or nginx refuses.
   * Concurrent calls share one run.
   */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    if (this.stopping) return false;
    const found = await this.lookup();
    if (!hasBoth(found)) {
      this.pending = undefined;
      this.log('an upstream resolved to nothing; keeping the current config', { found });
      return false;
    }
    const tls = await this.readTlsFingerprint();
    const fleetChanged = !sameList(found.gateways, this.current.gateways) || !sameList(found.messageServices, this.current.messageServices);
    if (!fleetChanged && tls === this.tlsFingerprint) {
      this.pending = undefined;
      return false;
    }
    const key = JSON.stringify([found, tls]);
    if (this.pending?.key !== key) {
      this.pending = { key, deferred: false };
      this.log('change seen; applied if the next lookup agrees', { found, certificateChanged: tls !== this.tlsFingerprint });
      return false;
    }
    const waitMs = this.lastReloadAt + this.settings.reloadMinIntervalMs - this.now();
    if (waitMs > 0) {
      if (!this.pending.deferred) this.log('reload deferred: the last one was too recent', { waitMs });
      this.pending.deferred = true;
      return false;
    }
    const before = this.current;
    const certificateChanged = tls !== this.tlsFingerprint;
    // Counted as an attempt even when nginx -t refuses: a refused render is retried at
    // the reload pace, not on every lookup.
    this.lastReloadAt = this.now();
    await this.install(found, tls);
    if (this.stopping) return false;
    if (!this.nginxProcess?.kill('SIGHUP')) throw new Error('nginx is not running');
    this.pending = undefined;
    this.log('reloaded', { configId: this.configId, gateways: found.gateways, messageServices: found.messageServices, before, certificateChanged });
    return true;
  }

  private async lookup(): Promise<EdgeFleet> {
    const [gateways, messageServices] = await Promise.all([
      discover(this.settings.gateways, this.resolve),
      discover(this.settings.messageServices, this.resolve),
    ]);
    return { gateways, messageServices };
  }

  /**
   * nginx reads the certificate only when it starts or reloads; hashing the files on
   * every lookup lets a renewed certificate (a rotated Kubernetes Secret) reach nginx.
   */
  private async readTlsFingerprint(): Promise<string> {
    const hash = createHash('sha256');
    for (const file of [this.settings.certPath, this.settings.keyPath]) hash.update(await readFile(file));
    return hash.digest('hex');
  }

  private async install(found: EdgeFleet, tls: string): Promise<void> {
    const text = renderEdgeConfig(this.settings, found.gateways, found.messageServices);
    const candidate = `${this.configPath}.next`;
    await writeFile(candidate, text);
    await this.checkConfig(candidate);
    await rename(candidate, this.configPath);
    this.current = found;
    this.tlsFingerprint = tls;
    this.configId = configIdOf(text);
  }

  /**
   * `nginx -t` on a candidate config. It shares our stdout and stderr (not pipes): with
   * EDGE_LOG_TO_STDIO the logs are symlinks to /dev/stdout and /dev/stderr, which nginx
   * opens, and that works for a container's pipes or a file but not for a socket.
   */
  private async checkConfig(file: string): Promise<void> {
    const child = spawn(this.nginxBinary(), ['-t', '-q', '-e', 'stderr', '-p', this.settings.prefix, '-c', file], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`nginx -t refused ${file} (its output is above); the live config is unchanged`);
  }

  /**
   * Graceful stop: nginx finishes requests in flight (SIGQUIT); WebSockets still open
   * after `graceMs` are cut (SIGTERM) and their clients reconnect through another edge.
   * Called again while stopping, it cuts them at once.
   */
  async stop(graceMs: number): Promise<number> {
    const first = !this.stopping;
    this.stopping = true;
    clearInterval(this.timer);
    this.wakeStart?.();
    const child = this.nginxProcess;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.onExit(0);
      return this.exited;
    }
    if (first) child.kill('SIGQUIT');
    const force = setTimeout(() => child.kill('SIGTERM'), first ? graceMs : 0);
    const code = await this.exited;
    clearTimeout(force);
    return code;
  }
}

function hasBoth(fleet: EdgeFleet): boolean {
  return fleet.gateways.length > 0 && fleet.messageServices.length > 0;
}
