/**
 * Preloaded into gateways by the idle scenario (`node --require`, through NODE_OPTIONS) so
 * that their memory is read after a full GC, as the bare `ws` and Socket.IO ceilings'
 * servers are: the comparison then measures what a connection keeps, not when V8 last
 * collected. Not part of the product: only the benchmark's topologies load it.
 *
 * On SIGUSR2 it collects twice (the first pass can leave garbage only the second frees)
 * and writes `{ count, memory }` to $PARLEY_BENCH_GC_DIR/<pid>.json, which the runner waits
 * for (see gateway-gc.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const directory = process.env['PARLEY_BENCH_GC_DIR'];
if (directory) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let count = 0;
  process.on('SIGUSR2', () => {
    gc();
    gc();
    count += 1;
    writeFileSync(join(directory, `${process.pid}.json`), JSON.stringify({ count, memory: process.memoryUsage() }));
  });
}
