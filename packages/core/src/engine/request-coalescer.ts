import { PrStoreError } from '../errors/pr-store-error.js';
import { MAX_TIMER_MS } from '../protocol/constants.js';
import { notify } from './notify.js';

/** Bounds of a {@link RequestCoalescer}. */
export interface CoalescerBounds {
  /** Most requests one round trip serves. Default 256. */
  readonly maxBatchSize?: number;
  /**
   * How long a batch may wait for more requests before it leaves, in ms. Default 0: a batch
   * leaves as soon as a round trip is free (requests that arrive meanwhile join the next one).
   */
  readonly maxWaitMs?: number;
  /** Most requests waiting for a round trip; past it requests fail with `OVERLOADED`. Default 10000. */
  readonly maxQueued?: number;
  /** Round trips in flight at once. Default 1. */
  readonly maxInFlight?: number;
}

/** One request's outcome inside a batch: a batch never fails a request for its neighbour's sake. */
export type BatchOutcome<O> = { readonly ok: true; readonly value: O } | { readonly ok: false; readonly error: unknown };

/** Runs one batch: one outcome per item, in order. A rejection fails the whole batch. */
export type BatchRunner<I, O> = (items: readonly I[]) => Promise<readonly BatchOutcome<O>[]>;

/** Schedules `run` after `delayMs` (0: after the I/O already received is handled). Injectable for tests. */
export type BatchScheduler = (run: () => void, delayMs: number) => void;

/** Options of {@link createRequestCoalescer}. */
export interface RequestCoalescerOptions extends CoalescerBounds {
  /**
   * True when a failed batch of several items should be retried one item at a time (the
   * failure may belong to one of them). Default: never. Failures that concern every item
   * alike, such as an unreachable database, should say false.
   */
  readonly retryAlone?: (error: unknown) => boolean;
  /** Default: `setImmediate` for 0, `setTimeout` otherwise. */
  readonly schedule?: BatchScheduler;
  /** Called with the size of each batch as it leaves (for metrics). Default: nothing. */
  readonly onBatch?: (size: number) => void;
}

/** Gathers requests that arrive while a round trip is in flight into the next one. */
export interface RequestCoalescer<I, O> {
  /** Queues `item` for the next batch; settles with its own outcome. */
  submit(item: I): Promise<O>;
  /** Requests waiting for a round trip. */
  readonly queued: number;
}

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/** Default {@link CoalescerBounds}. */
export const DEFAULT_COALESCER_BOUNDS = {
  maxBatchSize: 256,
  maxWaitMs: 0,
  maxQueued: 10_000,
  maxInFlight: 1,
} as const satisfies Required<CoalescerBounds>;

const defaultSchedule: BatchScheduler = (run, delayMs) => {
  if (delayMs <= 0) setImmediate(run);
  else setTimeout(run, delayMs);
};

/**
 * Creates a coalescer over `runBatch`. Requests leave in arrival order; a batch holds at most
 * `maxBatchSize` of them; at most `maxInFlight` batches run at once.
 */
export function createRequestCoalescer<I, O>(
  runBatch: BatchRunner<I, O>,
  options: RequestCoalescerOptions = {},
): RequestCoalescer<I, O> {
  const maxBatchSize = checkBound('maxBatchSize', options.maxBatchSize ?? DEFAULT_COALESCER_BOUNDS.maxBatchSize, 1);
  // Node fires a longer timer after 1 ms.
  const maxWaitMs = checkBound('maxWaitMs', options.maxWaitMs ?? DEFAULT_COALESCER_BOUNDS.maxWaitMs, 0, MAX_TIMER_MS);
  const maxQueued = checkBound('maxQueued', options.maxQueued ?? DEFAULT_COALESCER_BOUNDS.maxQueued, 1);
  const maxInFlight = checkBound('maxInFlight', options.maxInFlight ?? DEFAULT_COALESCER_BOUNDS.maxInFlight, 1);
  const schedule = options.schedule ?? defaultSchedule;
  const retryAlone = options.retryAlone ?? (() => false);

  let queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  const startNext = (): void => {
    if (scheduled || inFlight >= maxInFlight || queue.length === 0) return;
    scheduled = true;
    schedule(
      () => {
        scheduled = false;
        if (inFlight >= maxInFlight || queue.length === 0) return;
        let batch: Waiting<I, O>[];
        if (queue.length <= maxBatchSize) {
          batch = queue;
          queue = [];
        } else {
          batch = queue.splice(0, maxBatchSize);
        }
        inFlight += 1;
        void run(batch).finally(() => {
          inFlight -= 1;
          startNext();
        });
        notify(options.onBatch, batch.length);
        startNext();
      },
      queue.length >= maxBatchSize ? 0 : maxWaitMs,
    );
  };

  const run = async (batch: Waiting<I, O>[]): Promise<void> => {
    let outcomes: readonly BatchOutcome<O>[];
    try {
      outcomes = await runBatch(batch.map((waiting) => waiting.item));
    } catch (error) {
      if (batch.length > 1 && retryAlone(error)) {
        for (const waiting of batch) await run([waiting]);
      } else {
        for (const waiting of batch) waiting.reject(error);
      }
      return;
    }
    for (let index = 0; index < batch.length; index += 1) {
      const outcome = outcomes[index];
      const waiting = batch[index]!;
      if (outcome === undefined) {
        waiting.reject(new RangeError(`batch runner returned ${outcomes.length} outcomes for ${batch.length} requests`));
      } else if (outcome.ok) {
        waiting.resolve(outcome.value);
      } else {
        waiting.reject(outcome.error);
      }
    }
  };

  return {
    submit(item: I): Promise<O> {
      if (queue.length >= maxQueued) {
        return Promise.reject(
          new PrStoreError('OVERLOADED', `server overloaded: ${maxQueued} requests already wait for the database`),
        );
      }
      return new Promise<O>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        startNext();
      });
    },
    get queued() {
      return queue.length;
    },
  };
}

function checkBound(name: string, value: number, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} must be an integer of at least ${min}, got ${String(value)}`);
  }
  if (value > max) throw new PrStoreError('INVALID_ARGUMENT', `${name} must be at most ${max}, got ${String(value)}`);
  return value;
}
