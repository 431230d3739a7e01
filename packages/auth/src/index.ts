export * from './passwords';
export * from './keys';
export * from './tokens';
