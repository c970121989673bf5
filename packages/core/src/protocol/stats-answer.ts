/** Request counts and a latency summary of one method (or of all), as `get-stats` answers them. */
export interface MethodStats {
  readonly count: number;
  readonly errors: number;
  readonly 'mean-ms': number;
  readonly 'max-ms': number;
  /** Percentiles are the upper bound of the server's latency bucket they fall in. */
  readonly 'p50-ms': number;
  readonly 'p90-ms': number;
  readonly 'p99-ms': number;
}

/** What a prserv server answers to `get-stats` and `reset-stats`: requests since `since`, per method and `all`. */
export interface StatsAnswer {
  readonly since: string;
  readonly 'elapsed-seconds': number;
  readonly connections: number;
  readonly requests: Readonly<Record<string, MethodStats>>;
}
