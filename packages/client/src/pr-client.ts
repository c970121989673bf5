import { type ExportMetainfo, fromWireRevision, MAX_TIMER_MS, type StatsAnswer } from '@prserv/core/protocol';
import { AsyncRpcConnection } from './asyncrpc-connection.js';
import { InvokeError, PrClientError } from './client-errors.js';
import { JsonRpcConnection } from './json-rpc-connection.js';
import type { SocketFactory } from './open-socket.js';
import { formatServerAddress, parseServerAddress, type ServerAddress } from './server-address.js';

/** Options of {@link createPrClient}. */
export interface PrClientOptions {
  /** `host:port`, `[v6]:port`, or an address object. */
  readonly address: string | ServerAddress;
  /**
   * Time allowed to open a connection, in ms, 1 to 2147483647 (Node's longest timer, about
   * 24.8 days); other values throw `INVALID_OPTION`. Default 10000.
   */
  readonly connectTimeoutMs?: number;
  /**
   * Time allowed for one answer, in ms, 1 to 2147483647 (Node's longest timer, about 24.8
   * days); other values throw `INVALID_OPTION`. Default 30000.
   */
  readonly requestTimeoutMs?: number;
  /**
   * How many times a request is sent again on a new connection after the connection failed,
   * as BitBake's client does (it tries 3 more times). Default 3. Invoke errors and timeouts are
   * never retried.
   */
  readonly retries?: number;
  /**
   * Pause before the first retry, doubled for each further one (up to 2147483647), in ms, 0 to
   * 2147483647 (Node's longest timer); other values throw `INVALID_OPTION`. Default 100.
   */
  readonly retryDelayMs?: number;
  /** Largest response accepted, in bytes (exports can be big). Default 256 MiB. */
  readonly maxMessageBytes?: number;
  /**
   * Speak as a legacy client (BitBake before 2.10): requests carry no `history` key, so the
   * server uses its default mode and answers integers. Default false.
   */
  readonly legacy?: boolean;
  /**
   * `asyncrpc` (default): BitBake's protocol, which BitBake's own server speaks too; one request
   * at a time per connection. `jsonrpc`: prserv's envelope (docs/protocol.md §11), with many
   * requests in flight on one connection; only prserv speaks it.
   */
  readonly protocol?: 'asyncrpc' | 'jsonrpc';
  /** Opens the transport; default a TCP socket. */
  readonly createSocket?: SocketFactory;
}

/** Per-call options. */
export interface CallOptions {
  readonly signal?: AbortSignal;
  /**
   * Overrides the client's request timeout for this call, in ms, 1 to 2147483647 (Node's
   * longest timer); other values reject with `INVALID_OPTION`.
   */
  readonly timeoutMs?: number;
}

/** A package: BitBake's `(version, pkgarch)`. */
export interface PackageArgs {
  readonly version: string;
  readonly pkgarch: string;
}

/** One checksum of a package, and the mode to answer in. */
export interface RevisionArgs extends PackageArgs {
  readonly checksum: string;
  /** History mode (a checksum keeps its first PR). Default false. Ignored by legacy servers. */
  readonly history?: boolean;
}

/** Arguments of {@link PrClient.importOne}. */
export interface ImportArgs extends PackageArgs {
  readonly checksum: string;
  readonly value: string;
}

/** Arguments of {@link PrClient.export}; absent filters match everything. */
export interface ExportArgs {
  readonly version?: string;
  readonly pkgarch?: string;
  readonly checksum?: string;
  /** Ask for the description of BitBake's table too. Default false. */
  readonly colinfo?: boolean;
  /** All rows (true) or only those at each package's maximum (false, default). */
  readonly history?: boolean;
}

/** One exported row, values as strings whatever the server generation. */
export interface ExportedRow {
  readonly version: string;
  readonly pkgarch: string;
  readonly checksum: string;
  readonly value: string;
}

/** What a prserv server reports for get-stats: requests since `since`, per method and `all`. */
export type ServerStats = StatsAnswer;

/** Arguments of {@link PrClient.history}. */
export interface HistoryArgs extends PackageArgs {
  /** Only this checksum's rows. Default: the whole package. */
  readonly checksum?: string;
}

