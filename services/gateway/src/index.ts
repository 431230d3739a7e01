export { Gateway, type GatewayDeps, type GatewayOptions } from './gateway';
export { GatewayMetrics } from './metrics';
export { RedisPresence, type Presence } from './presence';
export { loadGatewayConfig, GatewayEnvSchema, GatewayConfigError, type GatewayConfig } from './config';
