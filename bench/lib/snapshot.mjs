// A frozen copy of the built packages for the length of one run. The packages may be rebuilt
// while a benchmark runs (a build empties dist/ first); every cell of a run must drive the same
// build, so the scripts copy each package's package.json and dist/ into a scratch folder and
// link the same third-party dependencies next to them.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SERVER_CLI, REPO_DIR } from './targets.mjs';
import { scratchDir, waitForQuiet } from './proc.mjs';
import { probeStress } from './stress.mjs';

/**
 * Copies packages/<name>/{package.json,dist} of every workspace package into a scratch folder
 * (removed at cleanup) and returns the path of the copied server CLI. Workspace dependencies
 * (`@prserv/*`) point at the copies; all others at the real installed packages.
 * @throws when a package has no dist/ (not built, or a build is under way).
 */
export function snapshotBuild() {
  const source = join(REPO_DIR, 'packages');
  buildInfo = describeBuild(source);
  const target = join(scratchDir('build'), 'packages');
  const names = readdirSync(source).filter((name) => existsSync(join(source, name, 'package.json')));
  for (const name of names) {
    const from = join(source, name);
    const to = join(target, name);
    if (!existsSync(join(from, 'dist'))) throw new Error(`packages/${name}/dist is missing: build first (or wait for the build under way)`);
    mkdirSync(to, { recursive: true });
    cpSync(join(from, 'package.json'), join(to, 'package.json'));
    cpSync(join(from, 'dist'), join(to, 'dist'), { recursive: true });
  }
  for (const name of names) {
    const modules = join(source, name, 'node_modules');
    if (!existsSync(modules)) continue;
    const linkDir = join(target, name, 'node_modules');
    mkdirSync(linkDir, { recursive: true });
    const link = (entry, scope) => {
      const real = join(modules, ...(scope ? [scope, entry] : [entry]));
      const at = join(linkDir, ...(scope ? [scope, entry] : [entry]));
      const workspace = scope === '@prserv' && names.includes(entry);
      symlinkSync(workspace ? join(target, entry) : realpathSync(real), at);
    };
    for (const entry of readdirSync(modules)) {
      if (entry === '.bin' || entry.startsWith('.')) continue;
      if (entry.startsWith('@') && statSync(join(modules, entry)).isDirectory()) {
        mkdirSync(join(linkDir, entry), { recursive: true });
        for (const inner of readdirSync(join(modules, entry))) link(inner, entry);
      } else {
        link(entry);
      }
    }
  }
  return join(target, 'server', 'dist', 'cli.js');
}

let buildInfo = null;

/**
 * What the figures of a run were measured on: HEAD and whether packages/ had uncommitted changes
 * when the build was copied, and when its dist/ folders were written (a build does not record
 * its commit, so a dist/ older than HEAD's commit may hold an earlier state).
 */
export function describeBuild(source = join(REPO_DIR, 'packages')) {
  if (buildInfo && source === join(REPO_DIR, 'packages')) return buildInfo;
  const git = (...args) => {
    try {
      return execFileSync('git', ['-C', REPO_DIR, ...args], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  let distBuiltAt = null;
  try {
    const times = readdirSync(source)
      .filter((name) => existsSync(join(source, name, 'dist')))
      .map((name) => statSync(join(source, name, 'dist')).mtimeMs);
    if (times.length) distBuiltAt = new Date(Math.max(...times)).toISOString();
  } catch {
    // unknown
  }
  const head = git('rev-parse', '--short', 'HEAD');
  return {
    head,
    headCommittedAt: head ? git('show', '-s', '--format=%cI', 'HEAD') : null,
    uncommittedInPackages: head ? git('status', '--porcelain', '--', 'packages') !== '' : null,
    distBuiltAt,
  };
}

/**
 * Freezes the build for this run (see {@link snapshotBuild}) once no build or test suite runs,
 * and returns the CLIs to use. A run given its own `--server-cli`, or `--no-snapshot`, keeps
 * `current`. A build may start between the wait and the copy: the copy is checked, and taken
 * again (at most three times, 30 s apart) when it is broken.
 */
export async function freezeBuildForRun(opts, current) {
  if (opts.noSnapshot || opts.serverCli !== DEFAULT_SERVER_CLI) return current;
  for (let attempt = 1; ; attempt += 1) {
    if (!opts.force) await waitForQuiet();
    try {
      const copy = snapshotBuild();
      await probeStress(opts.stressCli ?? copy);
      return { serverCli: copy, stressCli: opts.stressCli ?? copy };
    } catch (error) {
      if (attempt >= 3) throw error;
      process.stderr.write(`the build is not usable yet (${error.message.split('\n')[0]}); trying again in 30 s\n`);
      await new Promise((resolve) => setTimeout(resolve, 30_000));
    }
  }
}
