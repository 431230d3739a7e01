/**
 * The native load generator: raw `ws` clients in forked worker processes, spread over
 * source addresses 127.0.0.x, at a fixed offered rate, with the processes' own figures.
 * `runScenario` is the entry point for scripts; cli.ts wraps it for the command line.
 */
export { runScenario, type RunOptions } from './run';
export { formatSummary, type LoadResult, type ResolvedOptionsSummary, type ScenarioName } from './result';
export { layoutOf, resolveOptions, type ScenarioOptions } from './scenarios';
export { attachTo, type AttachTarget, type StartTarget } from './target';
export { Histogram, type HistogramData, type Percentiles } from './histogram';
export { runAtFixedRate, type FixedRateOptions } from './rate';
export { SeqSet } from './seq-set';
export * from './process-figures';
