export { buildApp, type AppDeps, type AppConfig, type MessageApp } from './app';
export { loadConfig, EnvSchema, ConfigError, type Config } from './config';
