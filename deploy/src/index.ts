export * from './nginx-config';
export * from './nginx-process';
export * from './managed-process';
export * from './http-client';
export * from './readiness';
export * from './ports';
export * from './tls';
export * from './topology';
