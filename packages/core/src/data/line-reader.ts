import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DataToolError } from './data-tool-error.js';

/**
 * The lines of a text file, read as a stream (a million-row file never sits in memory whole).
 * A failed read (the file moved away since it was opened, EIO…) is `SOURCE_UNREADABLE`, not a
 * bare system error, which an import would take for the database's.
 */
export async function* readLines(path: string): AsyncGenerator<string> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    // Only the reading is guarded: an error of the consumer never comes back in through the yield.
    for await (const line of lines) yield line;
  } catch (cause) {
    throw new DataToolError('SOURCE_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  } finally {
    lines.close();
    input.destroy();
  }
}
