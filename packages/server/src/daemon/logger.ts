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

const PINO_OPTIONS = { base: { service: 'prserv' }, timestamp: pino.stdTimeFunctions.isoTime } as const;

/**
 * A pino logger writing JSON lines to stdout, synchronously: in order, and nothing lost when the
 * process exits right after its last line (shutdown). Logging is per event, not per request
 * (requests are logged at debug only), so writing in place costs nothing that counts.
 */
export function createJsonLogger(level: LogLevel): ServerLogger & { level: string } {
  return pino({ level, ...PINO_OPTIONS }, pino.destination({ dest: 1, sync: true }));
}

/**
 * A pino logger writing readable, coloured lines to stdout (pino-pretty), for people at a
 * terminal. Written synchronously, so that nothing is lost when the process exits.
 */
export async function createPrettyLogger(level: LogLevel): Promise<ServerLogger> {
  // Loaded only when asked for: most servers log JSON, and the formatter costs time to load.
  const { default: pretty } = await import('pino-pretty');
  const logger: ServerLogger = pino({ level, ...PINO_OPTIONS }, pretty({ sync: true, colorize: process.stdout.isTTY === true, ignore: 'service' }));
  return logger;
}
