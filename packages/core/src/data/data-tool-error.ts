/** Stable codes of errors raised by the data tools (import, export, verify, migrate). */
export const DATA_TOOL_ERROR_CODES = [
  /** A source file cannot be read, or is of no kind the importer knows. */
  'SOURCE_UNREADABLE',
  /** A BitBake database holds rows in more than one table: `table` must name the one to take. */
  'SOURCE_AMBIGUOUS',
  /** A BitBake database has a non-empty `-wal` file beside it: its server is still running. */
  'SOURCE_IN_USE',
  /** A row of a source file is malformed beyond skipping (e.g. a broken line of our JSON export). */
  'SOURCE_MALFORMED',
  /** An argument of a data tool is wrong (unknown format, same source and target…). */
  'INVALID_ARGUMENT',
  /** An optional package a data tool needs (sql.js) is not installed. */
  'DRIVER_MISSING',
  /** Rows cannot be written in the requested format (e.g. a key an `.inc` file cannot spell). */
  'FORMAT_UNSUITABLE',
  /** A migration's target does not hold what its source held after copying. */
  'MIGRATION_MISMATCH',
] as const;

/** One of {@link DATA_TOOL_ERROR_CODES}. */
export type DataToolErrorCode = (typeof DATA_TOOL_ERROR_CODES)[number];

/** A local error of the data tools, with a stable `code`; the underlying error, if any, is `cause`. */
export class DataToolError extends Error {
  override readonly name = 'DataToolError';
  readonly code: DataToolErrorCode;

  constructor(code: DataToolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `value` is a {@link DataToolError}. */
export function isDataToolError(value: unknown): value is DataToolError {
  return value instanceof DataToolError;
}
