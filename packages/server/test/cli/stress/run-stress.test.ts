import { connect, createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrEngine, type PrStore } from '@prserv/core';
import { runCli } from '../../../src/cli/main.js';
import { type RunningPrServer, startPrServer } from '../../../src/daemon/pr-server.js';
import { runStress, stressExitCode } from '../../../src/cli/stress/run-stress.js';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';

/** What `prserv client stress … --json` printed and returned, run in-process. */
interface StressRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly json: { ok: boolean; errors: number; requests: number; checks: { name: string; ok: boolean; detail: string }[] };
}

async function stressCli(server: RunningPrServer, ...args: string[]): Promise<StressRun> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        append(chunk.toString());
        done();
      },
    });
  const code = await runCli(['client', 'stress', '--server', `127.0.0.1:${server.address.port}`, '--json', ...args], {
    env: {},
    stdout: sink((text) => (stdout += text)),
    stderr: sink((text) => (stderr += text)),
  });
  return { code, stdout, stderr, json: JSON.parse(stdout) as StressRun['json'] };
}

function failedChecks(run: StressRun): string[] {
  return run.json.checks.filter((check) => !check.ok).map((check) => check.name);
}

describe.each(STORE_KINDS)('prserv client stress against a correct server on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let server: RunningPrServer;
  let historyServer: RunningPrServer;

  beforeAll(async () => {
    database = await create(`stress_${kind}`);
    store = await openPrStore({ database: database.url });
    server = await startPrServer({ engine: store, host: '127.0.0.1', port: 0 });
    historyServer = await startPrServer({ engine: store, host: '127.0.0.1', port: 0, defaultHistory: true });
  });

  afterAll(async () => {
    await server?.close();
    await historyServer?.close();
    await store?.close();
    await database?.drop();
  });

  it.each(['history', 'nohist', 'legacy'])('passes every check in %s mode and exits 0', async (mode) => {
    const run = await stressCli(server, '--mode', mode, '--connections', '8', '--requests', '400', '--packages', '10', '--new-ratio', '0.2');
    expect(run.json.checks.filter((check) => !check.ok)).toEqual([]);
    expect(run.json).toMatchObject({ ok: true, errors: 0, requests: 400 });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
  });

  it.each(['history', 'nohist'])('passes every check in %s mode over the JSON-RPC envelope', async (mode) => {
    const run = await stressCli(server, '--mode', mode, '--protocol', 'jsonrpc', '--connections', '8', '--requests', '400', '--packages', '10', '--new-ratio', '0.2');
    expect(run.json.checks.filter((check) => !check.ok)).toEqual([]);
    expect(run.json).toMatchObject({ ok: true, errors: 0, requests: 400 });
    expect(run.code).toBe(0);
  });

  it('refuses legacy mode over the JSON-RPC envelope, which BitBake before 2.10 never spoke', async () => {
    await expect(runStress({ servers: [`127.0.0.1:${server.address.port}`], mode: 'legacy', protocol: 'jsonrpc' })).rejects.toThrow(/--protocol jsonrpc/);
  });

  it('holds legacy answers to history-stable when the server serves legacy requests in history mode', async () => {
    const report = await runStress({ servers: [`127.0.0.1:${historyServer.address.port}`], mode: 'legacy', requests: 300, packages: 5 });
    expect(report.servedMode).toBe('history');
    expect(report.checks.find((check) => check.name === 'history-stable')?.detail).toMatch(/asked more than once.*history mode/);
    expect(report.ok).toBe(true);
  });

  it('refuses a read-only server, whose answers the checks cannot judge, with exit code 2', async () => {
    const readOnly = await startPrServer({ engine: store.readOnlyView!(), host: '127.0.0.1', port: 0 });
    try {
      const address = `127.0.0.1:${readOnly.address.port}`;
      const before = await store.maxPackagePr({ version: 'never-0', pkgarch: 'core2-64' });
      await expect(runStress({ servers: [`127.0.0.1:${server.address.port}`, address], requests: 50, packagePrefix: 'never' })).rejects.toThrow(
        `${address} is read-only (for this client): stress allocates PRs, so it needs a server that stores them`,
      );
      expect(await store.maxPackagePr({ version: 'never-0', pkgarch: 'core2-64' })).toBe(before);
      let stderr = '';
      const code = await runCli(['client', 'stress', '--server', address, '--requests', '10'], {
        env: {},
        stdout: new Writable({ write: (_chunk, _encoding, done) => done() }),
        stderr: new Writable({
          write(chunk: Buffer, _encoding, done) {
            stderr += chunk.toString();
            done();
          },
        }),
      });
      expect(code).toBe(2);
      expect(stderr).toContain('is read-only');
    } finally {
      await readOnly.close();
    }
  });

  it('spreads connections over replicas and grows a fixed package prefix across runs', async () => {
    const servers = [server, historyServer].map((running) => `127.0.0.1:${running.address.port}`);
    const options = { servers, mode: 'nohist', requests: 200, packages: 3, packagePrefix: `grow-${kind}-${Date.now()}` } as const;
    const first = await runStress(options);
    const second = await runStress(options);
    expect([first.ok, second.ok]).toEqual([true, true]);
    // The second run's values continue above the first's (gap-free counts from the earlier max).
    expect(second.checks.find((check) => check.name === 'gap-free')?.ok).toBe(true);
    expect(await store.maxPackagePr({ version: `${options.packagePrefix}-0`, pkgarch: 'core2-64' })).not.toBeNull();
  });
});

