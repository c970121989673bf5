export { PrClient, createPrClient } from './pr-client.js';
export type {
  CallOptions,
  ExportArgs,
  ExportResult,
  ExportedRow,
  FreezePatterns,
  HistoryArgs,
  HistoryEntry,
  ImportArgs,
  PackageArgs,
  PreflightEntry,
  PreflightReport,
  PreflightVerdict,
  PrClientOptions,
  PrPreview,
  RevisionArgs,
  ServerStats,
} from './pr-client.js';
export type { MethodStats } from '@prserv/core/protocol';
export { AsyncRpcConnection } from './asyncrpc-connection.js';
export { JsonRpcConnection } from './json-rpc-connection.js';
export type { ConnectionOptions, SocketFactory } from './open-socket.js';
export { formatServerAddress, parseServerAddress } from './server-address.js';
export type { ServerAddress } from './server-address.js';
export { InvokeError, PR_CLIENT_ERROR_CODES, PrClientError, isInvokeError, isPrClientError } from './client-errors.js';
export type { PrClientErrorCode } from './client-errors.js';
