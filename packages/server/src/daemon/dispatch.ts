import { exportMetainfo, type PrEngine, type PrRequest, PrStoreError, toWireRevision } from '@prserv/core';

/**
 * Which client generation a connection has shown itself to be. Modern clients (BitBake 2.10+)
 * put `history` in get-pr, test-pr and export; legacy ones never do. Requests that carry no
 * `history` in either generation (max-package-pr, import-one) are answered in the generation
 * the connection has shown, modern when it has shown none.
 */
export type ClientGeneration = 'unknown' | 'modern' | 'legacy';

/** What a request needs besides itself. */
export interface DispatchContext {
  readonly engine: PrEngine;
  /** Mode of requests without `history` (legacy clients): BitBake's `--nohist` default is false. */
  readonly defaultHistory: boolean;
  /** The connection's generation so far; updated by {@link dispatchRequest}. */
  generation: ClientGeneration;
  /** What get-stats and reset-stats report; without it they answer that stats are not kept. */
  readonly stats?: { snapshot(): object; reset(): object };
  /** The client's address (IPv4 or IPv6 text), recorded with the rows its requests store. */
  readonly client?: string;
}

/** A JSON response object. */
export type ResponseBody = Record<string, unknown>;

/** Answers one validated request. Throws engine errors; `classifyError` turns them into an answer. */
export async function dispatchRequest(request: PrRequest, context: DispatchContext): Promise<ResponseBody | null> {
  const { engine } = context;
  switch (request.method) {
    case 'ping':
      return { alive: true };
    case 'is-readonly':
      return { readonly: engine.readOnly };
    case 'get-stats':
      return { ...(context.stats?.snapshot() ?? {}) };
    case 'reset-stats':
      return { ...(context.stats?.reset() ?? {}) };
    case 'get-pr':
    case 'test-pr': {
      const legacy = noteGeneration(context, request.history);
      const query = {
        version: request.version,
        pkgarch: request.pkgarch,
        checksum: request.checksum,
        history: request.history ?? context.defaultHistory,
        client: context.client,
      };
      const value = request.method === 'get-pr' ? await engine.getPr(query) : await engine.testPr(query);
      return { value: toWireRevision(value, legacy) };
    }
    case 'test-package':
      return { value: await engine.testPackage({ version: request.version, pkgarch: request.pkgarch }) };
    case 'max-package-pr': {
      const value = await engine.maxPackagePr({ version: request.version, pkgarch: request.pkgarch });
      return { value: toWireRevision(value, context.generation === 'legacy') };
    }
    case 'import-one': {
      // Integers, or a connection that has shown itself legacy, mean BitBake's integer world.
      const legacy = request.valueWasNumber || context.generation === 'legacy';
      const value = await engine.importOne({ ...pick(request), value: request.value, keepHigher: legacy, client: context.client });
      // Nothing stored (a read-only server): the whole answer is null, as BitBake's server sends.
      return value === null ? null : { value: toWireRevision(value, legacy) };
    }
    case 'preview-pr': {
      // prserv's own method: no client generation to learn from it, and revisions as strings.
      if (!engine.previewPr) throw unsupported('preview-pr');
      const preview = await engine.previewPr({ ...pick(request), history: request.history ?? context.defaultHistory });
      return {
        value: preview.value,
        new: preview.isNew,
        'package-max': preview.packageMax,
        frozen: preview.frozenBy && { version: preview.frozenBy.version, pkgarch: preview.frozenBy.pkgarch },
      };
    }
    case 'package-history': {
      if (!engine.packageHistory) throw unsupported('package-history');
      const rows = await engine.packageHistory({ version: request.version, pkgarch: request.pkgarch, checksum: request.checksum });
      return {
        revisions: rows.map((row) => ({
          checksum: row.checksum,
          value: row.value,
          'stored-at': row.storedAt,
          'stored-by': row.storedBy,
          'stored-how': row.storedHow,
          'previous-max': row.previousMax,
        })),
      };
    }
    case 'export': {
      const legacy = noteGeneration(context, request.history);
      const history = request.history ?? context.defaultHistory;
      const rows = await engine.exportRows({
        version: request.version,
        pkgarch: request.pkgarch,
        checksum: request.checksum,
        history,
      });
      return {
        metainfo: request.colinfo ? exportMetainfo({ legacy, history }) : {},
        datainfo: rows.map((row) => ({
          version: row.version,
          pkgarch: row.pkgarch,
          checksum: row.checksum,
          value: toWireRevision(row.value, legacy),
        })),
      };
    }
  }
}

/** Records what a request with or without `history` says of the client; true when legacy. */
function noteGeneration(context: DispatchContext, history: boolean | undefined): boolean {
  const legacy = history === undefined;
  if (context.generation === 'unknown') context.generation = legacy ? 'legacy' : 'modern';
  return legacy;
}

function pick(request: { version: string; pkgarch: string; checksum: string }) {
  return { version: request.version, pkgarch: request.pkgarch, checksum: request.checksum };
}

function unsupported(method: string): PrStoreError {
  return new PrStoreError('INVALID_ARGUMENT', `${method}: this server's engine does not answer it`);
}

/** The response BitBake's client turns into an `InvokeError`. */
export function invokeErrorBody(message: string): ResponseBody {
  return { 'invoke-error': { message } };
}

