import { randomFillSync } from 'node:crypto';
import { RpcLink, type RpcLinkHandler } from './rpc-link.js';
import type { StressProgress, StressSettings } from './stress-settings.js';

/** What the load phase recorded, column by column (see `AnswerLog`). */
export interface LoadRecord {
  /** `version/pkgarch` of each package index. */
  readonly packageNames: string[];
  readonly checksumNames: string[];
  readonly checksumPackage: number[];
  readonly count: number;
  readonly checksumOf: Int32Array;
  readonly fresh: Uint8Array;
  readonly values: string[];
  readonly startedAt: Float64Array;
  readonly endedAt: Float64Array;
  readonly failedChecksums: Set<number>;
  readonly errors: number;
  /** The first error seen, for the operator. */
  readonly firstError: string | null;
  /** Answers that are not what the protocol asks for (see `AnswerLog.malformed`). */
  readonly malformed: number;
  readonly firstMalformed: string | null;
  /** From the first requests sent to the last connection done, in ms. */
  readonly durationMs: number;
}

/** After the duration cap, requests in flight get this long before their connections are dropped. */
const STRAGGLER_GRACE_MS = 10_000;
const FIRST_BACKOFF_MS = 20;
const MAX_BACKOFF_MS = 1_000;
const PROGRESS_INTERVAL_MS = 250;
/** Random bytes drawn at once for new checksums (32 bytes each). */
const RANDOM_POOL_BYTES = 32 * 1024;
const REVISION = /^\d+(?:\.\d+)*$/;

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
/** We closed the link on purpose (after an invoke-error) and want a new one. */
const DROPPING = 3;
const WAITING = 4;
const DONE = 5;

/** One of the N strictly sequential connections. */
interface Worker {
  readonly index: number;
  link: RpcLink;
  state: number;
  everConnected: boolean;
  /** Checksum id of the request in flight, or -1. */
  checksum: number;
  fresh: number;
  startedAt: number;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The load: N connections, each sending get-pr requests one at a time (as BitBake does) until
 * the request budget or the duration cap is spent. Built for throughput: request lines are
 * concatenated from prebuilt pieces, answers go into preallocated columns, and the per-request
 * path is plain method calls (no closure or promise per request).
 */
export class LoadPhase implements RpcLinkHandler {
  readonly #settings: StressSettings;
  readonly #onProgress: ((progress: StressProgress) => void) | undefined;
  readonly #packageCount: number;
  readonly #newRatio: number;
  readonly #requests: number;
  /** Per package: the request line up to the opening quote of the checksum. */
  readonly #linePrefix: string[];
  readonly #lineSuffix: string;
  /** Per package: ids of the checksums asked so far. */
  readonly #known: number[][];
  readonly #packageNames: string[];
  readonly #checksumNames: string[] = [];
  readonly #checksumPackage: number[] = [];
  readonly #random = Buffer.allocUnsafe(RANDOM_POOL_BYTES);
  #randomOffset = RANDOM_POOL_BYTES;

  readonly #checksumOf: Int32Array;
  readonly #fresh: Uint8Array;
  readonly #values: string[] = [];
  readonly #startedAt: Float64Array;
  readonly #endedAt: Float64Array;
  readonly #failedChecksums = new Set<number>();
  #answered = 0;
  #issued = 0;
  #errors = 0;
  #firstError: string | null = null;
  #malformed = 0;
  #firstMalformed: string | null = null;

  readonly #workers: Worker[] = [];
  #settingUp = 0;
  #running = false;
  #stopping = false;
  #done = 0;
  #loadStart = 0;
  #deadline = 0;
  #timers: NodeJS.Timeout[] = [];
  #resolve: ((record: LoadRecord) => void) | undefined;

  constructor(settings: StressSettings, onProgress?: (progress: StressProgress) => void) {
    this.#settings = settings;
    this.#onProgress = onProgress;
    this.#packageCount = settings.packages;
    this.#newRatio = settings.newRatio;
    this.#requests = settings.requests;
    this.#packageNames = [];
    this.#linePrefix = [];
    this.#known = [];
    // Names hold no quote or backslash (checked in settings): the JSON is built by concatenation,
    // spaced as Python's json.dumps spaces BitBake's own requests.
    for (let pkg = 0; pkg < settings.packages; pkg += 1) {
      const version = `${settings.packagePrefix}-${pkg}`;
      this.#packageNames.push(`${version}/${settings.pkgarch}`);
      this.#linePrefix.push(`{"get-pr": {"version": "${version}", "pkgarch": "${settings.pkgarch}", "checksum": "`);
      this.#known.push([]);
    }
    this.#lineSuffix = settings.mode === 'legacy' ? '"}}\n' : `", "history": ${settings.mode === 'history'}}}\n`;
    this.#checksumOf = new Int32Array(settings.requests);
    this.#fresh = new Uint8Array(settings.requests);
    this.#startedAt = new Float64Array(settings.requests);
    this.#endedAt = new Float64Array(settings.requests);
  }

