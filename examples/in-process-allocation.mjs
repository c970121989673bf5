// Allocates PRs in-process, as a Node build orchestrator would, without running a server.
//
//   node examples/in-process-allocation.mjs [DATABASE]
//
// DATABASE is a postgres:// URL or a folder for the embedded store (default: ./prserv-data).
import { openPrStore } from '@prserv/core';

const database = process.argv[2] ?? process.env.PRSERV_DATABASE ?? './prserv-data';
const store = await openPrStore({ database });
try {
  const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
  for (const checksum of ['3f2a…first-build', '9b1c…second-build', '3f2a…first-build']) {
    const pr = await store.getPr({ ...pkg, checksum });
    console.log(`${pkg.version} ${pkg.pkgarch} ${checksum} -> PR ${pr}`);
  }
  console.log(`greatest PR of ${pkg.version}: ${await store.maxPackagePr(pkg)} (${store.kind} store at ${store.location})`);
} finally {
  await store.close();
}
