import type { MethodStats, StatsAnswer } from '@prserv/core';

/** The protocols a connection may speak. */
export type WireProtocol = 'asyncrpc' | 'jsonrpc';

/** How a request ended: answered, or answered with an error. */
export type RequestOutcome = 'ok' | 'error';

/** One answered request, as {@link ServerStats} and metrics see it. */
export interface RequestRecord {
  readonly method: string;
  readonly protocol: WireProtocol;
  readonly outcome: RequestOutcome;
  readonly seconds: number;
  /** The stable code of the error answered, for outcome `error`. */
  readonly errorCode?: string;
}

/** Upper bounds of the latency buckets, in seconds: from 0.1 ms to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

class MethodCounters {
  count = 0;
  errors = 0;
  totalSeconds = 0;
  maxSeconds = 0;
  /** Requests per bucket of {@link LATENCY_BUCKETS_SECONDS}; the last counts those above 10 s. */
  readonly buckets = new Array<number>(LATENCY_BUCKETS_SECONDS.length + 1).fill(0);

  add(record: RequestRecord): void {
    this.count += 1;
    if (record.outcome === 'error') this.errors += 1;
    this.totalSeconds += record.seconds;
    if (record.seconds > this.maxSeconds) this.maxSeconds = record.seconds;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_SECONDS.length && record.seconds > LATENCY_BUCKETS_SECONDS[bucket]!) bucket += 1;
    this.buckets[bucket]! += 1;
  }

  summary(): MethodStats {
    return {
      count: this.count,
      errors: this.errors,
      'mean-ms': this.count === 0 ? 0 : round((this.totalSeconds / this.count) * 1000),
      'max-ms': round(this.maxSeconds * 1000),
      'p50-ms': this.#percentile(0.5),
      'p90-ms': this.#percentile(0.9),
      'p99-ms': this.#percentile(0.99),
    };
  }

  #percentile(fraction: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(this.count * fraction);
    let seen = 0;
    for (let bucket = 0; bucket < this.buckets.length; bucket += 1) {
      seen += this.buckets[bucket]!;
      if (seen >= rank) return round((LATENCY_BUCKETS_SECONDS[bucket] ?? this.maxSeconds) * 1000);
    }
    return round(this.maxSeconds * 1000);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Requests answered since the server started or since the last `reset-stats`, per method and
 * overall, in the spirit of BitBake's hash server `get-stats`. Listeners (metrics) see every record.
 */
export class ServerStats {
  #since = new Date();
  #methods = new Map<string, MethodCounters>();
  #all = new MethodCounters();
  readonly #listeners: ((record: RequestRecord) => void)[] = [];
  readonly #connections: () => number;

  constructor(connections: () => number) {
    this.#connections = connections;
  }

  /** Calls `listener` with every request recorded from now on. */
  onRecord(listener: (record: RequestRecord) => void): void {
    this.#listeners.push(listener);
  }

  /** Records a request answered now that was read at `startedMs` (`performance.now()`). */
  answered(method: string, protocol: WireProtocol, startedMs: number, errorCode: string | undefined): void {
    this.record({
      method,
      protocol,
      outcome: errorCode === undefined ? 'ok' : 'error',
      errorCode,
      seconds: (performance.now() - startedMs) / 1000,
    });
  }

  record(record: RequestRecord): void {
    let counters = this.#methods.get(record.method);
    if (!counters) {
      counters = new MethodCounters();
      this.#methods.set(record.method, counters);
    }
    counters.add(record);
    this.#all.add(record);
    for (const listener of this.#listeners) listener(record);
  }

  snapshot(): StatsAnswer {
    const requests: Record<string, MethodStats> = { all: this.#all.summary() };
    for (const [method, counters] of [...this.#methods].sort(([a], [b]) => a.localeCompare(b))) {
      requests[method] = counters.summary();
    }
    return {
      since: this.#since.toISOString(),
      'elapsed-seconds': Math.round((Date.now() - this.#since.getTime()) / 1000),
      connections: this.#connections(),
      requests,
    };
  }

  /** Starts counting afresh; returns what was counted until now. */
  reset(): StatsAnswer {
    const previous = this.snapshot();
    this.#since = new Date();
    this.#methods = new Map();
    this.#all = new MethodCounters();
    return previous;
  }
}
