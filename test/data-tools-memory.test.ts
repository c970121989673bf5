import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, runCliProcess, STORE_KINDS, type TestDatabase } from '@prserv/test-support';

// Import and export stream: the memory of the CLI process must not grow with the number of rows.
// Measured as the peak RSS of the process (its own report at exit), for 10,000 rows and for
// 100,000. The processes run with a small young generation and old-space cap, so that garbage is
// collected early and RSS follows live memory: so run, streaming grows by some 6 MB from 10,000
// to 100,000 rows, while reading the rows whole (the engine's exportRows, as the asyncrpc export
// does) grows by over 50 MB.

const SMALL = 10_000;
const LARGE = 100_000;
/** Most the peak RSS may grow from SMALL to LARGE rows, in MB. */
const GROWTH_BOUND_MB = 25;
/** V8 settings of the measured processes (see above). */
const MEASURED_NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=64'];

let workDir: string;
let preload: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'prserv-data-memory-'));
  preload = join(workDir, 'report-max-rss.mjs');
  await writeFile(preload, "process.on('exit', () => process.stderr.write(`max-rss-kb ${process.resourceUsage().maxRSS}\\n`));\n");
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Writes a JSON export of `rows` rows over `rows / 10` packages, line by line. */
async function writeExport(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write('{"format":"prserv-export","formatVersion":1,"history":true,"version":null,"pkgarch":null,"rows":[\n');
  for (let index = 0; index < rows; index += 1) {
    const checksum = `${index.toString(16).padStart(8, '0')}${'0123456789abcdef'.repeat(4)}`.slice(0, 64);
    const row = JSON.stringify({ version: `pkg-${Math.floor(index / 10)}-1.0-r0`, pkgarch: 'core2-64', checksum, value: String(index % 10) });
    if (!out.write(index === rows - 1 ? `${row}\n` : `${row},\n`)) await once(out, 'drain');
  }
  out.end(']}\n');
  await once(out, 'finish');
}

/** Runs the built CLI and returns its peak RSS in MB. */
function peakRssMb(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...MEASURED_NODE_FLAGS, '--import', pathToFileURL(preload).href, CLI_PATH, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => {
      const reported = /max-rss-kb (\d+)/.exec(stderr);
      if (code !== 0 || !reported) reject(new Error(`prserv ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve(Number(reported[1]) / 1024);
    });
  });
}

describe.each(STORE_KINDS.filter(({ kind }) => kind === 'postgres'))('memory of import and export on $kind', ({ create }) => {
  const databases: TestDatabase[] = [];

  afterAll(async () => {
    for (const database of databases) await database.drop();
  });

  it(`imports and exports ${LARGE.toLocaleString('en')} rows in about the memory of ${SMALL.toLocaleString('en')}`, async () => {
    // Checks the build is current (runCliProcess refuses a stale one) before measuring with it.
    expect((await runCliProcess(['import', '--help'])).code).toBe(0);
    const peaks: Record<string, number>[] = [];
    for (const rows of [SMALL, LARGE]) {
      const database = await create(`memory_${rows}`);
      databases.push(database);
      const source = join(workDir, `${rows}.json`);
      await writeExport(source, rows);
      const imported = await peakRssMb(['import', source, '--database', database.url]);
      const exported = join(workDir, `${rows}-out.json`);
      const exportedPeak = await peakRssMb(['export', '--history', '--database', database.url, '--output', exported]);
      // Same rows back, byte for byte (the generated file is laid out as export writes it).
      expect((await stat(exported)).size).toBe((await stat(source)).size);
      peaks.push({ import: imported, export: exportedPeak });
    }
    const [small, large] = peaks as [Record<string, number>, Record<string, number>];
    expect(large.import! - small.import!, `import peak RSS: ${small.import!.toFixed(0)} MB → ${large.import!.toFixed(0)} MB`).toBeLessThan(GROWTH_BOUND_MB);
    expect(large.export! - small.export!, `export peak RSS: ${small.export!.toFixed(0)} MB → ${large.export!.toFixed(0)} MB`).toBeLessThan(GROWTH_BOUND_MB);
  });
});
