import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore, type RevisionQuery } from '@prserv/core';
import { runCli } from '../../../src/cli/main.js';
import { type RunningPrServer, startPrServer } from '../../../src/daemon/pr-server.js';
import { STRESS_JSON_KEYS } from '../../../src/cli/stress/run-stress.js';
import { runStressCommand } from '../../../src/cli/stress/stress-command.js';
import { createPostgresDatabase, type TestDatabase, unusedPort } from '@prserv/test-support';

/** A writable that keeps what it is given; `isTTY` as asked. */
function capture(isTTY = false): Writable & { text: () => string; isTTY: boolean } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(stream, { text: () => text, isTTY });
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(args, { env: {}, stdout, stderr });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}


describe('prserv client stress options', () => {
  it.each([
    [['--connections', '0'], /invalid --connections 0: expected an integer from 1 to 4,096/],
    [['--connections', 'many'], /invalid --connections "many": expected a positive integer/],
    [['--requests', '1.5'], /invalid --requests "1.5"/],
    [['--duration', '0'], /invalid --duration 0: expected seconds above 0/],
    [['--duration', 'soon'], /invalid --duration "soon"/],
    [['--new-ratio', '1.5'], /invalid --new-ratio 1.5: expected a number from 0 to 1/],
    [['--packages', '0'], /invalid --packages 0/],
    [['--mode', 'sideways'], /invalid --mode "sideways": expected history, nohist or legacy/],
    [['--package-prefix', 'two words'], /invalid --package-prefix "two words"/],
    [['--pkgarch', 'a"b'], /invalid --pkgarch/],
    [['--server', 'nowhere'], /invalid --server "nowhere": expected HOST:PORT/],
    [['--timeout', '5'], /^prserv: unknown option --timeout \(see 'prserv client stress --help'\)\n$/],
    [['extra'], /^prserv: unexpected argument "extra" \(see 'prserv client stress --help'\)\n$/],
  ])('refuses %j with exit code 2', async (args, message) => {
    const run = await cli('client', 'stress', ...args);
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
  });

  it('takes client options given before the word stress', async () => {
    const run = await cli('client', '--server', 'nowhere', 'stress');
    expect(run).toMatchObject({ code: 2, stderr: expect.stringMatching(/invalid --server "nowhere"/) });
  });

  it('lists stress and every option with its default in the client help', async () => {
    const { stdout } = await cli('client', '--help');
    for (const option of ['--connections N', '--requests N', '--duration S', '--new-ratio R', '--packages K', '--mode MODE', '--package-prefix NAME', '--pkgarch ARCH', '--json']) {
      expect(stdout).toContain(option);
    }
    for (const fallback of ['Default: 8', 'Default: 10000', 'Default: 60', 'Default: 0.1', 'Default: 100', 'Default: history', 'Default: core2-64']) {
      expect(stdout).toContain(fallback);
    }
  });
});

describe('prserv client stress output', () => {
  let database: TestDatabase;
  let store: PrStore;
  let server: RunningPrServer;
  let slowServer: RunningPrServer;

  beforeAll(async () => {
    database = await createPostgresDatabase('stress_cli');
    store = await openPrStore({ database: database.url });
    server = await startPrServer({ engine: store, host: '127.0.0.1', port: 0 });
    // Every get-pr takes 5 ms more: the run lasts long enough for progress lines.
    const slow = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'getPr') {
          return async (query: RevisionQuery) => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            return target.getPr(query);
          };
        }
        const value = Reflect.get(target, property, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    slowServer = await startPrServer({ engine: slow, host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await server?.close();
    await slowServer?.close();
    await store?.close();
    await database?.drop();
  });

  it('prints one JSON object with the documented keys, exit 0', async () => {
    const address = `127.0.0.1:${server.address.port}`;
    const run = await cli('client', 'stress', '--server', address, '--connections', '4', '--requests', '200', '--mode', 'nohist', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(Object.keys(report)).toEqual([...STRESS_JSON_KEYS]);
    expect(report).toMatchObject({
      ok: true,
      servers: [address],
      mode: 'nohist',
      connections: 4,
      packages: 100,
      newRatio: 0.1,
      requests: 200,
      errors: 0,
      durationMs: expect.any(Number),
      requestsPerSecond: expect.any(Number),
      latencyMs: { p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) },
    });
    expect(report.checks).toEqual(
      ['well-formed', 'history-stable', 'unique-values', 'gap-free', 'read-back', 'monotonic-in-time'].map((name) => ({ name, ok: true, detail: expect.any(String) })),
    );
  });

  it('prints a readable block by default', async () => {
    const stdout = capture();
    const stderr = capture();
    const code = await runStressCommand(['--server', `127.0.0.1:${server.address.port}`, '--requests', '100', '--package-prefix', 'readable'], { env: {}, stdout, stderr }, async () => ({ server: {}, client: {} }));
    expect(code).toBe(0);
    const text = stdout.text();
    expect(text).toMatch(/^prserv client stress: history mode, 8 connections to 127\.0\.0\.1:\d+\n/);
    expect(text).toContain('packages  100 (readable-0 … readable-99, pkgarch core2-64), new-ratio 0.1');
    expect(text).toMatch(/requests {2}100 answered in [\d.]+ s: [\d,]+ req\/s; client CPU [\d.]+ µs\/request/);
    expect(text).toMatch(/latency {3}p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms/);
    expect(text).toContain('errors    0\n');
    expect(text).toMatch(/✓ gap-free {11}100 packages|✓ gap-free +\d+ packages/);
    expect(text.match(/✓/g)).toHaveLength(6);
    expect(text.endsWith('result    ok\n')).toBe(true);
    expect(stderr.text()).toBe('');
  });

  it('shows a progress line on a terminal and clears it at the end', async () => {
    const stdout = capture();
    const stderr = capture(true);
    const args = ['--server', `127.0.0.1:${slowServer.address.port}`, '--connections', '4', '--requests', '300', '--json'];
    const code = await runStressCommand(args, { env: {}, stdout, stderr }, async () => ({ server: {}, client: {} }));
    expect(code).toBe(0);
    expect(stderr.text()).toMatch(/^\r\x1b\[Kstress load: [\d,]+\/300 requests, [\d,]+\/s, 0 errors, [\d.]+ s/);
    expect(stderr.text().endsWith('\r\x1b[K')).toBe(true);
    expect(JSON.parse(stdout.text())).toMatchObject({ ok: true });
  });

  it('exits 3 with the errors counted when no server answers', async () => {
    const port = await unusedPort();
    const run = await cli('client', 'stress', '--server', `127.0.0.1:${port}`, '--connections', '3', '--json');
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, requests: 0, errors: 3 });
  });
});
