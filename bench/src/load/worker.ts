/**
 * One load-generator worker process (forked by the parent, see pool.ts). Separate
 * processes rather than worker threads because the open-file limit (~20,000 here, and not
 * raisable) is per process: each worker keeps its share of the sockets below it.
 */
import { ClientFleet } from './client-fleet';
import type { FromWorker, ToWorker } from './ipc';

let fleet: ClientFleet | undefined;

function reply(message: FromWorker): void {
  process.send!(message);
}

async function handle(message: ToWorker): Promise<FromWorker> {
  if (message.type === 'init') {
    fleet = new ClientFleet(message.plan);
    return { id: message.id, type: 'ok' };
  }
  if (!fleet) throw new Error('not initialised');
  switch (message.type) {
    case 'connect':
      return { id: message.id, type: 'connected', report: await fleet.connect(message.count) };
    case 'run':
      return { id: message.id, type: 'ran', scheduled: await fleet.run(message.ratePerSecond, message.startUs, message.measureFromUs, message.endUs) };
    case 'status':
      return { id: message.id, type: 'status', status: fleet.status() };
    case 'collect':
      return { id: message.id, type: 'collected', result: fleet.result() };
    case 'close':
      fleet.close();
      return { id: message.id, type: 'ok' };
  }
}

process.on('message', (message: ToWorker) => {
  handle(message).then(reply, (error: unknown) =>
    reply({ id: message.id, type: 'failed', error: (error as Error)?.stack ?? String(error) }),
  );
});

// The parent owns this process: when it goes, so do the sockets.
process.on('disconnect', () => process.exit(0));
