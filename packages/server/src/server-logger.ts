/** The logging calls the server makes; a pino logger fits, so does a silent stub. */
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
