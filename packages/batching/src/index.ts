export { MicroBatcher, type ItemOutcome, type MicroBatcherOptions } from './micro-batcher';
