import { pino } from 'pino';

/** Log levels of the server (pino's). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The logging calls the server makes; a pino logger fits, so does {@link silentLogger}. */
export interface ServerLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  /** True when `level` is logged; lets the request path skip building lines nobody reads. Default: true. */
  isLevelEnabled?(level: 'debug'): boolean;
}

/** A logger that drops everything. */
export const silentLogger: ServerLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  isLevelEnabled: () => false,
};

/** A pino logger writing JSON lines to stdout. */
export function createJsonLogger(level: LogLevel): ServerLogger & { level: string } {
  return pino({ level, base: { service: 'prserv' }, timestamp: pino.stdTimeFunctions.isoTime });
}
