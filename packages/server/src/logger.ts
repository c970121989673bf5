import { pino } from 'pino';
import type { LogLevel } from './config.js';
import type { ServerLogger } from './server-logger.js';

/** A pino logger writing JSON lines to stdout. */
export function createJsonLogger(level: LogLevel): ServerLogger & { level: string } {
  return pino({ level, base: { service: 'prserv' }, timestamp: pino.stdTimeFunctions.isoTime });
}
