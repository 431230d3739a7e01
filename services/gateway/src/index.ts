export {
  Gateway,
  webSocketServerOptions,
  UPGRADE_HEADERS_TIMEOUT_MS,
  type GatewayDeps,
  type GatewayOptions,
} from './gateway';
export { GatewayMetrics } from './metrics';
export type { Presence } from './presence';
export { RedisPresence } from './redis-presence';
export { MemoryPresence } from './memory-presence';
export { loadGatewayConfig, GatewayEnvSchema, GatewayConfigError, type GatewayConfig } from './config';
