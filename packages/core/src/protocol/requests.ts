import { ProtocolError } from './protocol-error.js';

/** Every method a PR server answers, as named on the wire. */
export const PR_METHODS = [
  'ping',
  'is-readonly',
  'get-pr',
  'test-pr',
  'test-package',
  'max-package-pr',
  'import-one',
  'export',
  'get-stats',
  'reset-stats',
  'preview-pr',
  'package-history',
] as const;

/** One of {@link PR_METHODS}. */
export type PrMethod = (typeof PR_METHODS)[number];

/** The package a request is about. */
export interface PackageParams {
  readonly version: string;
  readonly pkgarch: string;
}

/** A package and one checksum of it. */
export interface ChecksumParams extends PackageParams {
  readonly checksum: string;
}

/**
 * A decoded, validated request. `history` is `undefined` when the client did not send the key:
 * that is how a legacy client (BitBake before 2.10) is recognised.
 */
export type PrRequest =
  | { readonly method: 'ping' }
  | { readonly method: 'is-readonly' }
  | { readonly method: 'get-stats' | 'reset-stats' }
  | ({ readonly method: 'get-pr' | 'test-pr' | 'preview-pr'; readonly history: boolean | undefined } & ChecksumParams)
  | ({ readonly method: 'package-history'; readonly checksum: string | null } & PackageParams)
  | ({ readonly method: 'test-package' | 'max-package-pr' } & PackageParams)
  | ({ readonly method: 'import-one'; readonly value: string; readonly valueWasNumber: boolean } & ChecksumParams)
  | {
      readonly method: 'export';
      readonly version: string | null;
      readonly pkgarch: string | null;
      readonly checksum: string | null;
      readonly colinfo: boolean;
      readonly history: boolean | undefined;
    };

/**
 * Validates one decoded message as a PR request (`{"<method>": {params}}`). Throws a
 * {@link ProtocolError} naming the problem: `UNKNOWN_METHOD` or `INVALID_PARAMS`.
 */
export function parseRequest(message: unknown): PrRequest {
  if (!isPlainObject(message)) {
    throw new ProtocolError('INVALID_PARAMS', 'a request must be a JSON object {"<method>": {parameters}}');
  }
  const keys = Object.keys(message);
  if (keys.length !== 1) {
    throw new ProtocolError(
      'INVALID_PARAMS',
      `a request must have exactly one key, the method name; got ${keys.length === 0 ? 'none' : keys.map((k) => JSON.stringify(k)).join(', ')}`,
    );
  }
  const method = keys[0]!;
  if (!isPrMethod(method)) {
    throw new ProtocolError('UNKNOWN_METHOD', `unknown method ${JSON.stringify(method.slice(0, 60))}`);
  }
  const raw = message[method];
  const params = raw === null || raw === undefined ? {} : raw;
  if (!isPlainObject(params)) {
    throw new ProtocolError('INVALID_PARAMS', `${method}: parameters must be a JSON object`);
  }
  const read = new ParamReader(method, params);
  switch (method) {
    case 'ping':
    case 'is-readonly':
    case 'get-stats':
    case 'reset-stats':
      return { method };
    case 'get-pr':
    case 'test-pr':
      // Spelled out rather than spread: this is the request every build sends thousands of.
      return {
        method,
        version: read.requiredString('version'),
        pkgarch: read.requiredString('pkgarch'),
        checksum: read.requiredString('checksum'),
        history: read.optionalBoolean('history'),
      };
    case 'preview-pr':
      return { method, ...read.checksumParams(), history: read.optionalBoolean('history') };
    case 'package-history':
      return { method, ...read.packageParams(), checksum: read.filter('checksum') };
    case 'test-package':
    case 'max-package-pr':
      return { method, ...read.packageParams() };
    case 'import-one': {
      const { value, wasNumber } = read.revisionValue('value');
      return { method, ...read.checksumParams(), value, valueWasNumber: wasNumber };
    }
    case 'export':
      return {
        method,
        version: read.filter('version'),
        pkgarch: read.filter('pkgarch'),
        checksum: read.filter('checksum'),
        colinfo: read.optionalBoolean('colinfo') ?? false,
        history: read.optionalBoolean('history'),
      };
  }
}

/** True when `name` is one of {@link PR_METHODS}. */
export function isPrMethod(name: string): name is PrMethod {
  return (PR_METHODS as readonly string[]).includes(name);
}

class ParamReader {
  readonly #method: string;
  readonly #params: Record<string, unknown>;

  constructor(method: string, params: Record<string, unknown>) {
    this.#method = method;
    this.#params = params;
  }

  packageParams(): PackageParams {
    return { version: this.requiredString('version'), pkgarch: this.requiredString('pkgarch') };
  }

  checksumParams(): ChecksumParams {
    return {
      version: this.requiredString('version'),
      pkgarch: this.requiredString('pkgarch'),
      checksum: this.requiredString('checksum'),
    };
  }

  requiredString(name: string): string {
    const value = this.#params[name];
    if (value === undefined || value === null) this.fail(`missing parameter "${name}"`);
    if (typeof value !== 'string') this.fail(`parameter "${name}" must be a string, got ${describe(value)}`);
    if (value.length === 0) this.fail(`parameter "${name}" must not be empty`);
    return value;
  }

  /** Export filters: null, absent or "" mean "no filter" (BitBake passes None). */
  filter(name: string): string | null {
    const value = this.#params[name];
    if (value === undefined || value === null || value === '') return null;
    if (typeof value !== 'string') this.fail(`parameter "${name}" must be a string or null, got ${describe(value)}`);
    return value;
  }

  optionalBoolean(name: string): boolean | undefined {
    const value = this.#params[name];
    if (value === undefined) return undefined;
    // Python clients send real booleans; 0/1 are tolerated since Python treats them alike.
    if (value === 0 || value === 1) return value === 1;
    if (typeof value !== 'boolean') this.fail(`parameter "${name}" must be true or false, got ${describe(value)}`);
    return value;
  }

  /** A revision sent either as a string ("3", "0.3") or, by legacy clients, as an integer. */
  revisionValue(name: string): { value: string; wasNumber: boolean } {
    const value = this.#params[name];
    if (value === undefined || value === null) this.fail(`missing parameter "${name}"`);
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || value < 0) {
        this.fail(`parameter "${name}" must be a non-negative integer or a revision string, got ${describe(value)}`);
      }
      return { value: String(value), wasNumber: true };
    }
    if (typeof value !== 'string') {
      this.fail(`parameter "${name}" must be a revision string such as "3" or "1.2", got ${describe(value)}`);
    }
    return { value, wasNumber: false };
  }

  fail(problem: string): never {
    throw new ProtocolError('INVALID_PARAMS', `${this.#method}: ${problem}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
