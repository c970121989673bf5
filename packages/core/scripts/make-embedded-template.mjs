// Makes dist/embedded-template.tar.gz: the data directory of a new, empty embedded store with the
// current schema. A new store unpacks it instead of running initdb and the migrations, which take
// seconds and most of a gigabyte of memory. Made at build time from this build and the PGlite
// version installed, so all three always match; never committed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { openPrStore } from '../dist/index.js';

const target = new URL('../dist/embedded-template.tar.gz', import.meta.url);
const scratch = mkdtempSync(join(tmpdir(), 'prserv-template-'));
try {
  const dataDir = join(scratch, 'pgdata');
  // 1 MB WAL segments instead of 16: the template is unpacked on every new store, and a fresh
  // segment is mostly zeros to inflate and write.
  await (await PGlite.create(dataDir, { initDbStartParams: ['--wal-segsize=1'] })).close();
  // The current schema, by the same migrations a store runs when it opens.
  await (await openPrStore({ database: scratch })).close();
  const pglite = await PGlite.create(dataDir);
  // A clean shutdown first, so the template needs no recovery when a new store starts from it.
  await pglite.exec('CHECKPOINT');
  const dump = await pglite.dumpDataDir('gzip');
  await pglite.close();
  writeFileSync(target, Buffer.from(await dump.arrayBuffer()));
  console.log(`embedded store template: ${(dump.size / 1024 / 1024).toFixed(1)} MB`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
