// The daemon, for programs that embed a PR server.
export { DEFAULT_PORT, startPrServer } from './daemon/pr-server.js';
export type { PrServerOptions, RunningPrServer } from './daemon/pr-server.js';
export { MAX_REQUESTS_IN_FLIGHT } from './daemon/json-rpc-session.js';
export { LATENCY_BUCKETS_SECONDS, ServerStats } from './daemon/server-stats.js';
export type { RequestOutcome, RequestRecord, WireProtocol } from './daemon/server-stats.js';
export { createUpstreamPool } from './daemon/upstream-pool.js';
export type { UpstreamPool, UpstreamPoolOptions } from './daemon/upstream-pool.js';
export { LOG_LEVELS, createJsonLogger, silentLogger } from './daemon/logger.js';
export type { LogLevel, ServerLogger } from './daemon/logger.js';

// The command line, for wrappers that run `prserv` in-process.
export { runCli } from './cli/main.js';
export type { CliIo } from './cli/io.js';

// The load generator behind `prserv client stress`, for CI tooling.
export { runStress, stressExitCode } from './cli/stress/run-stress.js';
export type { StressReport } from './cli/stress/run-stress.js';
export type { StressMode, StressOptions } from './cli/stress/stress-settings.js';
export type { CheckResult } from './cli/stress/answer-checks.js';
