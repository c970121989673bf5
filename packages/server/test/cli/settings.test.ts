import { describe, expect, it } from 'vitest';
import type { ConfigFile } from '../../src/cli/config-file.js';
import { ConfigError } from '../../src/cli/errors.js';
import { MAX_TIMER_MS } from '@prserv/core';
import {
  DEFAULT_SERVER_ADDR,
  parseBind,
  resolveClientSettings,
  resolveServerSettings,
  SERVER_DEFAULTS,
} from '../../src/cli/settings.js';

const NO_FILE: ConfigFile = { server: {}, client: {} };

function fileWith(server: Record<string, unknown>, client: Record<string, unknown> = {}): ConfigFile {
  return { server, client };
}

/** Runs `work` and returns the ConfigError it throws; fails the test if it throws nothing or something else. */
function configErrorOf(work: () => unknown): ConfigError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}


describe('resolveServerSettings', () => {
  it('uses the documented defaults when nothing is given', () => {
    expect(resolveServerSettings({}, {}, NO_FILE)).toMatchObject({
      database: SERVER_DEFAULTS.database,
      host: 'localhost',
      port: 8585,
      maxConnections: SERVER_DEFAULTS.max_connections,
      readOnly: false,
      nohist: true,
      logLevel: 'info',
      syncModeGiven: false,
    });
    expect(SERVER_DEFAULTS.database).toBe('./prserv-data');
    expect(SERVER_DEFAULTS.bind_addr).toBe('localhost:8585');
  });

  describe('client limits: --max-clients and --allow', () => {
    it('defaults to 1000 clients from anywhere, every one of which may store', () => {
      expect(resolveServerSettings({}, {}, NO_FILE)).toMatchObject({ maxClients: 1000, allow: null, allowWrite: null });
    });

    it('takes --allow-write from the flag, the environment or the config file', () => {
      expect(resolveServerSettings({}, {}, fileWith({ allow_write: '10.1.0.0/16' })).allowWrite).toEqual(['10.1.0.0/16']);
      expect(resolveServerSettings({}, { PRSERV_ALLOW_WRITE: '10.2.0.0/16' }, NO_FILE).allowWrite).toEqual(['10.2.0.0/16']);
      expect(resolveServerSettings({ allowWrite: '10.3.0.0/16,fd00::/8' }, {}, NO_FILE).allowWrite).toEqual(['10.3.0.0/16', 'fd00::/8']);
      expect(configErrorOf(() => resolveServerSettings({ allowWrite: 'builders' }, {}, NO_FILE)).message).toContain('--allow-write');
    });

    it('takes them from flags, environment and config file, in that order', () => {
      const file = fileWith({ max_clients: 7, allow: ['10.0.0.0/8', 'fd00::/8'] });
      expect(resolveServerSettings({}, {}, file)).toMatchObject({ maxClients: 7, allow: ['10.0.0.0/8', 'fd00::/8'] });
      const env = { PRSERV_MAX_CLIENTS: '8', PRSERV_ALLOW: '192.168.0.0/16, ::1' };
      expect(resolveServerSettings({}, env, file)).toMatchObject({ maxClients: 8, allow: ['192.168.0.0/16', '::1'] });
      expect(resolveServerSettings({ maxClients: '9', allow: '127.0.0.1' }, env, file)).toMatchObject({ maxClients: 9, allow: ['127.0.0.1'] });
    });

    it.each([
      [{ allow: '10.0.0.0/33' }, {}, '--allow'],
      [{ allow: ',' }, {}, '--allow'],
      [{}, { PRSERV_ALLOW: 'example.com' }, 'PRSERV_ALLOW'],
      [{ maxClients: '0' }, {}, '--max-clients'],
    ])('refuses %j %j naming %s', (flags, env, source) => {
      expect(configErrorOf(() => resolveServerSettings(flags, env, NO_FILE)).message).toContain(source);
    });

    it('refuses a bad network in the config file, naming the key', () => {
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ allow: ['10.0.0.0/8', 'nowhere'] }))).message).toContain('server.allow');
      // YAML's .inf, which JSON cannot spell, is named as written.
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ max_clients: Number.POSITIVE_INFINITY }))).message).toMatch(/max_clients.* Infinity: /);
    });
  });

  describe('--prepared-statements', () => {
    it('is on by default and turned off from the flag, the environment or the file', () => {
      expect(resolveServerSettings({}, {}, NO_FILE).preparedStatements).toBe(true);
      expect(resolveServerSettings({}, {}, fileWith({ prepared_statements: false })).preparedStatements).toBe(false);
      expect(resolveServerSettings({}, { PRSERV_PREPARED_STATEMENTS: 'off' }, fileWith({ prepared_statements: true })).preparedStatements).toBe(false);
      expect(resolveServerSettings({ preparedStatements: 'on' }, { PRSERV_PREPARED_STATEMENTS: 'off' }, NO_FILE).preparedStatements).toBe(true);
      expect(configErrorOf(() => resolveServerSettings({ preparedStatements: 'sometimes' }, {}, NO_FILE)).message).toContain('--prepared-statements');
    });
  });

  describe('--http, --log-format and --max-key-bytes', () => {
    it('default to no HTTP endpoint, auto log format and 512-byte keys', () => {
      expect(resolveServerSettings({}, {}, NO_FILE)).toMatchObject({ http: null, logFormat: 'auto', maxKeyBytes: 512 });
    });

    it('take them from flags, environment and config file, in that order', () => {
      const file = fileWith({ http: '0.0.0.0:9585', log_format: 'json', max_key_bytes: 256 });
      expect(resolveServerSettings({}, {}, file)).toMatchObject({ http: { host: '0.0.0.0', port: 9585 }, logFormat: 'json', maxKeyBytes: 256 });
      const env = { PRSERV_HTTP: '127.0.0.1:9000', PRSERV_LOG_FORMAT: 'pretty', PRSERV_MAX_KEY_BYTES: '600' };
      expect(resolveServerSettings({}, env, file)).toMatchObject({ http: { host: '127.0.0.1', port: 9000 }, logFormat: 'pretty', maxKeyBytes: 600 });
      expect(resolveServerSettings({ http: '[::1]:9001', logFormat: 'auto', maxKeyBytes: '640' }, env, file)).toMatchObject({
        http: { host: '::1', port: 9001 },
        logFormat: 'auto',
        maxKeyBytes: 640,
      });
    });

    it('lets an empty PRSERV_HTTP fall through, and an empty flag turn the endpoint off', () => {
      expect(resolveServerSettings({}, { PRSERV_HTTP: '' }, fileWith({ http: ':9585' })).http).toEqual({ host: '0.0.0.0', port: 9585 });
      expect(resolveServerSettings({ http: '' }, {}, fileWith({ http: ':9585' })).http).toBeNull();
    });

    it.each([
      [{ http: 'metrics' }, {}, '--http'],
      [{}, { PRSERV_LOG_FORMAT: 'xml' }, 'PRSERV_LOG_FORMAT'],
      [{ maxKeyBytes: '641' }, {}, '--max-key-bytes'],
      [{ maxKeyBytes: '0' }, {}, '--max-key-bytes'],
    ])('refuses %j %j naming %s', (flags, env, source) => {
      expect(configErrorOf(() => resolveServerSettings(flags, env, NO_FILE)).message).toContain(source);
    });
  });

  describe('connection timeouts and buffers', () => {
    it('defaults to a 30 s request timeout, no idle timeout and 1 MiB of unread answers', () => {
      expect(resolveServerSettings({}, {}, NO_FILE)).toMatchObject({
        requestTimeoutMs: 30_000,
        idleTimeoutMs: 0,
        maxUnreadBytes: 1_048_576,
      });
    });

    it('takes them from flags, environment and config file, in that order, in seconds', () => {
      const file = fileWith({ request_timeout: 5, idle_timeout: 3600, max_unread_bytes: 4096 });
      expect(resolveServerSettings({}, {}, file)).toMatchObject({ requestTimeoutMs: 5_000, idleTimeoutMs: 3_600_000, maxUnreadBytes: 4096 });
      const env = { PRSERV_REQUEST_TIMEOUT: '0.25', PRSERV_IDLE_TIMEOUT: '0', PRSERV_MAX_UNREAD_BYTES: '8192' };
      expect(resolveServerSettings({}, env, file)).toMatchObject({ requestTimeoutMs: 250, idleTimeoutMs: 0, maxUnreadBytes: 8192 });
      expect(resolveServerSettings({ requestTimeout: '60', idleTimeout: '1.5', maxUnreadBytes: '65536' }, env, file)).toMatchObject({
        requestTimeoutMs: 60_000,
        idleTimeoutMs: 1_500,
        maxUnreadBytes: 65_536,
      });
    });

    it.each([
      [{ requestTimeout: '0' }, {}, '--request-timeout'],
      [{ requestTimeout: '-1' }, {}, '--request-timeout'],
      [{ requestTimeout: '0.0001' }, {}, '--request-timeout'],
      [{}, { PRSERV_IDLE_TIMEOUT: '5m' }, 'PRSERV_IDLE_TIMEOUT'],
      [{ maxUnreadBytes: '0' }, {}, '--max-unread-bytes'],
      [{ maxUnreadBytes: '1MiB' }, {}, '--max-unread-bytes'],
    ])('refuses %j %j naming %s', (flags, env, source) => {
      expect(configErrorOf(() => resolveServerSettings(flags, env, NO_FILE)).message).toContain(source);
    });
  });

  describe('settings that become timers stop at the longest Node timer (2147483647 ms)', () => {
    it('accepts the longest timer in seconds and in ms', () => {
      expect(MAX_TIMER_MS).toBe(2_147_483_647);
      expect(resolveServerSettings({ requestTimeout: '2147483.647', idleTimeout: '2147483', batchWaitMs: '2147483647' }, {}, NO_FILE)).toMatchObject({
        requestTimeoutMs: 2_147_483_647,
        idleTimeoutMs: 2_147_483_000,
        batchWaitMs: 2_147_483_647,
      });
    });

    it.each([
      [{ requestTimeout: '3000000' }, {}, NO_FILE, 'invalid --request-timeout "3000000": at most 2147483.647 seconds'],
      [{ requestTimeout: '2147483.648' }, {}, NO_FILE, 'invalid --request-timeout "2147483.648": at most 2147483.647 seconds'],
      [{}, { PRSERV_REQUEST_TIMEOUT: '31536000' }, NO_FILE, 'invalid PRSERV_REQUEST_TIMEOUT "31536000": at most 2147483.647 seconds'],
      [{}, {}, fileWith({ request_timeout: 3e6 }), 'invalid server.request_timeout in the config file 3000000: at most 2147483.647 seconds'],
      [{ idleTimeout: '2200000' }, {}, NO_FILE, 'invalid --idle-timeout "2200000": at most 2147483.647 seconds'],
      [{}, { PRSERV_IDLE_TIMEOUT: '2200000' }, NO_FILE, 'invalid PRSERV_IDLE_TIMEOUT "2200000": at most 2147483.647 seconds'],
      [{}, {}, fileWith({ idle_timeout: 2_200_000 }), 'invalid server.idle_timeout in the config file 2200000: at most 2147483.647 seconds'],
      [{ batchWaitMs: '2147483648' }, {}, NO_FILE, 'invalid --batch-wait "2147483648": at most 2147483647 ms'],
      [{}, { PRSERV_BATCH_WAIT_MS: '99999999999' }, NO_FILE, 'invalid PRSERV_BATCH_WAIT_MS "99999999999": at most 2147483647 ms'],
      [{}, {}, fileWith({ batch_wait_ms: 2 ** 31 }), 'invalid server.batch_wait_ms in the config file 2147483648: at most 2147483647 ms'],
    ])('refuses %j %j %j: %s', (flags, env, file, message) => {
      const error = configErrorOf(() => resolveServerSettings(flags, env, file));
      expect(error.message.slice(0, message.length + 2)).toBe(`${message} (`);
      expect(error.message).not.toContain('\n');
    });
  });

  describe('PostgreSQL URLs', () => {
    it.each([
      'postgres://prserv@db.example/prserv',
      'postgresql://u:p@127.0.0.1:5432/prserv',
      'postgres://u@[::1]:65535/prserv',
      // As pg reads them: no host after user@ (the socket from PGHOST), a space, the port as a parameter.
      'postgres://u@/prserv',
      'postgres://u:pass word@h/prserv',
      'postgres:///prserv?host=/var/run/postgresql&port=5433',
    ])('accepts %s', (database) => {
      expect(resolveServerSettings({ database }, {}, NO_FILE).database).toBe(database);
    });

    it.each([
      ['postgres://postgres:s3cret@127.0.0.1:99999/x', 'the port of the PostgreSQL URL is not between 1 and 65535'],
      ['postgres://postgres:s3cret@127.0.0.1:0/x', 'the port of the PostgreSQL URL is not between 1 and 65535'],
      ['postgres://u:s3cret@h/x?port=70000', 'port="70000" of the PostgreSQL URL is not between 1 and 65535'],
      ['postgres://u:s3cret@[::1/x', 'not a valid PostgreSQL URL'],
    ])('refuses %s without echoing it: %s', (database, mistake) => {
      for (const [flags, env, file, source] of [
        [{ database }, {}, NO_FILE, '--database'],
        [{}, { PRSERV_DATABASE: database }, NO_FILE, 'PRSERV_DATABASE'],
        [{}, {}, fileWith({ database }), 'server.database in the config file'],
      ] as const) {
        const error = configErrorOf(() => resolveServerSettings(flags, env, file));
        expect(error.message.slice(0, `invalid ${source}: ${mistake}`.length)).toBe(`invalid ${source}: ${mistake}`);
        expect(error.message).not.toContain('s3cret');
        expect(error.message).not.toContain('\n');
      }
    });
  });

  it('works without a config file argument', () => {
    expect(resolveServerSettings({}, {}).port).toBe(8585);
  });

  describe('precedence: flags > environment > config file > defaults', () => {
    // Each row: the flag, env and file spellings of one setting and how the resolved settings
    // expose it. Each source's value differs from the one below it (booleans alternate), so
    // every layer is seen to win over the next.
    const cases = [
      {
        setting: 'database',
        flag: { database: '/flag/store' },
        env: { PRSERV_DATABASE: 'postgres://env/db' },
        file: { database: '/file/store' },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.database,
        values: ['/flag/store', 'postgres://env/db', '/file/store', SERVER_DEFAULTS.database],
      },
      {
        setting: 'bind_addr',
        flag: { bind: '127.0.0.1:1111' },
        env: { PRSERV_BIND_ADDR: '0.0.0.0:2222' },
        file: { bind_addr: 'example.org:3333' },
        read: (s: ReturnType<typeof resolveServerSettings>) => `${s.host}:${s.port}`,
        values: ['127.0.0.1:1111', '0.0.0.0:2222', 'example.org:3333', 'localhost:8585'],
      },
      {
        setting: 'max_connections',
        flag: { maxConnections: '7' },
        env: { PRSERV_MAX_CONNECTIONS: '5' },
        file: { max_connections: 3 },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.maxConnections,
        values: [7, 5, 3, SERVER_DEFAULTS.max_connections],
      },
      {
        setting: 'read_only',
        flag: { readOnly: true },
        env: { PRSERV_READ_ONLY: '0' },
        file: { read_only: true },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.readOnly,
        values: [true, false, true, false],
      },
      {
        setting: 'nohist',
        flag: { nohist: false },
        env: { PRSERV_NOHIST: '1' },
        file: { nohist: false },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.nohist,
        values: [false, true, false, true],
      },
      {
        setting: 'log_level',
        flag: { logLevel: 'debug' },
        env: { PRSERV_LOG_LEVEL: 'warn' },
        file: { log_level: 'error' },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.logLevel,
        values: ['debug', 'warn', 'error', 'info'],
      },
      {
        setting: 'batch_size',
        flag: { batchSize: '64' },
        env: { PRSERV_BATCH_SIZE: '32' },
        file: { batch_size: 16 },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.batchSize,
        values: [64, 32, 16, 256],
      },
      {
        setting: 'batch_wait_ms',
        flag: { batchWaitMs: '0' },
        env: { PRSERV_BATCH_WAIT_MS: '2' },
        file: { batch_wait_ms: 5 },
        read: (s: ReturnType<typeof resolveServerSettings>) => s.batchWaitMs,
        values: [0, 2, 5, 0],
      },
    ] as const;

    for (const { setting, flag, env, file, read, values } of cases) {
      it(`takes ${setting} from the flag over the environment and the file`, () => {
        expect(read(resolveServerSettings(flag, env, fileWith(file)))).toEqual(values[0]);
      });
      it(`takes ${setting} from the environment over the file`, () => {
        expect(read(resolveServerSettings({}, env, fileWith(file)))).toEqual(values[1]);
      });
      it(`takes ${setting} from the file when neither flag nor environment give it`, () => {
        expect(read(resolveServerSettings({}, {}, fileWith(file)))).toEqual(values[2]);
      });
      it(`falls back to the default ${setting}`, () => {
        expect(read(resolveServerSettings({}, {}, NO_FILE))).toEqual(values[3]);
      });
    }

    it('lets a true read_only in the file stand when the flag is absent', () => {
      expect(resolveServerSettings({}, {}, fileWith({ read_only: true })).readOnly).toBe(true);
      expect(resolveServerSettings({ readOnly: true }, { PRSERV_READ_ONLY: '0' }, NO_FILE).readOnly).toBe(true);
    });

    it('lets the environment turn read-only off against the file', () => {
      expect(resolveServerSettings({}, { PRSERV_READ_ONLY: 'no' }, fileWith({ read_only: true })).readOnly).toBe(false);
    });

    it('lets --history (nohist false) win over PRSERV_NOHIST=1 and the file', () => {
      expect(resolveServerSettings({ nohist: false }, { PRSERV_NOHIST: '1' }, fileWith({ nohist: true })).nohist).toBe(false);
    });

    it('treats an empty environment variable as not set', () => {
      const settings = resolveServerSettings({}, { PRSERV_DATABASE: '', PRSERV_MAX_CONNECTIONS: '' }, fileWith({ database: '/file/store', max_connections: 4 }));
      expect(settings.database).toBe('/file/store');
      expect(settings.maxConnections).toBe(4);
    });

    it('ignores PRSERV_SERVER_ADDR and the client section when resolving the server', () => {
      const settings = resolveServerSettings({}, { PRSERV_SERVER_ADDR: 'elsewhere:1' }, fileWith({}, { server_addr: 'other:2' }));
      expect(`${settings.host}:${settings.port}`).toBe('localhost:8585');
    });
  });

  describe('sync mode', () => {
    it('flags --sync-mode as given', () => {
      expect(resolveServerSettings({ syncMode: 'full' }, {}, NO_FILE).syncModeGiven).toBe(true);
    });
    it('flags PRSERV_SYNC_MODE as given', () => {
      expect(resolveServerSettings({}, { PRSERV_SYNC_MODE: 'normal' }, NO_FILE).syncModeGiven).toBe(true);
    });
    it('flags sync_mode in the config file as given', () => {
      expect(resolveServerSettings({}, {}, fileWith({ sync_mode: 'off' })).syncModeGiven).toBe(true);
    });
    it('does not flag sync mode when none is given', () => {
      expect(resolveServerSettings({}, {}, NO_FILE).syncModeGiven).toBe(false);
    });
  });

  describe('booleans', () => {
    const spellings = [
      ['1', true],
      ['0', false],
      ['true', true],
      ['false', false],
      ['yes', true],
      ['no', false],
      ['TRUE', true],
      ['No', false],
    ] as const;
    for (const [text, expected] of spellings) {
      it(`reads PRSERV_READ_ONLY=${text} and PRSERV_NOHIST=${text} as ${expected}`, () => {
        const settings = resolveServerSettings({}, { PRSERV_READ_ONLY: text, PRSERV_NOHIST: text }, NO_FILE);
        expect(settings.readOnly).toBe(expected);
        expect(settings.nohist).toBe(expected);
      });
    }

    it('reads YAML booleans, numbers and strings in the config file', () => {
      expect(resolveServerSettings({}, {}, fileWith({ read_only: true, nohist: false })).readOnly).toBe(true);
      expect(resolveServerSettings({}, {}, fileWith({ read_only: 1 })).readOnly).toBe(true);
      expect(resolveServerSettings({}, {}, fileWith({ nohist: 0 })).nohist).toBe(false);
      expect(resolveServerSettings({}, {}, fileWith({ read_only: 'yes' })).readOnly).toBe(true);
    });
  });

  describe('bad values throw a ConfigError naming the setting', () => {
    it('refuses a non-numeric max connections from the environment', () => {
      const error = configErrorOf(() => resolveServerSettings({}, { PRSERV_MAX_CONNECTIONS: 'abc' }, NO_FILE));
      expect(error.message).toContain('PRSERV_MAX_CONNECTIONS');
      expect(error.message).toContain('abc');
      expect(error.code).toBe('CONFIG_INVALID');
    });

    it('refuses a batch size of zero and a negative batch wait, naming the flag', () => {
      expect(configErrorOf(() => resolveServerSettings({ batchSize: '0' }, {}, NO_FILE)).message).toBe(
        'invalid --batch-size "0": expected a positive integer',
      );
      expect(configErrorOf(() => resolveServerSettings({ batchWaitMs: '-1' }, {}, NO_FILE)).message).toBe(
        'invalid --batch-wait "-1": expected a whole number (0 or more)',
      );
      expect(configErrorOf(() => resolveServerSettings({}, { PRSERV_BATCH_WAIT_MS: 'soon' }, NO_FILE)).message).toMatch(
        /^invalid PRSERV_BATCH_WAIT_MS "soon"/,
      );
    });

    it('refuses zero max connections from the flag', () => {
      const error = configErrorOf(() => resolveServerSettings({ maxConnections: '0' }, {}, NO_FILE));
      expect(error.message).toContain('--max-connections');
    });

    it('refuses a non-integer max connections from the file', () => {
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ max_connections: 'abc' }))).message).toContain('server.max_connections');
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ max_connections: 0 }))).message).toContain('server.max_connections');
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ max_connections: 2.5 }))).message).toContain('server.max_connections');
    });

    it('refuses a bind address without a port from every source', () => {
      expect(configErrorOf(() => resolveServerSettings({ bind: 'nohost' }, {}, NO_FILE)).message).toContain('--bind');
      expect(configErrorOf(() => resolveServerSettings({}, { PRSERV_BIND_ADDR: 'nohost' }, NO_FILE)).message).toContain('PRSERV_BIND_ADDR');
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ bind_addr: 'nohost' }))).message).toContain('server.bind_addr');
    });

    it('refuses a read-only value that is not a boolean', () => {
      expect(configErrorOf(() => resolveServerSettings({}, { PRSERV_READ_ONLY: 'maybe' }, NO_FILE)).message).toContain('PRSERV_READ_ONLY');
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ read_only: 'maybe' }))).message).toContain('server.read_only');
    });

    it('refuses a nohist value that is not a boolean', () => {
      expect(configErrorOf(() => resolveServerSettings({}, { PRSERV_NOHIST: 'sometimes' }, NO_FILE)).message).toContain('PRSERV_NOHIST');
    });

    it('refuses an unknown log level', () => {
      expect(configErrorOf(() => resolveServerSettings({ logLevel: 'loud' }, {}, NO_FILE)).message).toContain('--log-level');
      expect(configErrorOf(() => resolveServerSettings({}, { PRSERV_LOG_LEVEL: 'loud' }, NO_FILE)).message).toContain('PRSERV_LOG_LEVEL');
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ log_level: 'loud' }))).message).toContain('server.log_level');
    });

    it('refuses a database that is not a string in the file', () => {
      expect(configErrorOf(() => resolveServerSettings({}, {}, fileWith({ database: 42 }))).message).toContain('server.database');
    });

    it('refuses an empty database', () => {
      expect(configErrorOf(() => resolveServerSettings({ database: '  ' }, {}, NO_FILE)).message).toContain('database');
    });

    it('keeps each message on one line', () => {
      const error = configErrorOf(() => resolveServerSettings({}, { PRSERV_BIND_ADDR: 'nonsense' }, NO_FILE));
      expect(error.message).not.toContain('\n');
    });
  });
});

