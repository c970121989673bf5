import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStress } from '@prserv/server';
import { CLI_PATH, createPostgresDatabase, type ServerProcess, startServerProcess, type TestDatabase } from '@prserv/test-support';

/** Prometheus text format: `name{labels} value` lines, comments skipped. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

describe('prserv server --http (as a process)', () => {
  let database: TestDatabase;
  let server: ServerProcess;
  let http: string;

  beforeAll(async () => {
    database = await createPostgresDatabase('observability');
    server = await startServerProcess({ database: database.url, args: ['--http', '127.0.0.1:0', '--log-level', 'debug'] });
    const listening = server.logs.find((entry) => entry.msg === 'prserv listening')!;
    http = `http://${String(listening.http)}`;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    const ready = await fetch(`${http}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
  });

  it('counts a stress run in /metrics, scraped while the load runs', async () => {
    const scrapes: Map<string, number>[] = [];
    let loading = true;
    const scraping = (async () => {
      while (loading) {
        scrapes.push(parseMetrics(await (await fetch(`${http}/metrics`)).text()));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const report = await runStress({ servers: [server.address], connections: 8, requests: 2000, packages: 20, newRatio: 0.3, protocol: 'jsonrpc' });
    loading = false;
    await scraping;
    expect(report.ok).toBe(true);
    expect(scrapes.some((sample) => (sample.get('prserv_open_connections') ?? 0) >= 8)).toBe(true);
    const final = parseMetrics(await (await fetch(`${http}/metrics`)).text());
    const getPrs = final.get('prserv_requests_total{method="get-pr",protocol="jsonrpc",outcome="ok"}') ?? 0;
    expect(getPrs).toBeGreaterThanOrEqual(2000);
    expect(final.get('prserv_request_duration_seconds_count{method="get-pr",protocol="jsonrpc"}')).toBe(getPrs);
    // Every new checksum stored one revision: at least the share the stress tool asked for.
    expect(final.get('prserv_allocations_total')).toBeGreaterThanOrEqual(report.requests * 0.2);
    expect(final.get('prserv_batch_size_count{kind="read"}')).toBeGreaterThan(0);
    expect(final.get('prserv_batch_size_count{kind="write"}')).toBeGreaterThan(0);
    // One server alone: its write batches are stored on their first try, from their lookups' facts.
    expect(final.get('prserv_write_batches_total{path="first_try"}')).toBeGreaterThan(0);
    expect(final.has('prserv_db_pool_connections{state="in_use"}')).toBe(true);
    expect(final.get('prserv_db_pool_connections{state="waiting"}')).toBe(0);
  }, 60_000);

  it('logs each request at debug with the peer and a request number', () => {
    const line = server.logs.find((entry) => entry.msg === 'request' && entry.method === 'get-pr');
    expect(line).toMatchObject({ peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/), req: expect.any(Number), protocol: 'jsonrpc' });
  });
});

describe('prserv server --log-format pretty', () => {
  it('writes readable lines instead of JSON', async () => {
    const database = await createPostgresDatabase('pretty_logs');
    const child = spawn(process.execPath, [CLI_PATH, 'server', '--database', database.url, '--bind', '127.0.0.1:0', '--log-format', 'pretty'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (text: string) => {
          stdout += text;
          if (stdout.includes('prserv listening')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code}: ${stdout}`)));
      });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await database.drop();
    }
    const line = stdout.split('\n').find((text) => text.includes('prserv listening'))!;
    expect(line).toMatch(/INFO.*prserv listening/);
    expect(() => JSON.parse(line)).toThrow();
  }, 60_000);
});
