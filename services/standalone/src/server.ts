#!/usr/bin/env node
// `npm start`: Parley in one process (see standalone.ts). Reads the environment, starts,
// prints where to open it, and stops cleanly on SIGINT or SIGTERM.
import { banner } from './banner';
import { loadStandaloneConfig, StandaloneConfigError } from './config';
import { startStandalone } from './standalone';

async function main(): Promise<void> {
  const config = await loadStandaloneConfig(process.env);
  process.stdout.write(config.servers ? 'Starting Parley…\n' : 'Starting Parley (the embedded database takes a few seconds)…\n');
  const running = await startStandalone({ config });
  process.stdout.write(banner(running));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      // Asked twice: stop waiting. The database recovers on the next start.
      process.stderr.write(`${signal} again: exiting without waiting\n`);
      process.exit(130);
    }
    process.stdout.write('Stopping Parley…\n');
    running.stop().then(
      () => {
        process.stdout.write('Stopped.\n');
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`parley: stopping failed: ${String((error as Error)?.stack ?? error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main().catch((error: unknown) => {
  if (error instanceof StandaloneConfigError) {
    process.stderr.write(`parley: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`parley failed to start: ${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