/**
 * One stored row of a package and how it came to be stored (prserv only). Null fields are
 * unknown: rows stored before the server recorded provenance have only checksum and value.
 */
export interface HistoryEntry {
  readonly checksum: string;
  readonly value: string;
  /** When it was stored, by the database's clock: ISO 8601 UTC. */
  readonly storedAt: string | null;
  /** The address of the client that stored it (none for rows stored in-process or by a tool). */
  readonly storedBy: string | null;
  /**
   * How: `get-pr-history`, `get-pr-nohist` (with `-upstream` when a chained server extended
   * an upstream's numbering), `import-one`, `import-tool`.
   */
  readonly storedHow: string | null;
  /** The package's greatest PR just before; null for its first row. */
  readonly previousMax: string | null;
}

/** A freeze (`prserv freeze`), as its patterns. */
export interface FreezePatterns {
  readonly version: string;
  readonly pkgarch: string;
}

/** What get-pr would answer, as {@link PrClient.previewPr} reports it (prserv only). */
export interface PrPreview {
  /** get-pr's answer now; null when it would be refused (a frozen package that has no PR). */
  readonly value: string | null;
  /** True when get-pr would store a new PR (the package's PR would move). */
  readonly isNew: boolean;
  /** The package's greatest PR now, or null. */
  readonly packageMax: string | null;
  /** The freeze holding the package, or null. */
  readonly frozen: FreezePatterns | null;
}

/**
 * A tuple's fate in {@link PrClient.preflight}: `bump` get-pr would store a new PR; `stay` it
 * answers a stored one; `frozen` the package is frozen (its PR cannot move); `refused` it is
 * frozen and has no PR, so get-pr would fail.
 */
export type PreflightVerdict = 'bump' | 'stay' | 'frozen' | 'refused';

/** One tuple of a preflight, its preview and verdict. */
export interface PreflightEntry extends PrPreview {
  readonly version: string;
  readonly pkgarch: string;
  readonly checksum: string;
  readonly verdict: PreflightVerdict;
}

/** What {@link PrClient.preflight} returns: every tuple in the order given, and counts per verdict. */
export interface PreflightReport {
  readonly entries: PreflightEntry[];
  readonly counts: Readonly<Record<PreflightVerdict, number>>;
}

/** What {@link PrClient.export} returns. */
export interface ExportResult {
  /** `{}` without colinfo. */
  readonly metainfo: ExportMetainfo | Record<string, never>;
  readonly rows: ExportedRow[];
}

/**
 * Creates a client for a PR server: prserv, or BitBake's own `bitbake-prserv` of either
 * generation. It connects on first use and keeps one connection.
 */
export function createPrClient(options: PrClientOptions): PrClient {
  return new PrClient(options);
}

/** Typed async client for the BitBake PR protocol. Revisions are always strings. */
export class PrClient implements AsyncDisposable {
  readonly address: ServerAddress;
  readonly #options: Required<Omit<PrClientOptions, 'address' | 'createSocket'>> & Pick<PrClientOptions, 'createSocket'>;
  #connection: Promise<Connection> | undefined;
  #closed = false;

