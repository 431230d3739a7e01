export * from './bus';
export * from './keyed-sets';
export * from './memory-bus';
export * from './redis-bus';
