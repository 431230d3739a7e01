export * from './passwords';
export * from './keys';
export * from './tokens';
export * from './hashing-gate';
