import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** The lines of a text file, read as a stream (a million-row file never sits in memory whole). */
export async function* readLines(path: string): AsyncGenerator<string> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of lines) yield line;
  } finally {
    lines.close();
    input.destroy();
  }
}
