// A CI step: before a release build, show which packages would get a new PR, without allocating.
//
//   PRSERV_SERVER_ADDR=prserv.example.net:8585 node examples/ci-check-revisions.mjs manifest.json
//
// manifest.json: [{"version": "1.0-r0", "pkgarch": "core2-64", "checksum": "…"}, …]
// Exit code 0 when every checksum is known to the PR server, 3 when some would get a new PR.
import { readFile } from 'node:fs/promises';
import { createPrClient } from '@prserv/client';

const manifest = JSON.parse(await readFile(process.argv[2], 'utf8'));
const client = createPrClient({ address: process.env.PRSERV_SERVER_ADDR ?? 'localhost:8585', requestTimeoutMs: 10_000 });
let unknown = 0;
try {
  for (const entry of manifest) {
    const pr = await client.testPr(entry);
    if (pr === null) unknown += 1;
    console.log(`${entry.version}\t${entry.pkgarch}\t${pr ?? 'NEW'}`);
  }
} finally {
  await client.close();
}
console.log(unknown === 0 ? 'all revisions known' : `${unknown} package(s) would get a new PR`);
process.exitCode = unknown === 0 ? 0 : 3;
