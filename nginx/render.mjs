#!/usr/bin/env node
// Renders nginx/parley.conf.template into a standalone nginx.conf. A thin CLI: the one
// implementation is renderNginxConfig in deploy/src/nginx-config.ts (compiled to deploy/dist).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = `Usage: node nginx/render.mjs --gateway HOST:PORT [--gateway HOST:PORT ...] --message HOST:PORT
         --listen HOST:PORT --cert FILE --key FILE --prefix DIR --out FILE
         [--web-root DIR] [--max-conns-per-ip N] [--heartbeat-ms N] [--workers N|auto] [--worker-connections N]

Then: nginx -p DIR -c FILE -g 'daemon off;'   (after a re-render: nginx -p DIR -c FILE -s reload)`;

function fail(message) {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function loadRenderer() {
  const require = createRequire(import.meta.url);
  try {
    return require('../deploy/dist/nginx-config.js');
  } catch (error) {
    process.stderr.write(`deploy/dist/nginx-config.js could not be loaded (run \`npm run build\` first): ${error.message}\n`);
    process.exit(1);
  }
}

function integer(value, name) {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) fail(`--${name} must be a positive integer`);
  return parsed;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      gateway: { type: 'string', multiple: true },
      message: { type: 'string', multiple: true },
      listen: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      prefix: { type: 'string' },
      out: { type: 'string' },
      'web-root': { type: 'string' },
      'max-conns-per-ip': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      workers: { type: 'string' },
      'worker-connections': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  fail(error.message);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
for (const name of ['gateway', 'message', 'listen', 'cert', 'key', 'prefix', 'out']) {
  if (values[name] === undefined) fail(`--${name} is required`);
}

const { renderNginxConfig } = loadRenderer();
// The config is read by nginx from anywhere: make every path absolute.
const prefix = path.resolve(values.prefix);
let text;
try {
  text = renderNginxConfig({
    gateways: values.gateway,
    messageServices: values.message,
    listen: values.listen,
    certPath: path.resolve(values.cert),
    keyPath: path.resolve(values.key),
    prefix,
    webRoot: values['web-root'] === undefined ? undefined : path.resolve(values['web-root']),
    maxConnsPerIp: integer(values['max-conns-per-ip'], 'max-conns-per-ip'),
    heartbeatMs: integer(values['heartbeat-ms'], 'heartbeat-ms'),
    workerProcesses: values.workers === undefined || values.workers === 'auto' ? undefined : integer(values.workers, 'workers'),
    workerConnections: integer(values['worker-connections'], 'worker-connections'),
  });
} catch (error) {
  fail(error.message);
}

// nginx writes its pid, logs and temp files under the prefix; it must exist.
mkdirSync(prefix, { recursive: true });
const out = path.resolve(values.out);
mkdirSync(path.dirname(out), { recursive: true });
// Through a rename, so a reload never reads a half-written file.
writeFileSync(`${out}.tmp`, text);
renameSync(`${out}.tmp`, out);
process.stdout.write(`${out}: ${values.gateway.length} gateway(s) behind ${values.listen}\n`);
