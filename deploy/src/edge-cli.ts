#!/usr/bin/env node
// The edge container's entry point: `node deploy/dist/edge-cli.js` runs nginx with
// upstreams discovered by DNS (see edge.ts); `node deploy/dist/edge-cli.js health` is the
// container's health check (nginx answers on its TLS port from loopback).
import { request } from 'node:https';
import { EdgeConfigError, EdgeSupervisor, edgeSettings } from './edge';

function health(listen: string): Promise<number> {
  const port = Number(/:(\d+)$/.exec(listen)?.[1] ?? 8443);
  return new Promise((resolve) => {
    // Loopback, to our own listener: the certificate may name a public host, not 127.0.0.1.
    const probe = request(
      { host: '127.0.0.1', port, path: '/nginx/config-id', rejectUnauthorized: false, timeout: 3000 },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200 ? 0 : 1);
      },
    );
    probe.on('timeout', () => probe.destroy(new Error('timeout')));
    probe.on('error', () => resolve(1));
    probe.end();
  });
}

async function main(): Promise<number> {
  const settings = edgeSettings(process.env);
  if (process.argv[2] === 'health') return health(settings.listen);
  const edge = new EdgeSupervisor(settings);
  // The first signal stops gracefully; a second one cuts the open sockets at once. Either
  // way this process exits only after nginx has, so no nginx outlives its supervisor.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => void edge.stop(settings.stopGraceMs));
  }
  await edge.start();
  return edge.exited;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`parley edge: ${error instanceof EdgeConfigError ? error.message : String((error as Error)?.stack ?? error)}\n`);
    process.exit(error instanceof EdgeConfigError ? 2 : 1);
  },
);