  constructor(options: PrClientOptions) {
    this.address = typeof options.address === 'string' ? parseServerAddress(options.address) : options.address;
    this.#options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      retries: options.retries ?? 3,
      retryDelayMs: options.retryDelayMs ?? 100,
      maxMessageBytes: options.maxMessageBytes ?? 256 * 1024 * 1024,
      legacy: options.legacy ?? false,
      protocol: options.protocol ?? 'asyncrpc',
      createSocket: options.createSocket,
    };
    checkTimer('connectTimeoutMs', this.#options.connectTimeoutMs, 1);
    checkTimer('requestTimeoutMs', this.#options.requestTimeoutMs, 1);
    checkTimer('retryDelayMs', this.#options.retryDelayMs, 0);
    if (this.#options.protocol !== 'asyncrpc' && this.#options.protocol !== 'jsonrpc') {
      throw new RangeError(`protocol must be "asyncrpc" or "jsonrpc", got ${JSON.stringify(options.protocol)}`);
    }
    if (this.#options.legacy && this.#options.protocol === 'jsonrpc') {
      throw new RangeError('legacy is a way of speaking asyncrpc; it does not go with protocol "jsonrpc"');
    }
  }

  /** True when the server answers. */
  async ping(options?: CallOptions): Promise<boolean> {
    const response = await this.#call('ping', {}, options);
    return response.alive === true;
  }

  /** True when the server is read-only. */
  async isReadonly(options?: CallOptions): Promise<boolean> {
    const response = await this.#call('is-readonly', {}, options);
    return response.readonly === true;
  }

  /** The PR for a checksum; the server allocates one if needed. */
  async getPr(args: RevisionArgs, options?: CallOptions): Promise<string> {
    const response = await this.#call('get-pr', this.#withHistory(checksumParams(args), args.history), options);
    const value = revision(response.value);
    if (value === null) throw new PrClientError('PROTOCOL', 'the server answered get-pr without a value');
    return value;
  }

  /**
   * The PRs of many checksums, in the order asked; the server allocates where needed. Over
   * `jsonrpc` they are pipelined on one connection; over `asyncrpc` they go one after another.
   */
  async getPrMany(list: readonly RevisionArgs[], options?: CallOptions): Promise<string[]> {
    return this.#inWindow(list, (args) => this.getPr(args, options));
  }

  /**
   * `ask` for every item, in order: pipelined over `jsonrpc`, one after another over `asyncrpc`.
   * The first failure stops it: nothing more is sent, and it rejects once the calls already sent
   * have settled, so nothing is stored after the caller has seen the error.
   */
  async #inWindow<I, O>(list: readonly I[], ask: (item: I) => Promise<O>): Promise<O[]> {
    const answers = new Array<O>(list.length);
    let next = 0;
    let failure: { readonly error: unknown } | undefined;
    // A bounded window: enough to keep the server busy, without queueing thousands of timers.
    const worker = async () => {
      while (next < list.length && failure === undefined) {
        const index = next++;
        try {
          answers[index] = await ask(list[index]!);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    const window = this.#options.protocol === 'jsonrpc' ? GET_PR_MANY_WINDOW : 1;
    await Promise.all(Array.from({ length: Math.min(window, list.length) }, worker));
    if (failure !== undefined) throw failure.error;
    return answers;
  }

  /** What get-pr would answer for a checksum, without storing anything (prserv only). */
  async previewPr(args: RevisionArgs, options?: CallOptions): Promise<PrPreview> {
    const response = await this.#call('preview-pr', { ...checksumParams(args), history: args.history ?? false }, options);
    if (typeof response.new !== 'boolean') throw new PrClientError('PROTOCOL', 'the server answered preview-pr without "new"');
    return {
      value: revision(response.value),
      isNew: response.new,
      packageMax: revision(response['package-max']),
      frozen: freezePatterns(response.frozen),
    };
  }

  /**
   * Asks what get-pr would answer for each tuple, storing nothing (prserv only): which packages
   * would get a new PR, which stay, which are frozen. Over `jsonrpc` the requests are pipelined
   * on one connection; over `asyncrpc` they go one after another.
   */
  async preflight(list: readonly RevisionArgs[], options?: CallOptions): Promise<PreflightReport> {
    const previews = await this.#inWindow(list, (args) => this.previewPr(args, options));
    const counts = { bump: 0, stay: 0, frozen: 0, refused: 0 };
    const entries = previews.map((preview, index) => {
      const { version, pkgarch, checksum } = list[index]!;
      const verdict: PreflightVerdict =
        preview.value === null ? 'refused' : preview.isNew ? 'bump' : preview.frozen ? 'frozen' : 'stay';
      counts[verdict] += 1;
      return { version, pkgarch, checksum, ...preview, verdict };
    });
    return { entries, counts };
  }

  /** The package's stored rows with when, how and from where each was stored (prserv only). */
  async history(args: HistoryArgs, options?: CallOptions): Promise<HistoryEntry[]> {
    const response = await this.#call(
      'package-history',
      { version: args.version, pkgarch: args.pkgarch, checksum: args.checksum ?? null },
      options,
    );
    if (!Array.isArray(response.revisions)) throw new PrClientError('PROTOCOL', 'the server answered package-history without revisions');
    return response.revisions.map((row: Record<string, unknown>) => ({
      checksum: String(row.checksum),
      value: revision(row.value) ?? '',
      storedAt: optionalText(row['stored-at']),
      storedBy: optionalText(row['stored-by']),
      storedHow: optionalText(row['stored-how']),
      previousMax: revision(row['previous-max'] ?? null),
    }));
  }

  /** Request counts and latency since the server started or was last reset (prserv only). */
  async stats(options?: CallOptions): Promise<ServerStats> {
    return (await this.#call('get-stats', {}, options)) as unknown as ServerStats;
  }

  /** Starts the server's counts afresh; returns those until now (prserv only). */
  async resetStats(options?: CallOptions): Promise<ServerStats> {
    return (await this.#call('reset-stats', {}, options)) as unknown as ServerStats;
  }

  /** The PR the server holds for a checksum, or null; nothing is allocated. */
  async testPr(args: RevisionArgs, options?: CallOptions): Promise<string | null> {
    const response = await this.#call('test-pr', this.#withHistory(checksumParams(args), args.history), options);
    return revision(response.value);
  }

  /** True when the server knows the package. */
  async testPackage(args: PackageArgs, options?: CallOptions): Promise<boolean> {
    const response = await this.#call('test-package', { version: args.version, pkgarch: args.pkgarch }, options);
    return response.value === true;
  }

  /** The greatest PR of a package, or null. */
  async maxPackagePr(args: PackageArgs, options?: CallOptions): Promise<string | null> {
    const response = await this.#call('max-package-pr', { version: args.version, pkgarch: args.pkgarch }, options);
    return revision(response.value);
  }

  /** Stores one row; returns the value the server keeps, or null from a read-only server. */
  async importOne(args: ImportArgs, options?: CallOptions): Promise<string | null> {
    const response = await this.#call(
      'import-one',
      { ...checksumParams(args), value: this.#options.legacy && /^\d+$/.test(args.value) ? Number(args.value) : args.value },
      options,
    );
    return revision(response.value);
  }

  /** Exports stored rows. */
  async export(args: ExportArgs = {}, options?: CallOptions): Promise<ExportResult> {
    const params = {
      version: args.version ?? null,
      pkgarch: args.pkgarch ?? null,
      checksum: args.checksum ?? null,
      colinfo: args.colinfo ?? false,
    };
    const response = await this.#call('export', this.#withHistory(params, args.history), options);
    const data = response.datainfo;
    if (!Array.isArray(data)) throw new PrClientError('PROTOCOL', 'the server answered export without datainfo');
    const rows = data.map((row: Record<string, unknown>) => ({
      version: String(row.version),
      pkgarch: String(row.pkgarch),
      checksum: String(row.checksum),
      value: revision(row.value) ?? '',
    }));
    const metainfo = (response.metainfo ?? {}) as ExportResult['metainfo'];
    return { metainfo, rows };
  }

  /** Closes the connection; further calls fail with `CLOSED`. */
  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) (await connection.catch(() => undefined))?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #withHistory(params: Record<string, unknown>, history: boolean | undefined): Record<string, unknown> {
    return this.#options.legacy ? params : { ...params, history: history ?? false };
  }

  async #call(method: string, params: Record<string, unknown>, options: CallOptions = {}): Promise<Record<string, unknown>> {
    if (options.timeoutMs !== undefined) checkTimer('timeoutMs', options.timeoutMs, 1);
    for (let attempt = 0; ; attempt += 1) {
      if (this.#closed) throw new PrClientError('CLOSED', 'the client is closed');
      try {
        const connection = await this.#connect(options.signal);
        const timing = { timeoutMs: options.timeoutMs ?? this.#options.requestTimeoutMs, signal: options.signal };
        if (connection instanceof JsonRpcConnection) {
          return this.#unwrap(method, await connection.call(method, params, timing));
        }
        return this.#unwrap(method, await connection.request({ [method]: params }, timing), connection);
      } catch (error) {
        const retriable = error instanceof PrClientError && (error.code === 'CONNECT_FAILED' || error.code === 'CONNECTION_LOST');
        if (!retriable || attempt >= this.#options.retries) throw error;
        // Capped: doubled often enough, the pause would pass Node's longest timer and fire at once.
        await delay(Math.min(this.#options.retryDelayMs * 2 ** attempt, MAX_TIMER_MS), options.signal);
      }
    }
  }

  #unwrap(method: string, response: unknown, connection?: AsyncRpcConnection): Record<string, unknown> {
    // BitBake's server (and ours) answers a bare null when import-one stored nothing (read-only).
    if (response === null && method === 'import-one') return { value: null };
    if (typeof response !== 'object' || response === null || Array.isArray(response)) {
      throw new PrClientError('PROTOCOL', `the server answered ${method} with ${JSON.stringify(response)}`);
    }
    const record = response as Record<string, unknown>;
    const invoke = record['invoke-error'];
    if (invoke !== undefined) {
      // The server closes the connection after an invoke-error; do not reuse it.
      connection?.discard('the server closed the connection after refusing another request');
      const text = typeof invoke === 'object' && invoke !== null ? (invoke as { message?: unknown }).message : invoke;
      throw new InvokeError(typeof text === 'string' ? text : JSON.stringify(text));
    }
    return record;
  }

  /**
   * The open connection, or a new one. Concurrent callers share one connection attempt: only the
   * first to find the connection dead replaces it, the others use the replacement.
   */
  async #connect(signal: AbortSignal | undefined): Promise<Connection> {
    for (;;) {
      const current = this.#connection ?? this.#reconnect();
      // One caller's abort must not fail the attempt the others share: each races its own signal.
      const connection = await abortable(current, signal); // a failed attempt is already forgotten
      if (!connection.closed) return connection;
      if (this.#connection === current) this.#reconnect();
    }
  }

  #reconnect(): Promise<Connection> {
    const connectionOptions = {
      connectTimeoutMs: this.#options.connectTimeoutMs,
      maxMessageBytes: this.#options.maxMessageBytes,
      createSocket: this.#options.createSocket,
    };
    const opening: Promise<Connection> =
      this.#options.protocol === 'jsonrpc'
        ? JsonRpcConnection.open(this.address, connectionOptions)
        : AsyncRpcConnection.open(this.address, connectionOptions);
    this.#connection = opening;
    // A failed attempt fails the calls waiting on it, and the next call tries afresh.
    opening.catch(() => {
      if (this.#connection === opening) this.#connection = undefined;
    });
    return opening;
  }

  /** `host:port` of the server. */
  toString(): string {
    return formatServerAddress(this.address);
  }
}

type Connection = AsyncRpcConnection | JsonRpcConnection;

/** Refuses a timer option that is not a number of ms from `min` to {@link MAX_TIMER_MS}. */
function checkTimer(name: string, value: number, min: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > MAX_TIMER_MS) {
    throw new PrClientError('INVALID_OPTION', `${name} must be ${min} to ${MAX_TIMER_MS} ms (Node's longest timer), got ${String(value)}`);
  }
}

/** Requests {@link PrClient.getPrMany} keeps in flight over `jsonrpc`. */
const GET_PR_MANY_WINDOW = 256;

function checksumParams(args: PackageArgs & { checksum: string }): Record<string, unknown> {
  return { version: args.version, pkgarch: args.pkgarch, checksum: args.checksum };
}

function optionalText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function freezePatterns(value: unknown): FreezePatterns | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object') throw new PrClientError('PROTOCOL', `the server answered an invalid freeze ${JSON.stringify(value)}`);
  const { version, pkgarch } = value as Record<string, unknown>;
  return { version: String(version), pkgarch: String(pkgarch) };
}

function revision(value: unknown): string | null {
  try {
    return fromWireRevision(value);
  } catch (cause) {
    throw new PrClientError('PROTOCOL', `the server answered an invalid revision ${JSON.stringify(value)}`, { cause });
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new PrClientError('ABORTED', 'request aborted', { cause: signal.reason }));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new PrClientError('ABORTED', 'request aborted', { cause: signal.reason }));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PrClientError('ABORTED', 'request aborted', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
