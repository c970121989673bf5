// The asyncrpc codec of BitBake's PR service (framing, requests, wire values) and the JSON-RPC envelope. Pure, and importing
// nothing outside this folder, so that `@prserv/client` can use it without the database stack.
export {
  ASYNCRPC_MAX_CHUNK,
  CHUNK_STREAM_KEY,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_TIMER_MS,
  PRSERV_PROTOCOL_NAME,
  PRSERV_PROTOCOL_VERSION,
} from './constants.js';
export { FrameDecoder } from './frame-decoder.js';
export type { DecodedFrame, FrameDecoderOptions, FrameHeaders, FramePreamble } from './frame-decoder.js';
export { encodeClientHello, encodeHeaders, encodeMessage, toAsciiJson } from './frame-encoder.js';
export { PR_METHODS, isPrMethod, parseRequest } from './requests.js';
export type { ChecksumParams, PackageParams, PrMethod, PrRequest } from './requests.js';
export { PROTOCOL_ERROR_CODES, ProtocolError, isProtocolError } from './protocol-error.js';
export type { ProtocolErrorCode } from './protocol-error.js';
export { fromWireRevision, toWireRevision } from './wire-values.js';
export { exportMetainfo } from './export-metainfo.js';
export {
  encodeJsonRpcError,
  encodeJsonRpcRequest,
  encodeJsonRpcResult,
  jsonRpcIdOf,
  parseJsonRpcRequest,
  parseJsonRpcResponse,
} from './json-rpc.js';
export type { JsonRpcError, JsonRpcId, JsonRpcResponse } from './json-rpc.js';
export type { ColumnInfo, ExportMetainfo } from './export-metainfo.js';
export type { MethodStats, StatsAnswer } from './stats-answer.js';
