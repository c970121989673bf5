/** A command-line usage mistake (unknown command, wrong arguments): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A setting that cannot be used (flag, environment or config file): exit code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** True when `value` is a {@link UsageError}. */
export function isUsageError(value: unknown): value is UsageError {
  return value instanceof UsageError;
}

/** True when `value` is a {@link ConfigError}. */
export function isConfigError(value: unknown): value is ConfigError {
  return value instanceof ConfigError;
}

/** True when `value` is `util.parseArgs` refusing the arguments (unknown option, missing value…). */
export function isArgumentsError(value: unknown): boolean {
  const code = (value as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
