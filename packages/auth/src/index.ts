export * from './passwords';
export * from './keys';
export * from './tokens';
export * from './hashing-gate';
export * from './caching-token-verifier';
