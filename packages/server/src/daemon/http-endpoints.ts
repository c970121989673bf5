import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { WriteBatchPath } from '@prserv/core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServerLogger } from './logger.js';
import { LATENCY_BUCKETS_SECONDS, type ServerStats } from './server-stats.js';

/** Database pool figures, when the store has a pool. */
export interface PoolFigures {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

/** What the HTTP endpoints report on. */
export interface ObservedServer {
  readonly stats: ServerStats;
  readonly connections: number;
}

/** What the engine tells about its database work (see `PrEngineObserver` in `@prserv/core`). */
export interface EngineEventSource {
  onEngineEvent(listener: (event: EngineEvent) => void): void;
}

/** A coalesced round trip of `size` requests, `count` revisions stored, or the way a write batch went. */
export type EngineEvent =
  | { readonly kind: 'read' | 'write'; readonly size: number }
  | { readonly kind: 'allocated'; readonly count: number }
  | { readonly kind: 'write-path'; readonly path: WriteBatchPath };

/** Options of {@link startHttpEndpoints}. */
export interface HttpEndpointsOptions {
  readonly host: string;
  readonly port: number;
  readonly server: ObservedServer;
  /** Batches and allocations; without it those metrics stay at zero. */
  readonly engineEvents?: EngineEventSource;
  /**
   * Resolves when the server can serve (database reachable, schema current); rejects with the
   * reason otherwise. Asked on every `/readyz`.
   */
  readonly checkReady: () => Promise<void>;
  /** The database pool's figures; absent for a store without a pool. */
  readonly pool?: () => PoolFigures | undefined;
  readonly logger: ServerLogger;
}

/** A listening HTTP endpoint. */
export interface RunningHttpEndpoints {
  readonly address: { readonly host: string; readonly port: number };
  /** The metrics registry, for a program that adds its own. */
  readonly registry: Registry;
  /** From now on `/readyz` answers 503: the server is draining. */
  markDraining(): void;
  close(): Promise<void>;
}

/** Longest a readiness check may take before `/readyz` answers 503. */
const READY_TIMEOUT_MS = 5_000;

/**
 * Serves `/metrics` (Prometheus text format), `/healthz` (the process is up) and `/readyz` (it
 * can serve requests: database reachable, schema current, not draining).
 */
export async function startHttpEndpoints(options: HttpEndpointsOptions): Promise<RunningHttpEndpoints> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'prserv_' });
  const requests = new Counter({
    name: 'prserv_requests_total',
    help: 'Requests answered, by method, protocol and outcome (ok or error).',
    labelNames: ['method', 'protocol', 'outcome'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'prserv_request_errors_total',
    help: 'Requests answered with an error, by stable error code (UPSTREAM_UNAVAILABLE: the upstream failed).',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'prserv_request_duration_seconds',
    help: 'Time from a request being read to its answer being written, by method and protocol.',
    labelNames: ['method', 'protocol'] as const,
    buckets: [...LATENCY_BUCKETS_SECONDS],
    registers: [registry],
  });
  const allocations = new Counter({
    name: 'prserv_allocations_total',
    help: 'Revisions stored by get-pr on this server (import-one not counted).',
    registers: [registry],
  });
  const batches = new Histogram({
    name: 'prserv_batch_size',
    help: 'Requests served per database round trip (coalesced batches), by kind: read or write.',
    labelNames: ['kind'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  const writePaths = new Counter({
    name: 'prserv_write_batches_total',
    help: 'Allocation batches, by path: first_try (one round trip from the lookups\' facts), overtaken (that try stored nothing; decided again under the locks) or general (decided under the locks at once).',
    labelNames: ['path'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'prserv_open_connections',
    help: 'Client connections open.',
    registers: [registry],
    collect() {
      this.set(options.server.connections);
    },
  });
  const pool = options.pool;
  if (pool) {
    new Gauge({
      name: 'prserv_db_pool_connections',
      help: 'Database pool connections, by state: in_use, idle, or waiting (requests waiting for a connection).',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const figures = pool();
        if (!figures) return;
        this.set({ state: 'in_use' }, figures.total - figures.idle);
        this.set({ state: 'idle' }, figures.idle);
        this.set({ state: 'waiting' }, figures.waiting);
      },
    });
  }
  options.server.stats.onRecord((record) => {
    requests.inc({ method: record.method, protocol: record.protocol, outcome: record.outcome });
    latency.observe({ method: record.method, protocol: record.protocol }, record.seconds);
    if (record.errorCode) errors.inc({ code: record.errorCode });
  });
  options.engineEvents?.onEngineEvent((event) => {
    if (event.kind === 'allocated') allocations.inc(event.count);
    else if (event.kind === 'write-path') writePaths.inc({ path: event.path.replace('-', '_') });
    else batches.observe({ kind: event.kind }, event.size);
  });

  let draining = false;
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    // Origin form ("/metrics?x") or absolute form ("http://host/metrics"), which HTTP/1.1 servers must take.
    const path = requestPath(request.url);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      reply(response, 405, 'only GET\n', { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/metrics':
        reply(response, 200, await registry.metrics(), { 'content-type': registry.contentType });
        return;
      case '/healthz':
        reply(response, 200, 'ok\n');
        return;
      case '/readyz': {
        if (draining) {
          reply(response, 503, 'draining\n');
          return;
        }
        try {
          await withTimeout(options.checkReady(), READY_TIMEOUT_MS);
          reply(response, 200, 'ready\n');
        } catch (error) {
          reply(response, 503, `not ready: ${(error as Error).message}\n`);
        }
        return;
      }
      default:
        reply(response, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  };
  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.logger.error({ err: (error as Error).message, url: request.url }, 'HTTP endpoint failed');
      if (!response.headersSent) reply(response, 500, 'internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      // Once listening, an error (accepting a connection) is logged: unheard, it would end the process.
      server.on('error', (error) => options.logger.error({ err: error.message }, 'HTTP endpoints: listener error'));
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('the HTTP endpoints are not bound to a TCP address');
  return {
    address: { host: bound.address, port: bound.port },
    registry,
    markDraining() {
      draining = true;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function reply(response: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  response.end(body);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}

/** The path of a request target, without its query; null when it is not a URL path. */
function requestPath(target: string | undefined): string | null {
  try {
    return new URL(target ?? '/', 'http://endpoint.invalid').pathname;
  } catch {
    return null;
  }
}