describe('resolveClientSettings', () => {
  it('defaults to localhost:8585', () => {
    expect(resolveClientSettings(undefined, {}, NO_FILE)).toEqual({ serverAddr: 'localhost:8585' });
    expect(DEFAULT_SERVER_ADDR).toBe('localhost:8585');
  });

  it('takes server_addr from the flag over the environment and the file', () => {
    const settings = resolveClientSettings('flag:1', { PRSERV_SERVER_ADDR: 'env:2' }, fileWith({}, { server_addr: 'file:3' }));
    expect(settings.serverAddr).toBe('flag:1');
  });

  it('takes server_addr from the environment over the file', () => {
    expect(resolveClientSettings(undefined, { PRSERV_SERVER_ADDR: 'env:2' }, fileWith({}, { server_addr: 'file:3' })).serverAddr).toBe('env:2');
  });

  it('takes server_addr from the file when neither flag nor environment give it', () => {
    expect(resolveClientSettings(undefined, {}, fileWith({}, { server_addr: 'file:3' })).serverAddr).toBe('file:3');
  });

  it('treats an empty PRSERV_SERVER_ADDR as not set', () => {
    expect(resolveClientSettings(undefined, { PRSERV_SERVER_ADDR: '' }, fileWith({}, { server_addr: 'file:3' })).serverAddr).toBe('file:3');
  });

  it('accepts an IPv6 address in brackets', () => {
    expect(resolveClientSettings('[::1]:8585', {}, NO_FILE).serverAddr).toBe('[::1]:8585');
  });

  it('refuses a server_addr that is not a string in the file', () => {
    expect(configErrorOf(() => resolveClientSettings(undefined, {}, fileWith({}, { server_addr: 8585 }))).message).toContain('client.server_addr');
  });

  it('refuses a malformed address, naming where it came from', () => {
    expect(configErrorOf(() => resolveClientSettings('nonsense', {}, NO_FILE)).message).toContain('--server');
    expect(configErrorOf(() => resolveClientSettings(undefined, { PRSERV_SERVER_ADDR: 'nonsense' }, NO_FILE)).message).toContain('PRSERV_SERVER_ADDR');
    expect(configErrorOf(() => resolveClientSettings(undefined, {}, fileWith({}, { server_addr: 'nonsense' }))).message).toContain('client.server_addr');
  });
});

describe('parseBind', () => {
  it('parses HOST:PORT', () => {
    expect(parseBind('localhost:8585')).toEqual({ host: 'localhost', port: 8585 });
    expect(parseBind('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('parses [IPv6]:PORT', () => {
    expect(parseBind('[::1]:8585')).toEqual({ host: '::1', port: 8585 });
    expect(parseBind('[::]:9')).toEqual({ host: '::', port: 9 });
  });

  it('reads an empty host as every IPv4 address', () => {
    expect(parseBind(':8585')).toEqual({ host: '0.0.0.0', port: 8585 });
  });

  it('refuses an address without a port, naming the source', () => {
    const error = configErrorOf(() => parseBind('nohost', 'PRSERV_BIND_ADDR'));
    expect(error.message).toContain('PRSERV_BIND_ADDR');
    expect(error.message).toContain('nohost');
  });

  it('refuses a port above 65535 and a non-numeric port', () => {
    configErrorOf(() => parseBind('localhost:65536'));
    configErrorOf(() => parseBind('localhost:http'));
    configErrorOf(() => parseBind('::1:8585'));
  });
});
