import { parseArgs } from 'node:util';
import { createPrClient, isInvokeError, isPrClientError, type PrClient, type ServerStats } from '@prserv/client';
import { isRevision, MAX_TIMER_MS } from '@prserv/core';
import { checkCommandArguments } from './arguments.js';
import type { ConfigFile } from './config-file.js';
import { ConfigError, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { formatHistory, runPreflight } from './release-commands.js';
import { resolveClientSettings } from './settings.js';
import { runStressCommand } from './stress/stress-command.js';

/** The operands of each command, as help and README name them; `[X]` may be left out (only last). */
const COMMAND_OPERANDS: Record<string, readonly string[]> = {
  'get-pr': ['VERSION', 'PKGARCH', 'CHECKSUM'],
  'test-pr': ['VERSION', 'PKGARCH', 'CHECKSUM'],
  'test-package': ['VERSION', 'PKGARCH'],
  'max-package-pr': ['VERSION', 'PKGARCH'],
  'import-one': ['VERSION', 'PKGARCH', 'CHECKSUM', 'VALUE'],
  export: [],
  ping: [],
  'is-readonly': [],
  stats: [],
  'reset-stats': [],
  preflight: ['FILE'],
  history: ['VERSION', 'PKGARCH', '[CHECKSUM]'],
};

/** Options of `prserv client` commands other than `stress`. */
const CLIENT_OPTIONS = {
  server: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  history: { type: 'boolean', default: false },
  version: { type: 'string' },
  pkgarch: { type: 'string' },
  checksum: { type: 'string' },
  colinfo: { type: 'boolean', default: false },
  protocol: { type: 'string' },
} as const;

/** Options that take a value (so that their value is not taken for the command). */
const VALUE_OPTIONS = new Set(
  Object.entries(CLIENT_OPTIONS)
    .filter(([, option]) => option.type === 'string')
    .map(([name]) => `--${name}`),
);

/** Runs `prserv client …`; resolves with the exit code. */
export async function runClientCommand(args: string[], io: CliIo, loadConfig: (path: string) => Promise<ConfigFile>): Promise<number> {
  // `stress` has options of its own: it parses everything around the word itself.
  const stressAt = commandIndex(args);
  if (stressAt >= 0 && args[stressAt] === 'stress') {
    return runStressCommand([...args.slice(0, stressAt), ...args.slice(stressAt + 1)], io, loadConfig);
  }
  checkCommandArguments(args, CLIENT_OPTIONS, 'client', true);
  const { values, positionals } = parseArgs({ args, options: CLIENT_OPTIONS, strict: true, allowPositionals: true });
  const [command, ...operands] = positionals;
  if (!command) {
    throw new UsageError('missing command (stress, get-pr, test-pr, test-package, max-package-pr, import-one, export, ping, is-readonly, stats, reset-stats, preflight, history)');
  }
  const names = COMMAND_OPERANDS[command];
  if (names === undefined) throw new UsageError(`unknown client command "${command}"`);
  const optional = names.at(-1)?.startsWith('[') ? 1 : 0;
  if (operands.length > names.length || operands.length < names.length - optional) {
    // Named as help and README name them: "history takes VERSION PKGARCH [CHECKSUM]", not "takes 3".
    const wanted = names.length === 0 ? 'no arguments' : names.join(' ');
    throw new UsageError(
      `${command} takes ${wanted}, got ${operands.length} argument${operands.length === 1 ? '' : 's'} (see 'prserv client --help')`,
    );
  }
  if (command !== 'export' && (values.version || values.pkgarch || values.checksum || values.colinfo)) {
    throw new UsageError('--version, --pkgarch, --checksum and --colinfo belong to export');
  }
  if (command === 'import-one' && !isRevision(operands[3]!)) {
    // Refused here, before anything is sent: the server would refuse it too, with less context.
    throw new UsageError(`import-one: VALUE must be a revision such as 3 or 1.2, got ${JSON.stringify(operands[3])}`);
  }
  // preview-pr is prserv's own method: preflight pipelines it over prserv's envelope by default.
  const protocol = values.protocol ?? (command === 'preflight' ? 'jsonrpc' : 'asyncrpc');
  if (protocol !== 'asyncrpc' && protocol !== 'jsonrpc') {
    throw new ConfigError(`invalid --protocol ${JSON.stringify(protocol)}: expected asyncrpc or jsonrpc`);
  }
  const timeout = values.timeout === undefined ? 30_000 : Number(values.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) throw new ConfigError(`invalid --timeout ${JSON.stringify(values.timeout)}: expected milliseconds`);
  if (timeout > MAX_TIMER_MS) {
    // A longer timer fires after 1 ms: every request would time out at once.
    throw new ConfigError(`invalid --timeout ${JSON.stringify(values.timeout)}: at most ${MAX_TIMER_MS} ms (the longest timer Node keeps, about 24.8 days)`);
  }
  const file = values.config ? await loadConfig(values.config) : undefined;
  const { serverAddr } = resolveClientSettings(values.server, io.env, file);

  let client: PrClient;
  try {
    client = createPrClient({ address: serverAddr, protocol, requestTimeoutMs: timeout, connectTimeoutMs: Math.min(timeout, 10_000) });
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
  const print = (json: unknown, text: string) => io.stdout.write(values.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
  const [version = '', pkgarch = '', checksum = '', value = ''] = operands;
  const history = values.history;
  try {
    switch (command) {
      case 'get-pr': {
        const pr = await client.getPr({ version, pkgarch, checksum, history });
        print({ value: pr }, pr);
        break;
      }
      case 'test-pr': {
        const pr = await client.testPr({ version, pkgarch, checksum, history });
        print({ value: pr }, pr ?? 'none');
        break;
      }
      case 'test-package': {
        const known = await client.testPackage({ version, pkgarch });
        print({ value: known }, known ? 'true' : 'false');
        break;
      }
      case 'max-package-pr': {
        const pr = await client.maxPackagePr({ version, pkgarch });
        print({ value: pr }, pr ?? 'none');
        break;
      }
      case 'import-one': {
        const stored = await client.importOne({ version, pkgarch, checksum, value });
        print({ value: stored }, stored ?? 'none (read-only server)');
        break;
      }
      case 'export': {
        const result = await client.export({
          version: values.version,
          pkgarch: values.pkgarch,
          checksum: values.checksum,
          colinfo: values.colinfo,
          history,
        });
        if (values.json) {
          print({ metainfo: result.metainfo, datainfo: result.rows }, '');
        } else {
          const lines: string[] = [];
          if ('tbl_name' in result.metainfo) {
            lines.push(`# table ${result.metainfo.tbl_name} (core ${result.metainfo.core_ver})`);
          }
          lines.push(['VERSION', 'PKGARCH', 'CHECKSUM', 'VALUE'].join('\t'));
          for (const row of result.rows) lines.push([row.version, row.pkgarch, row.checksum, row.value].join('\t'));
          io.stdout.write(`${lines.join('\n')}\n`);
        }
        break;
      }
      case 'ping': {
        const alive = await client.ping();
        print({ alive }, alive ? `alive (${serverAddr})` : 'not alive');
        if (!alive) return 1;
        break;
      }
      case 'is-readonly': {
        const readonly = await client.isReadonly();
        print({ readonly }, readonly ? 'true' : 'false');
        break;
      }
      case 'preflight':
        return await runPreflight(client, version, history, values.json, io);
      case 'history': {
        const only = operands[2]; // CHECKSUM, when given
        const revisions = await client.history({ version, pkgarch, checksum: only });
        io.stdout.write(values.json ? `${JSON.stringify({ version, pkgarch, revisions })}\n` : formatHistory(version, pkgarch, revisions, only));
        break;
      }
      case 'stats':
      case 'reset-stats': {
        const stats = command === 'stats' ? await client.stats() : await client.resetStats();
        print(stats, formatStats(stats, command === 'stats' ? 'since' : 'until now, since'));
        break;
      }
    }
    return 0;
  } catch (error) {
    if (isInvokeError(error)) {
      io.stderr.write(`prserv: the server refused the request: ${error.message}\n`);
      return 1;
    }
    if (isPrClientError(error)) {
      io.stderr.write(`prserv: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    await client.close();
  }
}

/** get-stats as a table: one line per method. */
function formatStats(stats: ServerStats, heading: string): string {
  const lines = [`requests ${heading} ${stats.since} (${stats['elapsed-seconds']} s); ${stats.connections} connections open`];
  lines.push(['METHOD', 'COUNT', 'ERRORS', 'MEAN_MS', 'P50_MS', 'P90_MS', 'P99_MS', 'MAX_MS'].join('\t'));
  for (const [method, summary] of Object.entries(stats.requests ?? {})) {
    lines.push(
      [method, summary.count, summary.errors, summary['mean-ms'], summary['p50-ms'], summary['p90-ms'], summary['p99-ms'], summary['max-ms']].join('\t'),
    );
  }
  return lines.join('\n');
}

/** Index of the first argument that is neither an option nor an option's value; -1 if none. */
function commandIndex(args: readonly string[]): number {
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    if (arg === '--') return -1;
    if (!arg.startsWith('-')) return index;
    if (VALUE_OPTIONS.has(arg)) index += 1;
  }
  return -1;
}
