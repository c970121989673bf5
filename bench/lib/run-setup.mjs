// What every comparison script does before its first cell: the options they share, and taking the
// build, checking the load generator, preparing the targets and recording the run's metadata.
import { runMetadata } from './common.mjs';
import { configurePostgresAccounting } from './proc.mjs';
import { freezeBuildForRun } from './snapshot.mjs';
import { probeStress } from './stress.mjs';
import { createTargets, DEFAULT_SERVER_CLI } from './targets.mjs';

/** Defaults of the options every comparison script takes (see each script's --help). */
export const RUN_OPTIONS = {
  maxConnections: null,
  serverCli: DEFAULT_SERVER_CLI,
  stressCli: null,
  out: null,
  noWrite: false,
  noSnapshot: false,
  force: false,
};

/**
 * Freezes the build for the run, probes the stress tool and prepares the `wanted` targets.
 * Resolves with the CLIs to use, the stress probe, the prepared targets (in `wanted` order) and
 * the run's metadata.
 */
export async function prepareRun(opts, { wanted, databaseUrl, bitbakeDir }) {
  const { serverCli, stressCli } = await freezeBuildForRun(opts, { serverCli: opts.serverCli, stressCli: opts.stressCli ?? opts.serverCli });
  const stress = await probeStress(stressCli);
  const all = createTargets({ databaseUrl, bitbakeDir, serverCli, maxConnections: opts.maxConnections });
  const targets = wanted.map((name) => all[name]);
  for (const target of targets) {
    process.stderr.write(`preparing ${target.name}…\n`);
    await target.prepare();
  }
  const meta = await runMetadata({ databaseUrl: wanted.includes('ours-pg') ? databaseUrl : null, bitbakeDir });
  meta.postmasterPid = await configurePostgresAccounting(databaseUrl);
  return { serverCli, stressCli, stress, targets, meta };
}
