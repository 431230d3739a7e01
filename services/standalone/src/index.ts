export { startStandalone, type StandaloneOptions, type RunningStandalone } from './standalone';
export {
  loadStandaloneConfig,
  StandaloneEnvSchema,
  StandaloneConfigError,
  DEFAULT_WEB_ROOT,
  type StandaloneConfig,
} from './config';
export { banner } from './banner';
