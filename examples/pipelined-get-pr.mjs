// Asks the PRs of a whole build at once over prserv's JSON-RPC envelope: the requests share one
// connection, many in flight, each answered with its id. BitBake's own server does not speak it.
//
//   PRSERV_SERVER_ADDR=prserv.example.net:8585 node examples/pipelined-get-pr.mjs packages.json
//
// packages.json: [{"version": "1.0-r0", "pkgarch": "core2-64", "checksum": "…"}, …]
import { readFile } from 'node:fs/promises';
import { createPrClient } from '@prserv/client';

const packages = JSON.parse(await readFile(process.argv[2], 'utf8'));
const client = createPrClient({ address: process.env.PRSERV_SERVER_ADDR ?? 'localhost:8585', protocol: 'jsonrpc' });
try {
  const prs = await client.getPrMany(packages);
  packages.forEach((entry, index) => console.log(`${entry.version}\t${entry.pkgarch}\t${prs[index]}`));
  const getPr = (await client.stats()).requests['get-pr'];
  console.log(`the server has answered ${getPr?.count ?? 0} get-pr since its stats began (p99 ${getPr?.['p99-ms'] ?? 0} ms)`);
} finally {
  await client.close();
}
