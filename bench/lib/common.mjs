// Shared plumbing of the bench scripts: argument parsing, run metadata, number formatting and
// writing result files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { bitbakeVersion, BENCH_DIR, REPO_DIR } from './targets.mjs';
import { describeBuild } from './snapshot.mjs';
import { pgQuery } from './pg-mini.mjs';

/**
 * Parses `--name value` / `--flag` arguments against `spec` (name → default; booleans are
 * flags). Unknown options exit with usage text.
 */
export function parseArgs(argv, spec, usage) {
  const out = { ...spec };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(usage);
      process.exit(0);
    }
    const name = arg.replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!arg.startsWith('--') || !(name in spec)) {
      console.error(`unknown argument ${arg}\n\n${usage}`);
      process.exit(2);
    }
    if (typeof spec[name] === 'boolean') {
      out[name] = true;
    } else {
      const value = argv[i + 1];
      if (value === undefined) {
        console.error(`${arg} needs a value\n\n${usage}`);
        process.exit(2);
      }
      out[name] = value;
      i += 1;
    }
  }
  return out;
}

/** "1,8,64" → [1, 8, 64]. */
export const numberList = (text) => String(text).split(',').map((s) => Number(s.trim())).filter((n) => Number.isFinite(n));

/** The median of the non-null numbers, or null. */
export function median(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Formats a number for a table cell: thousands grouped, `digits` decimals, "—" for null. */
export function fmt(value, digits = 0) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** a / b formatted as "1.23×", or "—". */
export function ratio(a, b) {
  if (!a || !b) return '—';
  return `${(a / b).toFixed(2)}×`;
}

function safe(fn) {
  try {
    return fn();
  } catch {
    return null;
  }
}

/** What the figures depend on: machine, versions, commit, load. */
export async function runMetadata({ databaseUrl, bitbakeDir }) {
  const pgVersion = databaseUrl ? await pgQuery(databaseUrl, 'SHOW server_version').then((r) => r[0]?.server_version ?? null, () => null) : null;
  return {
    startedAt: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? null,
    cores: cpus().length,
    loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    node: process.version,
    python: safe(() => execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim()),
    postgres: pgVersion,
    build: describeBuild(),
    serverVersion: safe(() => JSON.parse(readFileSync(join(REPO_DIR, 'packages/server/package.json'), 'utf8')).version),
    // The checkout's folder name only: results are committed, paths of one machine are not.
    bitbake: bitbakeDir ? { dir: basename(bitbakeDir), version: bitbakeVersion(bitbakeDir) } : null,
  };
}

/** Writes `data` as JSON to bench/results/<stamp><suffix>.json (or `path`); returns the path. */
export function writeResults(data, { suffix = '', path } = {}) {
  const stamp = new Date().toISOString().slice(0, 16).replace(/:/g, '');
  const file = path ?? join(BENCH_DIR, 'results', `${stamp}${suffix}.json`);
  mkdirSync(join(file, '..'), { recursive: true });
  // Two decimals are plenty for every figure here and keep the files small; one line per array
  // element keeps them readable in a diff.
  const round = (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(2)) : v);
  const body = Object.entries(data).map(([key, value]) => {
    const text = Array.isArray(value)
      ? `[\n${value.map((item) => `  ${JSON.stringify(item, round)}`).join(',\n')}\n ]`
      : JSON.stringify(value, round);
    return ` ${JSON.stringify(key)}: ${text}`;
  });
  writeFileSync(file, `{\n${body.join(',\n')}\n}\n`);
  return file;
}

/** A markdown table from a header row and rows of cells. */
export function markdownTable(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A target's name in table headers. */
export function targetLabel(name) {
  return name === 'bitbake' ? 'BitBake' : name;
}
