export { buildApp, type AppDeps, type AppConfig, type MessageApp } from './app';
export { loadConfig, EnvSchema, ConfigError, FAULT_EXIT_CODE, type Config } from './config';