describe('prserv client stress against broken servers', () => {
  let database: TestDatabase;
  let store: PrStore;
  const running: RunningPrServer[] = [];

  beforeAll(async () => {
    database = await createPostgresDatabase('stress_broken');
    store = await openPrStore({ database: database.url });
  });

  afterAll(async () => {
    await Promise.all(running.map((server) => server.close()));
    await store?.close();
    await database?.drop();
  });

  /** A real server whose engine is the store with some methods replaced. */
  async function brokenServer(overrides: Partial<PrEngine>): Promise<RunningPrServer> {
    const engine = new Proxy(store, {
      get(target, property, receiver) {
        if (Object.hasOwn(overrides, property)) return overrides[property as keyof PrEngine];
        const value = Reflect.get(target, property, receiver) as unknown;
        // The store keeps #private state: its methods must run on the store itself.
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as PrEngine;
    const server = await startPrServer({ engine, host: '127.0.0.1', port: 0 });
    running.push(server);
    return server;
  }

  // Few packages, many new checksums: every package reaches several values.
  const load = ['--connections', '8', '--requests', '400', '--packages', '5', '--new-ratio', '0.3'];

  it('fails unique-values when a value goes to two checksums', async () => {
    let sabotaged = false;
    const server = await brokenServer({
      async getPr(query) {
        const value = await store.getPr(query);
        if (sabotaged || value === '0') return value;
        // Once: a checksum is handed the value just below its own, which another checksum holds.
        sabotaged = true;
        return String(Number(value) - 1);
      },
    });
    const run = await stressCli(server, ...load);
    expect(sabotaged).toBe(true);
    expect(failedChecks(run)).toContain('unique-values');
    expect(run.json.ok).toBe(false);
    expect(run.code).toBe(1);
  });

  it('fails gap-free when the server skips a value', async () => {
    // Every PR from 3 up is shown one higher, consistently in every answer: 3 is never seen.
    const shift = (value: string | null) => (value !== null && Number(value) >= 3 ? String(Number(value) + 1) : value);
    const server = await brokenServer({
      getPr: async (query) => shift(await store.getPr(query))!,
      testPr: async (query) => shift(await store.testPr(query)),
      maxPackagePr: async (key) => shift(await store.maxPackagePr(key)),
    });
    const run = await stressCli(server, ...load);
    expect(failedChecks(run)).toEqual(['gap-free']);
    expect(run.json.checks.find((check) => check.name === 'gap-free')?.detail).toMatch(/missing 3/);
    expect(run.code).toBe(1);
  });

  it('fails read-back when test-pr disagrees with what get-pr answered', async () => {
    // get-pr is right; test-pr, asked only by the read-back pass, forgets every checksum.
    const server = await brokenServer({ testPr: async () => null });
    const run = await stressCli(server, ...load);
    expect(failedChecks(run)).toEqual(['read-back']);
    expect(run.code).toBe(1);
  });

  it('fails history-stable when a history answer changes', async () => {
    // The history flag is ignored: returning checksums move up as in no-history mode.
    const server = await brokenServer({ getPr: (query) => store.getPr({ ...query, history: false }) });
    const run = await stressCli(server, ...load, '--mode', 'history');
    expect(failedChecks(run)).toContain('history-stable');
    expect(failedChecks(run)).not.toContain('unique-values');
    expect(failedChecks(run)).not.toContain('gap-free');
    expect(run.code).toBe(1);
  });

  it('fails monotonic-in-time when answers go backwards', async () => {
    // No-history requests answered as history ones: a returning checksum falls back to its first PR.
    const server = await brokenServer({ getPr: (query) => store.getPr({ ...query, history: true }) });
    const run = await stressCli(server, ...load, '--mode', 'nohist');
    expect(failedChecks(run)).toEqual(['monotonic-in-time']);
    expect(run.json.checks.find((check) => check.name === 'monotonic-in-time')?.detail).toMatch(/is below the package/);
    expect(run.code).toBe(1);
  });

  it('fails monotonic-in-time when a no-history checksum moves though it held its package’s greatest', async () => {
    // Every returning checksum gets a new PR (stored as its own, so read-back agrees), even when
    // nothing newer was allocated: one at a time, nothing else can explain the move.
    let spare = 0;
    const server = await brokenServer({
      async getPr(query) {
        if ((await store.testPr(query)) === null) return store.getPr(query);
        const value = await store.getPr({ ...query, checksum: `spare-${(spare += 1)}` });
        await store.importOne({ ...query, value });
        return value;
      },
    });
    const run = await stressCli(server, '--connections', '1', '--requests', '200', '--packages', '1', '--new-ratio', '0.1', '--mode', 'nohist');
    expect(failedChecks(run)).toEqual(['monotonic-in-time']);
    expect(run.json.checks.find((check) => check.name === 'monotonic-in-time')?.detail).toMatch(/held the package's greatest/);
    expect(run.code).toBe(1);
  });

  it('exits 3 when some requests get an invoke-error but every answer checks out', async () => {
    let calls = 0;
    const server = await brokenServer({
      getPr(query) {
        calls += 1;
        if (calls % 40 === 0) return Promise.reject(new Error('simulated failure'));
        return store.getPr(query);
      },
    });
    const run = await stressCli(server, ...load);
    expect(run.json.errors).toBeGreaterThanOrEqual(5);
    expect(run.json.requests).toBe(400 - run.json.errors);
    expect(failedChecks(run)).toEqual([]);
    expect(run.json.ok).toBe(false);
    expect(run.code).toBe(3);
  });

  /** A forwarder to `target` that rewrites every answer line it passes back. */
  async function rewriting(target: RunningPrServer, rewrite: (line: string) => string): Promise<Server> {
    const forwarder: Server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: target.address.port });
      let pending = '';
      client.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop()!;
        if (!client.destroyed) client.write(lines.map((line) => `${rewrite(line)}\n`).join(''));
      });
      client.on('close', () => upstream.destroy());
      client.on('error', () => {});
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    return forwarder;
  }

  it('fails well-formed when PRs come back as integers to modern requests, or as no PR at all', async () => {
    const server = await brokenServer({});
    for (const [rewrite, expected] of [
      [(line: string) => line.replace(/"value": ?"(\d+)"/, '"value": $1'), 'a PR is a string'],
      [(line: string) => line.replace(/"value": ?"(\d+)"/, '"value": "r$1"'), 'which holds no PR'],
    ] as const) {
      const forwarder = await rewriting(server, rewrite);
      try {
        const port = (forwarder.address() as { port: number }).port;
        const report = await runStress({ servers: [`127.0.0.1:${port}`], connections: 2, requests: 40, packages: 2, mode: 'nohist' });
        expect(report.checks.find((check) => check.name === 'well-formed')).toMatchObject({ ok: false, detail: expect.stringContaining(expected) });
        expect(stressExitCode(report)).toBe(1);
      } finally {
        forwarder.close();
      }
    }
  });

  it('exits 3 when connections drop with requests in flight, and judges around the lost answers', async () => {
    const server = await brokenServer({});
    // A forwarder that cuts every connection after its 25th line (hello included): the request
    // may or may not have reached the store, its answer never arrives.
    const forwarder: Server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: server.address.port });
      let lines = 0;
      client.on('data', (chunk: Buffer) => {
        upstream.write(chunk);
        for (const byte of chunk) if (byte === 0x0a) lines += 1;
        if (lines >= 25) setTimeout(() => client.destroy(), 2);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!client.destroyed) client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      client.on('error', () => {});
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (forwarder.address() as { port: number }).port;
      const report = await runStress({ servers: [`127.0.0.1:${port}`], connections: 8, requests: 400, packages: 5, newRatio: 0.3, mode: 'nohist' });
      expect(report.errors).toBeGreaterThanOrEqual(8);
      expect(report.firstError).toMatch(/dropped with a request in flight/);
      expect(report.checks.filter((check) => !check.ok)).toEqual([]);
      expect(report.requests).toBeGreaterThan(300);
    } finally {
      forwarder.close();
    }
  });
});
