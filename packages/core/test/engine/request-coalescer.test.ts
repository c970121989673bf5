import { describe, expect, it } from 'vitest';
import { type BatchOutcome, type BatchScheduler, createRequestCoalescer, PrStoreError } from '@prserv/core';

/** A scheduler that runs nothing until the test says so, and remembers the delays asked for. */
function manualScheduler() {
  const pending: { run: () => void; delayMs: number }[] = [];
  const schedule: BatchScheduler = (run, delayMs) => void pending.push({ run, delayMs });
  return {
    schedule,
    pending,
    /** Lets settled promises run their callbacks, runs what they scheduled, and lets it settle. */
    async tick() {
      const settle = async () => {
        for (let turn = 0; turn < 10; turn += 1) await Promise.resolve();
      };
      await settle();
      for (const { run } of pending.splice(0)) run();
      await settle();
    },
  };
}

/** A batch runner whose round trips finish when the test says so. */
function controlledRunner<I, O>(answer: (item: I) => BatchOutcome<O>) {
  const batches: I[][] = [];
  const release: (() => void)[] = [];
  const run = (items: readonly I[]) => {
    batches.push([...items]);
    return new Promise<BatchOutcome<O>[]>((resolve) => release.push(() => resolve(items.map(answer))));
  };
  return { run, batches, finish: () => release.shift()?.() };
}

const double = (n: number): BatchOutcome<number> => ({ ok: true, value: n * 2 });

