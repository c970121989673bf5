import { randomBytes } from 'node:crypto';
import { parseServerAddress, type ServerAddress } from '@prserv/client';
import { ConfigError } from '../errors.js';
import { formatCount } from './format-count.js';

/**
 * How the stress requests ask: `history` and `nohist` as modern BitBake (2.10+) with
 * `"history": true` / `false`; `legacy` as BitBake before 2.10, without `history` (integer
 * answers, served in the server's default mode).
 */
const STRESS_MODES = ['history', 'nohist', 'legacy'] as const;
/** One of {@link STRESS_MODES}. */
export type StressMode = (typeof STRESS_MODES)[number];

/** The protocols the stress tool can speak: BitBake's asyncrpc, or prserv's JSON-RPC envelope. */
export const STRESS_PROTOCOLS = ['asyncrpc', 'jsonrpc'] as const;
/** One of {@link STRESS_PROTOCOLS}. */
export type StressProtocol = (typeof STRESS_PROTOCOLS)[number];

/** Defaults of `prserv client stress`, also shown by `--help`. */
export const STRESS_DEFAULTS = {
  connections: 8,
  requests: 10_000,
  durationS: 60,
  newRatio: 0.1,
  packages: 100,
  mode: 'history' as StressMode,
  protocol: 'asyncrpc' as StressProtocol,
  pkgarch: 'core2-64',
} as const;

/** Bounds of the numeric settings (the answer log is preallocated: requests bound memory). */
const STRESS_LIMITS = {
  connections: 4096,
  requests: 10_000_000,
  durationS: 86_400,
  packages: 1_000_000,
  nameLength: 200,
} as const;

/** Progress of a run, reported about four times a second while it lasts. */
export interface StressProgress {
  readonly phase: 'load' | 'read-back';
  /** Answered requests so far (load phase), or read-back requests answered. */
  readonly answered: number;
  /** Requests the phase will make at most. */
  readonly total: number;
  readonly errors: number;
  /** Time since the phase started, in ms. */
  readonly elapsedMs: number;
}

/** Options of `runStress`; everything but `servers` has a default. */
export interface StressOptions {
  /** `HOST:PORT` of each server; connections are spread over them round-robin. */
  readonly servers: readonly string[];
  /** Concurrent connections, each strictly request/response. Default 8. */
  readonly connections?: number;
  /** Requests to send in all (the load stops at this or at the duration cap). Default 10000. */
  readonly requests?: number;
  /** Cap on the load's duration, in seconds. Default 60. */
  readonly durationS?: number;
  /** Probability that a request asks a brand-new checksum. Default 0.1. */
  readonly newRatio?: number;
  /** Number of packages the requests are spread over uniformly. Default 100. */
  readonly packages?: number;
  /** Request flavour. Default `history`. */
  readonly mode?: StressMode;
  /** `asyncrpc` (BitBake's, default) or `jsonrpc` (prserv only; not with mode `legacy`). */
  readonly protocol?: StressProtocol;
  /**
   * Package versions are `<prefix>-<k>`. Default: `stress-` and random hex, so that runs never
   * share packages. With a given prefix the packages may hold PRs from earlier runs; the run
   * reads their greatest PR first and expects its values above it.
   */
  readonly packagePrefix?: string;
  /** The pkgarch of every package. Default `core2-64`. */
  readonly pkgarch?: string;
  /** Called about four times a second during the run. Default: nothing. */
  readonly onProgress?: (progress: StressProgress) => void;
}

/** {@link StressOptions} checked and completed. */
export interface StressSettings {
  readonly servers: readonly string[];
  readonly addresses: readonly ServerAddress[];
  readonly connections: number;
  readonly requests: number;
  readonly durationS: number;
  readonly newRatio: number;
  readonly packages: number;
  readonly mode: StressMode;
  readonly protocol: StressProtocol;
  readonly packagePrefix: string;
  /** True when the prefix was given (packages may hold PRs from earlier runs). */
  readonly prefixGiven: boolean;
  readonly pkgarch: string;
}

