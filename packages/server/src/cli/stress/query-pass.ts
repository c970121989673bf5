import type { ServerAddress } from '@prserv/client';
import { isInvokeError } from './load-phase.js';
import { RpcLink, type RpcLinkHandler } from './rpc-link.js';
import type { StressProtocol } from './stress-settings.js';

/** Answers of a {@link runQueryPass}, by request index; `undefined` where every attempt failed. */
export interface QueryPassResult {
  readonly answers: unknown[];
  /** Failed attempts (each retried up to {@link QUERY_ATTEMPTS} times) and failed connects. */
  readonly errors: number;
  readonly firstError: string | null;
}

/** Attempts per request before it is given up. */
const QUERY_ATTEMPTS = 3;
/** A connection that fails this many times in a row without an answer gives up. */
const CONNECT_ATTEMPTS = 3;
const RETRY_DELAY_MS = 50;
/** A request unanswered this long drops its connection (and counts as failed): a stuck server must not hang the run. */
export const QUERY_TIMEOUT_MS = 30_000;

interface QueryWorker {
  readonly index: number;
  readonly address: ServerAddress;
  link: RpcLink | undefined;
  /** Request in flight, or -1. */
  request: number;
  /** Runs while a request is in flight. */
  timer: NodeJS.Timeout | undefined;
  failuresInARow: number;
  done: boolean;
}

/**
 * Sends each of `lines` once over up to `connections` connections (strictly one request at a
 * time on each, like the load) and collects the answers. For the small passes around the load
 * (baseline and read-back), so it retries instead of recording times.
 */
export function runQueryPass(
  addresses: readonly ServerAddress[],
  connections: number,
  lines: readonly string[],
  protocol: StressProtocol,
  onAnswered?: (answered: number, errors: number) => void,
  timeoutMs = QUERY_TIMEOUT_MS,
): Promise<QueryPassResult> {
  return new Promise((resolve) => new QueryPass(addresses, connections, lines, protocol, resolve, onAnswered, timeoutMs).start());
}

class QueryPass implements RpcLinkHandler {
  readonly #lines: readonly string[];
  readonly #answers: unknown[];
  readonly #attempts: Uint8Array;
  readonly #retry: number[] = [];
  readonly #workers: QueryWorker[] = [];
  readonly #resolve: (result: QueryPassResult) => void;
  readonly #onAnswered: ((answered: number, errors: number) => void) | undefined;
  #cursor = 0;
  #answered = 0;
  #errors = 0;
  #firstError: string | null = null;
  #finished = 0;
  readonly #protocol: StressProtocol;
  readonly #timeoutMs: number;

  constructor(
    addresses: readonly ServerAddress[],
    connections: number,
    lines: readonly string[],
    protocol: StressProtocol,
    resolve: (result: QueryPassResult) => void,
    onAnswered: ((answered: number, errors: number) => void) | undefined,
    timeoutMs: number,
  ) {
    this.#timeoutMs = timeoutMs;
    this.#lines = lines;
    this.#protocol = protocol;
    this.#answers = new Array<unknown>(lines.length).fill(undefined);
    this.#attempts = new Uint8Array(lines.length);
    this.#resolve = resolve;
    this.#onAnswered = onAnswered;
    const count = Math.max(1, Math.min(connections, lines.length));
    for (let index = 0; index < count; index += 1) {
      this.#workers.push({ index, address: addresses[index % addresses.length]!, link: undefined, request: -1, timer: undefined, failuresInARow: 0, done: false });
    }
  }

  start(): void {
    if (this.#lines.length === 0) {
      this.#resolve({ answers: [], errors: 0, firstError: null });
      return;
    }
    for (const worker of this.#workers) this.#open(worker);
  }

  linkConnected(link: RpcLink): void {
    this.#next(this.#workers[link.slot]!);
  }

  linkMessage(link: RpcLink, message: unknown): void {
    const worker = this.#workers[link.slot]!;
    const request = worker.request;
    if (request < 0) return;
    worker.request = -1;
    clearTimeout(worker.timer);
    if (isInvokeError(message)) {
      this.#failed(request, `invoke-error: ${message['invoke-error'].message}`);
      // The server closes after an invoke-error; a new connection takes over.
      link.close();
      return;
    }
    worker.failuresInARow = 0;
    this.#answers[request] = message;
    this.#answered += 1;
    this.#onAnswered?.(this.#answered, this.#errors);
    this.#next(worker);
  }

  linkClosed(link: RpcLink, error: Error | undefined, connected: boolean): void {
    const worker = this.#workers[link.slot]!;
    worker.link = undefined;
    clearTimeout(worker.timer);
    if (worker.done) return;
    if (worker.request >= 0) {
      this.#failed(worker.request, `read-back connection dropped${error ? `: ${error.message}` : ''}`);
      worker.request = -1;
      worker.failuresInARow += 1;
    } else if (!connected) {
      this.#fail(`cannot connect to ${worker.address.host}:${worker.address.port}: ${error?.message ?? 'closed'}`);
      worker.failuresInARow += 1;
    }
    if (worker.failuresInARow >= CONNECT_ATTEMPTS || !this.#hasWork()) {
      this.#retire(worker);
      return;
    }
    setTimeout(() => this.#open(worker), RETRY_DELAY_MS);
  }

  #open(worker: QueryWorker): void {
    const link = new RpcLink(worker.address, this, this.#protocol);
    link.slot = worker.index;
    worker.link = link;
  }

  #hasWork(): boolean {
    return this.#retry.length > 0 || this.#cursor < this.#lines.length;
  }

  #next(worker: QueryWorker): void {
    const request = this.#retry.length > 0 ? this.#retry.pop()! : this.#cursor < this.#lines.length ? this.#cursor++ : -1;
    if (request < 0) {
      this.#retire(worker);
      return;
    }
    worker.request = request;
    this.#attempts[request] = this.#attempts[request]! + 1;
    const link = worker.link!;
    worker.timer = setTimeout(() => link.close(new Error(`no answer within ${this.#timeoutMs / 1000} s`)), this.#timeoutMs);
    link.send(this.#lines[request]!);
  }

  #failed(request: number, reason: string): void {
    this.#fail(reason);
    if (this.#attempts[request]! < QUERY_ATTEMPTS) this.#retry.push(request);
  }

  #fail(reason: string): void {
    this.#errors += 1;
    this.#firstError ??= reason;
  }

  #retire(worker: QueryWorker): void {
    if (worker.done) return;
    worker.done = true;
    worker.link?.close();
    this.#finished += 1;
    if (this.#finished === this.#workers.length) {
      this.#resolve({ answers: this.#answers, errors: this.#errors, firstError: this.#firstError });
    }
  }
}