  /** Connects every worker, then runs the load; resolves once every connection is done. */
  run(): Promise<LoadRecord> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      const { connections, addresses } = this.#settings;
      this.#settingUp = connections;
      for (let index = 0; index < connections; index += 1) {
        const worker: Worker = {
          index,
          link: this.#connect(index, addresses[index % addresses.length]!),
          state: CONNECTING,
          everConnected: false,
          checksum: -1,
          fresh: 0,
          startedAt: 0,
          backoffMs: FIRST_BACKOFF_MS,
          timer: undefined,
        };
        this.#workers.push(worker);
      }
    });
  }

  linkConnected(link: RpcLink): void {
    const worker = this.#workers[link.slot]!;
    worker.state = IDLE;
    if (!worker.everConnected) {
      worker.everConnected = true;
      if (!this.#running) {
        this.#setupSettled();
        return;
      }
    }
    if (this.#running) this.#next(worker, performance.now());
  }

  linkMessage(link: RpcLink, message: unknown): void {
    const end = performance.now();
    const worker = this.#workers[link.slot]!;
    const checksum = worker.checksum;
    if (worker.state !== BUSY) {
      this.#fail(`unexpected message ${describeMessage(message)}`);
      worker.state = DROPPING;
      link.close();
      return;
    }
    const value = typeof message === 'object' && message !== null ? (message as { value?: unknown }).value : undefined;
    const text = typeof value === 'string' ? value : typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? String(value) : undefined;
    if (text === undefined || !REVISION.test(text)) {
      // An invoke-error (after which the server closes: a failed request), or an answer that is
      // no PR (a broken server: the request failed, and the answer fails well-formed).
      if (isInvokeError(message)) {
        this.#failRequest(worker, `invoke-error: ${message['invoke-error'].message}`);
      } else {
        this.#noteMalformed(`get-pr answered ${describeMessage(message)}, which holds no PR`);
        this.#failRequest(worker, `unexpected answer ${describeMessage(message)}`);
      }
      worker.state = DROPPING;
      link.close();
      return;
    }
    // A PR is a string, but a legacy client's plain PR an integer (docs/protocol.md §3.3).
    const legacy = this.#settings.mode === 'legacy';
    if (legacy ? typeof value === 'string' && !text.includes('.') : typeof value !== 'string') {
      this.#noteMalformed(`get-pr answered ${describeMessage(message)}: ${legacy ? 'a legacy request takes a plain PR as an integer' : 'a PR is a string'}`);
    }
    const slot = this.#answered;
    this.#answered = slot + 1;
    this.#checksumOf[slot] = checksum;
    this.#fresh[slot] = worker.fresh;
    this.#startedAt[slot] = worker.startedAt;
    this.#endedAt[slot] = end;
    this.#values.push(text);
    worker.checksum = -1;
    worker.state = IDLE;
    worker.backoffMs = FIRST_BACKOFF_MS;
    this.#next(worker, end);
  }

  linkClosed(link: RpcLink, error: Error | undefined, connected: boolean): void {
    const worker = this.#workers[link.slot]!;
    if (worker.link !== link || worker.state === DONE) return;
    const state = worker.state;
    if (state === BUSY) {
      this.#failRequest(worker, `connection to ${address(link)} dropped with a request in flight${error ? `: ${error.message}` : ''}`);
    } else if (state !== DROPPING) {
      this.#fail(connected ? `connection to ${address(link)} closed${error ? `: ${error.message}` : ''}` : `cannot connect to ${address(link)}: ${error?.message ?? 'closed'}`);
    }
    if (!worker.everConnected && !this.#running) {
      // A server that cannot be reached at the start is not waited for.
      this.#finish(worker);
      this.#setupSettled();
      return;
    }
    if (this.#stopping || this.#issued >= this.#requests) {
      this.#finish(worker);
      return;
    }
    worker.state = WAITING;
    const delay = state === DROPPING ? 0 : worker.backoffMs;
    if (state !== DROPPING) worker.backoffMs = Math.min(worker.backoffMs * 2, MAX_BACKOFF_MS);
    worker.timer = setTimeout(() => {
      worker.timer = undefined;
      if (this.#stopping) this.#finish(worker);
      else this.#open(worker, link.address);
    }, delay);
  }

  /** Sends the next request, or retires the worker when the budget or the time is spent. */
  #next(worker: Worker, now: number): void {
    if (this.#issued >= this.#requests || now >= this.#deadline || this.#stopping) {
      this.#finish(worker);
      return;
    }
    const pkg = (Math.random() * this.#packageCount) | 0;
    const known = this.#known[pkg]!;
    let checksum: number;
    if (known.length === 0 || Math.random() < this.#newRatio) {
      checksum = this.#newChecksum(pkg);
      known.push(checksum);
      worker.fresh = 1;
    } else {
      checksum = known[(Math.random() * known.length) | 0]!;
      worker.fresh = 0;
    }
    worker.checksum = checksum;
    worker.state = BUSY;
    this.#issued += 1;
    worker.startedAt = performance.now();
    worker.link.send(this.#linePrefix[pkg]! + this.#checksumNames[checksum]! + this.#lineSuffix);
  }

  /** A new checksum: 64 random hex digits, like the sha256 signatures BitBake sends. */
  #newChecksum(pkg: number): number {
    if (this.#randomOffset + 32 > RANDOM_POOL_BYTES) {
      randomFillSync(this.#random);
      this.#randomOffset = 0;
    }
    const text = this.#random.toString('hex', this.#randomOffset, this.#randomOffset + 32);
    this.#randomOffset += 32;
    this.#checksumPackage.push(pkg);
    return this.#checksumNames.push(text) - 1;
  }

  #open(worker: Worker, target: RpcLink['address']): void {
    worker.state = CONNECTING;
    worker.link = this.#connect(worker.index, target);
  }

  #connect(index: number, target: RpcLink['address']): RpcLink {
    const link = new RpcLink(target, this, this.#settings.protocol);
    // Set before any event: the link reports to its worker by this index.
    link.slot = index;
    return link;
  }

  #setupSettled(): void {
    this.#settingUp -= 1;
    if (this.#settingUp > 0) return;
    this.#running = true;
    this.#loadStart = performance.now();
    this.#deadline = this.#loadStart + this.#settings.durationS * 1000;
    const untilDeadline = this.#settings.durationS * 1000;
    this.#timers.push(
      setTimeout(() => this.#stop(), untilDeadline),
      setTimeout(() => {
        for (const worker of this.#workers) if (worker.state !== DONE) worker.link.close(new Error('no answer after the duration cap'));
      }, untilDeadline + STRAGGLER_GRACE_MS),
    );
    if (this.#onProgress) {
      const onProgress = this.#onProgress;
      this.#timers.push(
        setInterval(
          () =>
            onProgress({
              phase: 'load',
              answered: this.#answered,
              total: this.#requests,
              errors: this.#errors,
              elapsedMs: performance.now() - this.#loadStart,
            }),
          PROGRESS_INTERVAL_MS,
        ),
      );
    }
    const now = performance.now();
    for (const worker of this.#workers) if (worker.state === IDLE) this.#next(worker, now);
    if (this.#done === this.#workers.length) this.#complete();
  }

  /** The duration cap: workers waiting to reconnect stop; requests in flight may still finish. */
  #stop(): void {
    this.#stopping = true;
    for (const worker of this.#workers) {
      if (worker.state === WAITING) {
        clearTimeout(worker.timer);
        this.#finish(worker);
      }
    }
  }

  #finish(worker: Worker): void {
    if (worker.state === DONE) return;
    const wasOpen = worker.state === IDLE || worker.state === BUSY;
    worker.state = DONE;
    if (wasOpen) worker.link.close();
    this.#done += 1;
    if (this.#done === this.#workers.length && this.#running) this.#complete();
  }

  #complete(): void {
    if (!this.#resolve) return;
    const durationMs = performance.now() - this.#loadStart;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    const resolve = this.#resolve;
    this.#resolve = undefined;
    resolve({
      packageNames: this.#packageNames,
      checksumNames: this.#checksumNames,
      checksumPackage: this.#checksumPackage,
      count: this.#answered,
      checksumOf: this.#checksumOf,
      fresh: this.#fresh,
      values: this.#values,
      startedAt: this.#startedAt,
      endedAt: this.#endedAt,
      failedChecksums: this.#failedChecksums,
      errors: this.#errors,
      firstError: this.#firstError,
      malformed: this.#malformed,
      firstMalformed: this.#firstMalformed,
      durationMs,
    });
  }

  #failRequest(worker: Worker, reason: string): void {
    this.#failedChecksums.add(worker.checksum);
    worker.checksum = -1;
    this.#fail(reason);
  }

  #fail(reason: string): void {
    this.#errors += 1;
    this.#firstError ??= reason;
  }

  #noteMalformed(reason: string): void {
    this.#malformed += 1;
    this.#firstMalformed ??= reason;
  }
}

/** True for BitBake's error answer, `{"invoke-error": {"message": "…"}}`. */
export function isInvokeError(message: unknown): message is { 'invoke-error': { message: string } } {
  if (typeof message !== 'object' || message === null) return false;
  const body = (message as Record<string, unknown>)['invoke-error'];
  return typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>).message === 'string';
}

/** A peer's message, cut short for an error line. */
function describeMessage(message: unknown): string {
  const text = JSON.stringify(message) ?? String(message);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function address(link: RpcLink): string {
  const { host, port } = link.address;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
