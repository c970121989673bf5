import { readFile } from 'node:fs/promises';
import { DataToolError } from './data-tool-error.js';

/** Largest JSON source read whole (one that is not laid out one row per line). */
const WHOLE_FILE_LIMIT = 256 * 1024 * 1024;

/**
 * Reads and parses a JSON source whole. `streamable` names the layout that lifts the size limit,
 * for the message of a file over it.
 */
export async function readJsonDocument(path: string, streamable: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new DataToolError('SOURCE_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (text.length > WHOLE_FILE_LIMIT) throw new DataToolError('SOURCE_MALFORMED', `${path}: a JSON source over 256 MB ${streamable}`);
  return parseJson(text, path, 1);
}

/** Parses one JSON text of a source; `line` is where it starts, for the message. */
export function parseJson(text: string, path: string, line: number): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw malformed(path, line, `not valid JSON (${(cause as Error).message})`);
  }
}

/** The error of a source that cannot be read as its kind, naming where. */
export function malformed(path: string, line: number, reason: string): DataToolError {
  return new DataToolError('SOURCE_MALFORMED', `${path}:${line}: ${reason}`);
}