/**
 * Checks options and fills in defaults.
 * @throws ConfigError naming the option (as its command-line flag) and what it accepts.
 */
export function resolveStressSettings(options: StressOptions): StressSettings {
  if (options.servers.length === 0) throw new ConfigError('stress needs at least one server address');
  const addresses = options.servers.map((server) => {
    try {
      return parseServerAddress(server);
    } catch {
      throw new ConfigError(`invalid --server ${JSON.stringify(server)}: expected HOST:PORT or [IPv6]:PORT`);
    }
  });
  const connections = checkInteger('--connections', options.connections ?? STRESS_DEFAULTS.connections, 1, STRESS_LIMITS.connections);
  const requests = checkInteger('--requests', options.requests ?? STRESS_DEFAULTS.requests, 1, STRESS_LIMITS.requests);
  const packages = checkInteger('--packages', options.packages ?? STRESS_DEFAULTS.packages, 1, STRESS_LIMITS.packages);
  const durationS = options.durationS ?? STRESS_DEFAULTS.durationS;
  if (!Number.isFinite(durationS) || durationS <= 0 || durationS > STRESS_LIMITS.durationS) {
    throw new ConfigError(`invalid --duration ${JSON.stringify(durationS)}: expected seconds above 0, at most ${STRESS_LIMITS.durationS}`);
  }
  const newRatio = options.newRatio ?? STRESS_DEFAULTS.newRatio;
  if (!Number.isFinite(newRatio) || newRatio < 0 || newRatio > 1) {
    throw new ConfigError(`invalid --new-ratio ${JSON.stringify(newRatio)}: expected a number from 0 to 1`);
  }
  const mode = options.mode ?? STRESS_DEFAULTS.mode;
  if (!(STRESS_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(`invalid --mode ${JSON.stringify(mode)}: expected one of ${STRESS_MODES.join(', ')}`);
  }
  const protocol = options.protocol ?? STRESS_DEFAULTS.protocol;
  if (!(STRESS_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new ConfigError(`invalid --protocol ${JSON.stringify(protocol)}: expected one of ${STRESS_PROTOCOLS.join(', ')}`);
  }
  if (protocol === 'jsonrpc' && mode === 'legacy') {
    throw new ConfigError('--mode legacy speaks as BitBake before 2.10, which only knows asyncrpc: it does not go with --protocol jsonrpc');
  }
  const prefixGiven = options.packagePrefix !== undefined;
  const packagePrefix = checkName('--package-prefix', options.packagePrefix ?? `stress-${randomBytes(4).toString('hex')}`);
  const pkgarch = checkName('--pkgarch', options.pkgarch ?? STRESS_DEFAULTS.pkgarch);
  return {
    servers: [...options.servers],
    addresses,
    connections,
    requests,
    durationS,
    newRatio,
    packages,
    mode,
    protocol,
    packagePrefix,
    prefixGiven,
    pkgarch,
  };
}

function checkInteger(flag: string, value: number, lowest: number, highest: number): number {
  if (!Number.isSafeInteger(value) || value < lowest || value > highest) {
    throw new ConfigError(`invalid ${flag} ${JSON.stringify(value)}: expected an integer from ${lowest} to ${formatCount(highest)}`);
  }
  return value;
}

/** Versions and pkgarchs travel inside hand-built JSON lines: printable ASCII without quotes or backslashes. */
function checkName(flag: string, value: string): string {
  if (value.length === 0 || value.length > STRESS_LIMITS.nameLength || !/^[\x21-\x7e]+$/.test(value) || /["\\]/.test(value)) {
    throw new ConfigError(
      `invalid ${flag} ${JSON.stringify(value)}: expected 1 to ${STRESS_LIMITS.nameLength} printable ASCII characters without spaces, quotes or backslashes`,
    );
  }
  return value;
}
