import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEvent, type RunningHttpEndpoints, startHttpEndpoints } from '../../src/daemon/http-endpoints.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { ServerStats } from '../../src/daemon/server-stats.js';

const running: RunningHttpEndpoints[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((endpoints) => endpoints.close()));
});

async function serve(checkReady: () => Promise<void>) {
  const stats = new ServerStats(() => 3);
  const listeners: ((event: EngineEvent) => void)[] = [];
  const endpoints = await startHttpEndpoints({
    host: '127.0.0.1',
    port: 0,
    server: { stats, connections: 3 },
    engineEvents: { onEngineEvent: (listener) => listeners.push(listener) },
    checkReady,
    pool: () => ({ total: 5, idle: 2, waiting: 1 }),
    logger: silentLogger,
  });
  running.push(endpoints);
  const url = (path: string) => `http://127.0.0.1:${endpoints.address.port}${path}`;
  return { stats, endpoints, url, emit: (event: Parameters<(typeof listeners)[number]>[0]) => listeners.forEach((listener) => listener(event)) };
}

describe('HTTP endpoints', () => {
  it('answers /healthz while the process runs, and 404 with a hint elsewhere', async () => {
    const { url } = await serve(() => Promise.resolve());
    const health = await fetch(url('/healthz'));
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const missing = await fetch(url('/'));
    expect([missing.status, await missing.text()]).toEqual([404, 'not found: try /metrics, /healthz or /readyz\n']);
    expect((await fetch(url('/metrics'), { method: 'POST' })).status).toBe(405);
  });

  it('takes a request target in absolute form, as HTTP/1.1 servers must, and ignores a query', async () => {
    const { endpoints } = await serve(() => Promise.resolve());
    const { host, port } = endpoints.address;
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host, port }, () => socket.end(`GET http://${host}:${port}/healthz?probe=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    // Chunked: one chunk of 3 bytes, "ok\n".
    expect(raw).toMatch(/\r\n\r\n3\r\nok\n\r\n/);
  });

  it('answers /readyz 200 when the store is ready, 503 with the reason when not, and 503 once draining', async () => {
    let failure: Error | undefined;
    const { url, endpoints } = await serve(() => (failure ? Promise.reject(failure) : Promise.resolve()));
    expect((await fetch(url('/readyz'))).status).toBe(200);
    failure = new Error('database unavailable while trying to check the schema');
    const down = await fetch(url('/readyz'));
    expect([down.status, await down.text()]).toEqual([503, 'not ready: database unavailable while trying to check the schema\n']);
    failure = undefined;
    endpoints.markDraining();
    const draining = await fetch(url('/readyz'));
    expect([draining.status, await draining.text()]).toEqual([503, 'draining\n']);
  });

  it('exposes requests, errors by code, latency, allocations, batches, connections and the pool', async () => {
    const { url, stats, emit } = await serve(() => Promise.resolve());
    stats.record({ method: 'get-pr', protocol: 'asyncrpc', outcome: 'ok', seconds: 0.0004 });
    stats.record({ method: 'get-pr', protocol: 'jsonrpc', outcome: 'error', seconds: 0.002, errorCode: 'UPSTREAM_UNAVAILABLE' });
    emit({ kind: 'allocated', count: 1 });
    emit({ kind: 'write', size: 7 });
    emit({ kind: 'write-path', path: 'first-try' });
    emit({ kind: 'write-path', path: 'overtaken' });
    emit({ kind: 'write-path', path: 'first-try' });
    const response = await fetch(url('/metrics'));
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toContain('prserv_requests_total{method="get-pr",protocol="asyncrpc",outcome="ok"} 1');
    expect(text).toContain('prserv_requests_total{method="get-pr",protocol="jsonrpc",outcome="error"} 1');
    expect(text).toContain('prserv_request_errors_total{code="UPSTREAM_UNAVAILABLE"} 1');
    expect(text).toContain('prserv_request_duration_seconds_bucket{le="0.0005",method="get-pr",protocol="asyncrpc"} 1');
    expect(text).toContain('prserv_allocations_total 1');
    expect(text).toContain('prserv_batch_size_sum{kind="write"} 7');
    expect(text).toContain('prserv_write_batches_total{path="first_try"} 2');
    expect(text).toContain('prserv_write_batches_total{path="overtaken"} 1');
    expect(text).toContain('prserv_open_connections 3');
    expect(text).toContain('prserv_db_pool_connections{state="in_use"} 3');
    expect(text).toContain('prserv_db_pool_connections{state="waiting"} 1');
    expect(text).toMatch(/^prserv_process_resident_memory_bytes \d+/m);
  });
});
