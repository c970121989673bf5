import { ProtocolError } from './protocol-error.js';
import { type PrRequest, parseRequest } from './requests.js';

/**
 * The JSON-RPC style envelope (docs/protocol.md §11): one JSON object per line each way, on the
 * same port as asyncrpc. A connection speaks it when its first byte opens a JSON object.
 *
 * Request:  `{"id": 1, "method": "get-pr", "params": {"version": …, "pkgarch": …, "checksum": …}}`
 * Response: `{"id": 1, "result": {"value": "42"}, "error": null}`
 *       or  `{"id": 1, "result": null, "error": {"code": "INVALID_PARAMS", "message": "…"}}`
 */

/** What identifies a request in its response: a string or a number the client chose. */
export type JsonRpcId = string | number;

/** An error as the envelope carries it: a stable code and a message for people. */
export interface JsonRpcError {
  readonly code: string;
  readonly message: string;
}

/** A decoded response. */
export interface JsonRpcResponse {
  readonly id: JsonRpcId | null;
  readonly result: unknown;
  readonly error: JsonRpcError | null;
}

const ENVELOPE_KEYS = new Set(['id', 'method', 'params', 'jsonrpc']);

/** The id of a request, as far as one can be read from it; null when there is none to answer to. */
export function jsonRpcIdOf(message: unknown): JsonRpcId | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return null;
  const id = (message as Record<string, unknown>).id;
  return isJsonRpcId(id) ? id : null;
}

/**
 * Validates one decoded line as an enveloped request. Throws a {@link ProtocolError}:
 * `INVALID_REQUEST` for a bad envelope, else what {@link parseRequest} throws for the method and
 * its parameters. Revisions are strings here: an integer import value is refused.
 */
export function parseJsonRpcRequest(message: unknown): { readonly id: JsonRpcId; readonly request: PrRequest } {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new ProtocolError('INVALID_REQUEST', 'a request must be a JSON object {"id": …, "method": …, "params": {…}}');
  }
  const envelope = message as Record<string, unknown>;
  if (!isJsonRpcId(envelope.id)) {
    throw new ProtocolError('INVALID_REQUEST', 'a request needs an "id": a string, or a number');
  }
  if (typeof envelope.method !== 'string') {
    throw new ProtocolError('INVALID_REQUEST', 'a request needs a "method": a string such as "get-pr"');
  }
  const unknown = Object.keys(envelope).find((key) => !ENVELOPE_KEYS.has(key));
  if (unknown !== undefined) {
    throw new ProtocolError('INVALID_REQUEST', `unknown request member ${JSON.stringify(unknown.slice(0, 60))}: expected id, method and params`);
  }
  const params = envelope.params ?? {};
  if (envelope.method === 'import-one' && typeof params === 'object' && typeof (params as Record<string, unknown>).value === 'number') {
    throw new ProtocolError('INVALID_PARAMS', 'import-one: parameter "value" must be a revision string such as "3" or "1.2"');
  }
  return { id: envelope.id, request: parseRequest({ [envelope.method]: params }) };
}

/** One response line answering `id` with `result`. */
export function encodeJsonRpcResult(id: JsonRpcId | null, result: unknown): string {
  return `${JSON.stringify({ id, result, error: null })}\n`;
}

/** One response line answering `id` with an error. */
export function encodeJsonRpcError(id: JsonRpcId | null, error: JsonRpcError): string {
  return `${JSON.stringify({ id, result: null, error: { code: error.code, message: error.message } })}\n`;
}

/** One request line. */
export function encodeJsonRpcRequest(id: JsonRpcId, method: string, params: Record<string, unknown>): string {
  return `${JSON.stringify({ id, method, params })}\n`;
}

/** Validates one decoded line as a response; throws a `MALFORMED_MESSAGE` {@link ProtocolError} if it is not one. */
export function parseJsonRpcResponse(message: unknown): JsonRpcResponse {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new ProtocolError('MALFORMED_MESSAGE', 'a response must be a JSON object {"id", "result", "error"}');
  }
  const { id, result, error } = message as Record<string, unknown>;
  if (id !== null && !isJsonRpcId(id)) throw new ProtocolError('MALFORMED_MESSAGE', 'a response "id" must be a string, a number or null');
  if (error === null || error === undefined) return { id, result, error: null };
  if (typeof error !== 'object' || Array.isArray(error)) throw new ProtocolError('MALFORMED_MESSAGE', 'a response "error" must be an object or null');
  const { code, message: text } = error as Record<string, unknown>;
  return { id, result: null, error: { code: String(code), message: String(text) } };
}

function isJsonRpcId(value: unknown): value is JsonRpcId {
  return (typeof value === 'string' && value.length <= 256) || (typeof value === 'number' && Number.isFinite(value));
}
