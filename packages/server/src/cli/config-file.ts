import { readFile } from 'node:fs/promises';
import { ConfigError } from './errors.js';

/** The `server:` and `client:` sections of a config file. */
export interface ConfigFile {
  readonly server: Readonly<Record<string, unknown>>;
  readonly client: Readonly<Record<string, unknown>>;
}

const SERVER_FILE_KEYS = [
  'database',
  'bind_addr',
  'read_only',
  'nohist',
  'max_connections',
  'log_level',
  'sync_mode',
  'upstream',
  'batch_size',
  'batch_wait_ms',
  'max_clients',
  'allow',
  'allow_write',
  'request_timeout',
  'idle_timeout',
  'max_unread_bytes',
  'http',
  'log_format',
  'max_key_bytes',
  'prepared_statements',
];
const CLIENT_FILE_KEYS = ['server_addr'];

/** Reads a YAML or JSON config file (JSON is YAML) with `server:` and `client:` sections. */
export async function loadConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let document: unknown;
  try {
    // Loaded here: most runs have no config file, and the parser costs a tenth of a second to load.
    const { parse } = await import('yaml');
    document = parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path}: not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  if (document === null || document === undefined) return { server: {}, client: {} };
  if (!isRecord(document)) throw new ConfigError(`config file ${path}: expected a mapping with server: and client: sections`);
  for (const key of Object.keys(document)) {
    if (key !== 'server' && key !== 'client') throw new ConfigError(`config file ${path}: unknown section "${key}" (expected server or client)`);
  }
  const section = (name: 'server' | 'client', allowed: string[]) => {
    const value = document[name] ?? {};
    if (!isRecord(value)) throw new ConfigError(`config file ${path}: section "${name}" must be a mapping`);
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw new ConfigError(`config file ${path}: unknown key "${name}.${key}" (known: ${allowed.join(', ')})`);
    }
    return value;
  };
  return { server: section('server', SERVER_FILE_KEYS), client: section('client', CLIENT_FILE_KEYS) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