describe('request coalescer', () => {
  it('sends requests that arrive together as one batch, in arrival order', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner(double);
    const coalescer = createRequestCoalescer(runner.run, { schedule: clock.schedule });
    const answers = [1, 2, 3].map((n) => coalescer.submit(n));
    await clock.tick();
    expect(runner.batches).toEqual([[1, 2, 3]]);
    runner.finish();
    expect(await Promise.all(answers)).toEqual([2, 4, 6]);
  });

  it('gathers requests that arrive during a round trip into the next one', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner(double);
    const coalescer = createRequestCoalescer(runner.run, { schedule: clock.schedule });
    const first = coalescer.submit(1);
    await clock.tick();
    const later = [2, 3, 4].map((n) => coalescer.submit(n));
    await clock.tick();
    // One round trip at a time by default: the second batch waits for the first.
    expect(runner.batches).toEqual([[1]]);
    expect(coalescer.queued).toBe(3);
    runner.finish();
    await first;
    await clock.tick();
    expect(runner.batches).toEqual([[1], [2, 3, 4]]);
    runner.finish();
    expect(await Promise.all(later)).toEqual([4, 6, 8]);
  });

  it('cuts batches at maxBatchSize and runs up to maxInFlight at once', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner(double);
    const sizes: number[] = [];
    const coalescer = createRequestCoalescer(runner.run, {
      schedule: clock.schedule,
      maxBatchSize: 2,
      maxInFlight: 2,
      onBatch: (size) => sizes.push(size),
    });
    const answers = [1, 2, 3, 4, 5].map((n) => coalescer.submit(n));
    await clock.tick();
    await clock.tick();
    expect(runner.batches).toEqual([[1, 2], [3, 4]]);
    runner.finish();
    runner.finish();
    await clock.tick();
    await clock.tick();
    expect(runner.batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(sizes).toEqual([2, 2, 1]);
    runner.finish();
    expect(await Promise.all(answers)).toEqual([2, 4, 6, 8, 10]);
  });

  it('waits maxWaitMs for more requests unless the batch is already full', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner(double);
    const coalescer = createRequestCoalescer(runner.run, { schedule: clock.schedule, maxWaitMs: 5, maxBatchSize: 2 });
    void coalescer.submit(1);
    expect(clock.pending.map((entry) => entry.delayMs)).toEqual([5]);
    await clock.tick();
    runner.finish();
    await clock.tick();
    void coalescer.submit(2);
    void coalescer.submit(3);
    // The first of these scheduled a wait; a full batch would not have.
    expect(clock.pending.map((entry) => entry.delayMs)).toEqual([5]);
    const full = createRequestCoalescer(runner.run, { schedule: clock.schedule, maxWaitMs: 5, maxBatchSize: 1 });
    clock.pending.splice(0);
    void full.submit(4);
    expect(clock.pending.map((entry) => entry.delayMs)).toEqual([0]);
  });

  it('fails only the request whose outcome failed', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner<number, number>((n) => (n === 2 ? { ok: false, error: new Error('two') } : double(n)));
    const coalescer = createRequestCoalescer(runner.run, { schedule: clock.schedule });
    const answers = [1, 2, 3].map((n) => coalescer.submit(n).catch((error: Error) => error.message));
    await clock.tick();
    runner.finish();
    expect(await Promise.all(answers)).toEqual([2, 'two', 6]);
  });

  it('retries a failed batch one request at a time when the failure may belong to one of them', async () => {
    const clock = manualScheduler();
    const batches: number[][] = [];
    const coalescer = createRequestCoalescer<number, number>(
      async (items) => {
        batches.push([...items]);
        if (items.includes(2)) throw new Error('row 2 is bad');
        return items.map(double);
      },
      { schedule: clock.schedule, retryAlone: () => true },
    );
    const answers = [1, 2, 3].map((n) => coalescer.submit(n).catch((error: Error) => error.message));
    await clock.tick();
    expect(await Promise.all(answers)).toEqual([2, 'row 2 is bad', 6]);
    expect(batches).toEqual([[1, 2, 3], [1], [2], [3]]);
  });

  it('fails every request of a batch alike when the failure concerns them all', async () => {
    const clock = manualScheduler();
    let calls = 0;
    const coalescer = createRequestCoalescer<number, number>(
      async () => {
        calls += 1;
        throw new Error('database unreachable');
      },
      { schedule: clock.schedule, retryAlone: () => false },
    );
    const answers = [1, 2, 3].map((n) => coalescer.submit(n).catch((error: Error) => error.message));
    await clock.tick();
    expect(await Promise.all(answers)).toEqual(['database unreachable', 'database unreachable', 'database unreachable']);
    expect(calls).toBe(1);
  });

  it('keeps serving when its onBatch hook throws', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner(double);
    const coalescer = createRequestCoalescer(runner.run, {
      schedule: clock.schedule,
      onBatch: () => {
        throw new Error('a broken metrics hook');
      },
    });
    const first = coalescer.submit(1);
    await clock.tick();
    runner.finish();
    expect(await first).toBe(2);
    const second = coalescer.submit(2);
    await clock.tick();
    runner.finish();
    expect(await second).toBe(4);
    expect(runner.batches).toEqual([[1], [2]]);
  });

  it('refuses requests past maxQueued with OVERLOADED and keeps serving the queue', async () => {
    const clock = manualScheduler();
    const runner = controlledRunner(double);
    const coalescer = createRequestCoalescer(runner.run, { schedule: clock.schedule, maxQueued: 2 });
    const accepted = [coalescer.submit(1), coalescer.submit(2)];
    const refused = await coalescer.submit(3).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PrStoreError);
    expect((refused as PrStoreError).code).toBe('OVERLOADED');
    await clock.tick();
    runner.finish();
    expect(await Promise.all(accepted)).toEqual([2, 4]);
  });

  it('reports a runner that returns too few outcomes instead of hanging', async () => {
    const clock = manualScheduler();
    const coalescer = createRequestCoalescer<number, number>(async () => [double(1)], { schedule: clock.schedule });
    const answers = [1, 2].map((n) => coalescer.submit(n).catch((error: Error) => error.message));
    await clock.tick();
    expect(await Promise.all(answers)).toEqual([2, 'batch runner returned 1 outcomes for 2 requests']);
  });

  it('rejects bounds that make no sense', () => {
    const run = async () => [];
    expect(() => createRequestCoalescer(run, { maxBatchSize: 0 })).toThrow(/maxBatchSize must be an integer of at least 1/);
    expect(() => createRequestCoalescer(run, { maxWaitMs: -1 })).toThrow(/maxWaitMs/);
    // Past Node's timer limit a wait would end after 1 ms.
    expect(() => createRequestCoalescer(run, { maxWaitMs: 2_147_483_648 })).toThrow(/maxWaitMs must be at most 2147483647, got 2147483648/);
    expect(() => createRequestCoalescer(run, { maxQueued: 1.5 })).toThrow(/maxQueued/);
    expect(() => createRequestCoalescer(run, { maxInFlight: 0 })).toThrow(/maxInFlight/);
  });
});
