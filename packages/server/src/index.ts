export { DEFAULT_PORT, startPrServer } from './pr-server.js';
export type { PrServerOptions, RunningPrServer } from './pr-server.js';
export { dispatchRequest, invokeErrorBody, toInvokeErrorMessage } from './dispatch.js';
export type { ClientGeneration, DispatchContext, ResponseBody } from './dispatch.js';
export type { ServerLogger } from './server-logger.js';
export { silentLogger } from './server-logger.js';
export {
  ConfigError,
  DEFAULT_SERVER_ADDR,
  ENV_NAMES,
  LOG_LEVELS,
  SERVER_DEFAULTS,
  loadConfigFile,
  parseBind,
  resolveClientSettings,
  resolveServerSettings,
} from './config.js';
export type { ClientSettings, ConfigFile, LogLevel, ServerFlags, ServerSettings } from './config.js';
export { runCli } from './cli-main.js';
export type { CliIo } from './cli-main.js';
export { runStress, stressExitCode } from './stress/run-stress.js';
export type { StressReport } from './stress/run-stress.js';
export type { StressMode, StressOptions } from './stress/stress-settings.js';
export type { CheckResult } from './stress/answer-checks.js';
