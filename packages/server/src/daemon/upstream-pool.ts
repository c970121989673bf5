import { createPrClient, formatServerAddress, parseServerAddress, type PrClient } from '@prserv/client';
import type { ChecksumKey, PackageKey, UpstreamPrSource } from '@prserv/core';
import type { ServerLogger } from './logger.js';

/** Options of {@link createUpstreamPool}. */
export interface UpstreamPoolOptions {
  /** `host:port` or `[v6]:port` of the upstream PR server. */
  readonly address: string;
  /** Connections shared by every downstream connection. Default 4. */
  readonly size?: number;
  /** Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Default 10000 ms. */
  readonly requestTimeoutMs?: number;
  readonly logger: ServerLogger;
}

/** An upstream source backed by a few shared client connections; `close()` ends them. */
export interface UpstreamPool extends UpstreamPrSource {
  close(): Promise<void>;
}

interface Member {
  readonly client: PrClient;
  busy: number;
}

/**
 * A small pool of connections to the upstream PR server, shared by all downstream connections
 * (BitBake opens one upstream connection per downstream connection). Each call goes to the
 * least busy connection; a failed connection is reopened by the next call that uses it.
 */
export function createUpstreamPool(options: UpstreamPoolOptions): UpstreamPool {
  const address = parseServerAddress(options.address);
  const name = formatServerAddress(address);
  const members: Member[] = Array.from({ length: options.size ?? 4 }, () => ({
    client: createPrClient({
      address,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      // One quick retry covers an upstream restart; a down upstream fails fast with a clear error.
      retries: 1,
      retryDelayMs: 50,
    }),
    busy: 0,
  }));

  const logCalls = options.logger.isLevelEnabled?.('debug') ?? true;

  async function call<T>(method: string, key: PackageKey, work: (client: PrClient) => Promise<T>): Promise<T> {
    const member = members.reduce((best, candidate) => (candidate.busy < best.busy ? candidate : best));
    member.busy += 1;
    const started = performance.now();
    try {
      const result = await work(member.client);
      if (logCalls) {
        options.logger.debug(
          { upstream: name, method, version: key.version, pkgarch: key.pkgarch, result, ms: elapsed(started) },
          'upstream call',
        );
      }
      return result;
    } catch (error) {
      options.logger.warn(
        { upstream: name, method, version: key.version, pkgarch: key.pkgarch, err: (error as Error).message, ms: elapsed(started) },
        'upstream call failed',
      );
      throw error;
    } finally {
      member.busy -= 1;
    }
  }

  return {
    name,
    // Upstream answers in no-history mode (docs/protocol.md §7.1): history is sent as false.
    maxPackagePr: (key) => call('max-package-pr', key, (client) => client.maxPackagePr(key)),
    testPr: (key: ChecksumKey) => call('test-pr', key, (client) => client.testPr({ ...key, history: false })),
    async close() {
      await Promise.all(members.map((member) => member.client.close()));
    },
  };
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
