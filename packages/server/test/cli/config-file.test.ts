import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/cli/config-file.js';
import { ConfigError } from '../../src/cli/errors.js';
import { resolveClientSettings, resolveServerSettings } from '../../src/cli/settings.js';

/** Runs `work` and returns the ConfigError it rejects with; fails the test otherwise. */
async function configErrorOfAsync(work: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await work();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('loadConfigFile', () => {
  let dir: string;
  const write = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prserv-config-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a YAML file with server and client sections', async () => {
    const path = await write(
      'prserv.yaml',
      [
        'server:',
        '  database: postgres://db.example/prserv',
        '  bind_addr: 0.0.0.0:9000',
        '  max_connections: 4',
        '  read_only: true',
        '  nohist: false',
        '  log_level: warn',
        'client:',
        '  server_addr: pr.example:9000',
        '',
      ].join('\n'),
    );
    const file = await loadConfigFile(path);
    expect(file.server).toEqual({
      database: 'postgres://db.example/prserv',
      bind_addr: '0.0.0.0:9000',
      max_connections: 4,
      read_only: true,
      nohist: false,
      log_level: 'warn',
    });
    expect(file.client).toEqual({ server_addr: 'pr.example:9000' });
    expect(resolveServerSettings({}, {}, file)).toMatchObject({
      database: 'postgres://db.example/prserv',
      host: '0.0.0.0',
      port: 9000,
      maxConnections: 4,
      readOnly: true,
      nohist: false,
      logLevel: 'warn',
      syncModeGiven: false,
    });
    expect(resolveClientSettings(undefined, {}, file).serverAddr).toBe('pr.example:9000');
  });

  it('loads a JSON file', async () => {
    const path = await write(
      'prserv.json',
      JSON.stringify({ server: { database: '/srv/prserv', max_connections: 2, read_only: 'yes', sync_mode: 'full' }, client: { server_addr: '[::1]:8585' } }),
    );
    const file = await loadConfigFile(path);
    const settings = resolveServerSettings({}, {}, file);
    expect(settings.database).toBe('/srv/prserv');
    expect(settings.maxConnections).toBe(2);
    expect(settings.readOnly).toBe(true);
    expect(settings.syncModeGiven).toBe(true);
    expect(resolveClientSettings(undefined, {}, file).serverAddr).toBe('[::1]:8585');
  });

  it('accepts a file with only one section', async () => {
    const file = await loadConfigFile(await write('client-only.yaml', 'client:\n  server_addr: a:1\n'));
    expect(file).toEqual({ server: {}, client: { server_addr: 'a:1' } });
  });

  it('reads an empty file as no settings', async () => {
    expect(await loadConfigFile(await write('empty.yaml', ''))).toEqual({ server: {}, client: {} });
  });

  it('refuses an unknown key, naming it with its section', async () => {
    const path = await write('unknown-key.yaml', 'server:\n  max_conections: 4\n');
    const error = await configErrorOfAsync(() => loadConfigFile(path));
    expect(error.message).toContain('server.max_conections');
    expect(error.message).toContain(path);
  });

  it('refuses a server key in the client section', async () => {
    const error = await configErrorOfAsync(async () => loadConfigFile(await write('misplaced.yaml', 'client:\n  database: /x\n')));
    expect(error.message).toContain('client.database');
  });

  it('refuses an unknown section', async () => {
    const error = await configErrorOfAsync(async () => loadConfigFile(await write('unknown-section.yaml', 'servr:\n  database: /x\n')));
    expect(error.message).toContain('servr');
  });

  it('refuses a section that is not a mapping', async () => {
    const error = await configErrorOfAsync(async () => loadConfigFile(await write('list-section.yaml', 'server:\n  - database\n')));
    expect(error.message).toContain('server');
  });

  it('refuses a document that is not a mapping', async () => {
    await configErrorOfAsync(async () => loadConfigFile(await write('scalar.yaml', 'just text\n')));
  });

  it('refuses malformed YAML, naming the file on one line', async () => {
    const path = await write('malformed.yaml', 'server: {database: [unclosed\n  read_only: : :\n');
    const error = await configErrorOfAsync(() => loadConfigFile(path));
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/YAML|JSON/);
    expect(error.message).not.toContain('\n');
  });

  it('refuses malformed JSON', async () => {
    const path = await write('malformed.json', '{"server": {"database": "/x",}');
    const error = await configErrorOfAsync(() => loadConfigFile(path));
    expect(error.message).toContain(path);
  });

  it('leads to a refusal, naming the key, of timers past the Node timer limit and of a PostgreSQL URL with a bad port', async () => {
    const path = await write(
      'limits.yaml',
      ['server:', '  request_timeout: 3000000', '  idle_timeout: 2200000', '  batch_wait_ms: 99999999999', ''].join('\n'),
    );
    const file = await loadConfigFile(path);
    const refusal = (server: Record<string, unknown>) => {
      try {
        resolveServerSettings({}, {}, { server, client: {} });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).message;
      }
      return 'accepted';
    };
    expect(refusal(file.server)).toMatch(/^invalid server\.batch_wait_ms in the config file 99999999999: at most 2147483647 ms/);
    expect(refusal({ ...file.server, batch_wait_ms: 0 })).toMatch(
      /^invalid server\.request_timeout in the config file 3000000: at most 2147483\.647 seconds/,
    );
    expect(refusal({ ...file.server, batch_wait_ms: 0, request_timeout: 30 })).toMatch(
      /^invalid server\.idle_timeout in the config file 2200000: at most 2147483\.647 seconds/,
    );
    const database = await write('database.yaml', 'server:\n  database: postgres://prserv:hunter2@db:99999/prserv\n');
    const message = refusal((await loadConfigFile(database)).server);
    expect(message).toBe('invalid server.database in the config file: the port of the PostgreSQL URL is not between 1 and 65535');
  });

  it('refuses a missing file, naming it', async () => {
    const path = join(dir, 'absent.yaml');
    const error = await configErrorOfAsync(() => loadConfigFile(path));
    expect(error.message).toContain(path);
    expect(error.message).toContain('config file');
  });
});
