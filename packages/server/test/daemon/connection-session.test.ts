import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrEngine, type PrStore, PrStoreError } from '@prserv/core';
import { createDuplexPair, createPostgresDatabase, type DuplexEnd, type TestDatabase } from '@prserv/test-support';
import { ServerStats } from '../../src/daemon/server-stats.js';
import { ConnectionSession, type SessionOptions } from '../../src/daemon/connection-session.js';
import type { ServerLogger } from '../../src/daemon/logger.js';

// The wire text is written out here rather than built with the codec, so a codec change cannot
// hide a session bug (docs/protocol.md §2).
const HELLO = 'PRSERVICE 1.0\nneeds-headers: false\n\n';
const PING = '{"ping": {}}\n';
const PONG = '{"alive":true}\n';
const MAX_QUEUED = 16; // docs/protocol.md §2.5, §10

function request(method: string, params: object): string {
  return `${JSON.stringify({ [method]: params })}\n`;
}

function invokeError(message: string): string {
  return `${JSON.stringify({ 'invoke-error': { message } })}\n`;
}

/** Lets every pending stream callback and promise of the in-memory connection run. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) await nextTurn();
}

/** The client's view of the connection: lines in, with a deadline so a hang fails with what arrived. */
class PeerReader {
  readonly #stream: Readable;
  #unread = '';
  #received = '';
  #ended = false;
  #wake: (() => void)[] = [];

  constructor(stream: Readable) {
    this.#stream = stream;
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      this.#unread += text;
      this.#received += text;
      this.#notify();
    });
    stream.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
  }

  /** Everything received so far, read or not. */
  get received(): string {
    return this.#received;
  }

  get ended(): boolean {
    return this.#ended;
  }

  async line(): Promise<string> {
    await this.#until(() => this.#unread.includes('\n') || this.#ended, 'a line');
    const newline = this.#unread.indexOf('\n');
    if (newline < 0) throw new Error(`the stream ended; unread: ${JSON.stringify(this.#unread)}`);
    const line = this.#unread.slice(0, newline);
    this.#unread = this.#unread.slice(newline + 1);
    return line;
  }

  async message(): Promise<unknown> {
    return JSON.parse(await this.line()) as unknown;
  }

  /** Waits for the end of the stream and returns what was not read before it. */
  async rest(): Promise<string> {
    await this.#until(() => this.#ended, 'the end of the stream');
    const rest = this.#unread;
    this.#unread = '';
    return rest;
  }

  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    this.#stream.resume();
  }

  async #until(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 3_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received: ${JSON.stringify(this.#received)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}

interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

function createRecordingLogger(): ServerLogger & { readonly entries: LogEntry[]; at(level: LogEntry['level']): LogEntry[] } {
  const entries: LogEntry[] = [];
  const record = (level: LogEntry['level']) => (fields: object, message: string) => {
    entries.push({ level, fields: fields as Record<string, unknown>, message });
  };
  return {
    entries,
    at: (level) => entries.filter((entry) => entry.level === level),
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    isLevelEnabled: () => true,
  };
}

type EngineMethod = Exclude<keyof PrEngine, 'readOnly'>;

/** One call the engine received; the test settles it. */
interface EngineCall {
  readonly method: EngineMethod;
  readonly input: unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * An engine whose answers the test gives: a method listed in `answers` answers at once, any other
 * waits until the test settles its call.
 */
function createControlledEngine(answers: Partial<Record<EngineMethod, (input: unknown) => unknown>> = {}) {
  const calls: EngineCall[] = [];
  let wake: (() => void)[] = [];
  const method =
    (name: EngineMethod) =>
    (input: unknown): Promise<never> =>
      new Promise((resolve, reject) => {
        calls.push({ method: name, input, resolve: resolve as (value: unknown) => void, reject });
        const answer = answers[name];
        if (answer) resolve(answer(input) as never);
        const woken = wake;
        wake = [];
        for (const resolveWait of woken) resolveWait();
      });
  const engine: PrEngine = {
    readOnly: false,
    getPr: method('getPr'),
    testPr: method('testPr'),
    testPackage: method('testPackage'),
    maxPackagePr: method('maxPackagePr'),
    importOne: method('importOne'),
    exportRows: method('exportRows'),
  };
  return {
    engine,
    calls,
    /** The call numbered `index` (from 0), once it has been made. */
    async call(index: number): Promise<EngineCall> {
      const deadline = Date.now() + 3_000;
      while (calls.length <= index) {
        if (Date.now() > deadline) throw new Error(`the engine got ${calls.length} calls, not ${index + 1}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          wake.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return calls[index]!;
    },
  };
}

const ends: DuplexEnd[] = [];

afterEach(() => {
  for (const end of ends.splice(0)) end.destroy();
});

/** A session on the server end of an in-memory connection, and the client's end of it. */
function openSession(engine: PrEngine, options: Partial<Omit<SessionOptions, 'context'>> & { highWaterMark?: number } = {}) {
  const [client, server] = createDuplexPair({ highWaterMark: options.highWaterMark });
  ends.push(client, server);
  const logger = createRecordingLogger();
  const session = new ConnectionSession(server, {
    context: { engine, defaultHistory: false },
    maxMessageBytes: options.maxMessageBytes ?? 1_048_576,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 0,
    maxUnreadBytes: options.maxUnreadBytes ?? 1_048_576,
    logger,
    ...(options.stats ? { stats: options.stats } : {}),
  });
  return { client, server, session, logger, reader: new PeerReader(client) };
}

describe('ConnectionSession over a PostgreSQL store', () => {
  let database: TestDatabase;
  let store: PrStore;

  beforeAll(async () => {
    database = await createPostgresDatabase('connection_session');
    store = await openPrStore({ database: database.url });
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('answers a request once the client has sent PRSERVICE 1.0 and an empty line', async () => {
    const { client, reader } = openSession(store);
    // The hello may arrive in pieces, split anywhere.
    client.write('PRSERVICE 1.');
    client.write('0\nneeds-headers: fal');
    client.write('se\n');
    client.write(`\n${request('get-pr', { version: 'hello-1.0', pkgarch: 'core2-64', checksum: 'c0', history: false })}`);
    expect(await reader.line()).toBe('{"value":"0"}');
  });

  it('answers many requests written at once in the order they were sent', async () => {
    const { client, reader } = openSession(store);
    const pkg = { version: 'pipelined-1.0', pkgarch: 'core2-64' };
    let text = HELLO;
    const expected: unknown[] = [];
    for (let index = 0; index < 40; index += 1) {
      const checksum = `c${index}`;
      // Each get-pr allocates the next revision, so an answer out of place shows in its value.
      text += request('test-pr', { ...pkg, checksum, history: false });
      text += request('get-pr', { ...pkg, checksum, history: false });
      text += request('max-package-pr', pkg);
      expected.push({ value: null }, { value: String(index) }, { value: String(index) });
    }
    text += PING;
    expected.push({ alive: true });
    client.write(text);
    const answers: unknown[] = [];
    for (let index = 0; index < expected.length; index += 1) answers.push(await reader.message());
    expect(answers).toEqual(expected);
  });
});

describe('ConnectionSession hello', () => {
  it('sends an empty header block before the first answer when the client asks for headers', async () => {
    const { client, reader } = openSession(createControlledEngine().engine);
    client.write(`PRSERVICE 1.0\nneeds-headers: true\n\n${PING}`);
    expect(await reader.line()).toBe('');
    expect(await reader.line()).toBe(PONG.trimEnd());
    expect(reader.received).toBe(`\n${PONG}`);
  });

  it('sends no header block to a client that does not ask for headers', async () => {
    const { client, reader } = openSession(createControlledEngine().engine);
    client.write(`${HELLO}${PING}`);
    await reader.line();
    expect(reader.received).toBe(PONG);
  });

  it('refuses another protocol with one invoke-error and ends the stream', async () => {
    const { client, reader, logger } = openSession(createControlledEngine().engine);
    client.write(`HASHEQUIVALENCE 1.1\nneeds-headers: false\n\n${PING}`);
    expect(await reader.rest()).toBe(
      invokeError('unsupported protocol "HASHEQUIVALENCE 1.1": this is a PR server, expected "PRSERVICE 1.0"'),
    );
    expect(logger.at('info')).toEqual([expect.objectContaining({ fields: expect.objectContaining({ code: 'BAD_HANDSHAKE' }) })]);
  });

  it('refuses a protocol line that is not two words before the hello is complete', async () => {
    const { client, reader } = openSession(createControlledEngine().engine);
    client.write('PRSERVICE\n');
    expect(await reader.rest()).toBe(invokeError('expected a protocol line such as "PRSERVICE 1.0", got "PRSERVICE"'));
  });

  it('drops a peer that has not completed its hello in time, without a word', async () => {
    const { client, server, session, reader, logger } = openSession(createControlledEngine().engine, {
      handshakeTimeoutMs: 40,
    });
    client.write('PRSERVICE 1.0\n');
    expect(await reader.rest()).toBe('');
    await session.closed;
    expect(server.destroyed).toBe(true);
    expect(logger.at('info').map((entry) => entry.message)).toEqual(['no hello in time; connection dropped']);
  });

  it('drops a peer that trickles its hello a byte at a time, however steadily', async () => {
    const { client, session, logger } = openSession(createControlledEngine().engine, { handshakeTimeoutMs: 100 });
    const started = Date.now();
    const hello = 'PRSERVICE 1.0\nneeds-headers: true\n\n';
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent < hello.length && !client.destroyed) client.write(hello[sent++]!);
    }, 10);
    await session.closed;
    clearInterval(trickle);
    expect(sent).toBeLessThan(hello.length);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(logger.at('info').map((entry) => entry.message)).toEqual(['no hello in time; connection dropped']);
  });

  it('keeps a peer that has sent its hello past the hello timeout', async () => {
    const { client, server, reader } = openSession(createControlledEngine().engine, { handshakeTimeoutMs: 40 });
    client.write(`${HELLO}${PING}`);
    expect(await reader.line()).toBe(PONG.trimEnd());
    await sleep(120);
    expect(server.destroyed).toBe(false);
    client.write(PING);
    expect(await reader.line()).toBe(PONG.trimEnd());
  });
});

describe('ConnectionSession request timeout', () => {
  it('drops a peer whose request never ends, though bytes keep coming', async () => {
    const { client, session, logger } = openSession(createControlledEngine().engine, { requestTimeoutMs: 100 });
    client.write(`${HELLO}{"ping": {`);
    const trickle = setInterval(() => client.destroyed || client.write(' '), 10);
    await session.closed;
    clearInterval(trickle);
    const [entry] = logger.at('info');
    expect(entry?.message).toBe('request not received whole in time; connection dropped');
    expect(entry?.fields.bufferedBytes).toBeGreaterThan(0);
  });

  it('drops a peer whose chunk stream never ends', async () => {
    const { client, session, logger } = openSession(createControlledEngine().engine, { requestTimeoutMs: 100 });
    client.write(`${HELLO}{"chunk-stream": null}\n`);
    const trickle = setInterval(() => client.destroyed || client.write('{"ping"\n'), 10);
    await session.closed;
    clearInterval(trickle);
    expect(logger.at('info').map((entry) => entry.message)).toEqual(['request not received whole in time; connection dropped']);
  });

  it('does not count the time between requests, nor a request the server is still answering', async () => {
    const controlled = createControlledEngine();
    const { client, server, reader } = openSession(controlled.engine, { requestTimeoutMs: 50 });
    client.write(`${HELLO}${PING}`);
    expect(await reader.line()).toBe(PONG.trimEnd());
    await sleep(150);
    client.write(request('test-package', { version: 'slow-1.0', pkgarch: 'core2-64' }));
    const call = await controlled.call(0);
    await sleep(150);
    call.resolve(true);
    expect(await reader.line()).toBe('{"value":true}');
    expect(server.destroyed).toBe(false);
  });
});

describe('ConnectionSession request timeout and pipelining clients', () => {
  it('keeps a client that pipelines whole requests, each read ending inside the next', async () => {
    const { client, server, reader } = openSession(createControlledEngine().engine, { requestTimeoutMs: 100 });
    client.write(HELLO);
    const half = Math.floor(PING.length / 2);
    // Every write completes one ping and begins the next; the whole run lasts 4 request timeouts.
    client.write(PING.slice(0, half));
    for (let index = 0; index < 20; index += 1) {
      await sleep(20);
      client.write(PING.slice(half) + PING.slice(0, half));
    }
    client.write(PING.slice(half));
    for (let index = 0; index < 21; index += 1) expect(await reader.line()).toBe(PONG.trimEnd());
    expect(server.destroyed).toBe(false);
  });
});

describe('ConnectionSession idle timeout', () => {
  it('closes a connection that sends nothing for the idle time, and logs it', async () => {
    const { client, session, reader, logger } = openSession(createControlledEngine().engine, { idleTimeoutMs: 60 });
    client.write(`${HELLO}${PING}`);
    expect(await reader.line()).toBe(PONG.trimEnd());
    await session.closed;
    expect(logger.at('info').map((entry) => entry.message)).toEqual(['connection idle; closed']);
  });

  it('keeps a connection whose request is still being answered', async () => {
    const controlled = createControlledEngine();
    const { client, server, reader } = openSession(controlled.engine, { idleTimeoutMs: 50 });
    client.write(`${HELLO}${request('test-package', { version: 'slow-1.0', pkgarch: 'core2-64' })}`);
    const call = await controlled.call(0);
    await sleep(150);
    expect(server.destroyed).toBe(false);
    call.resolve(false);
    expect(await reader.line()).toBe('{"value":false}');
  });

  it('never closes an idle connection when off (the default)', async () => {
    const { client, server, reader } = openSession(createControlledEngine().engine);
    client.write(`${HELLO}${PING}`);
    expect(await reader.line()).toBe(PONG.trimEnd());
    await sleep(150);
    expect(server.destroyed).toBe(false);
  });
});

describe('ConnectionSession pipelining', () => {
  it('does not answer a request before a slower one sent ahead of it', async () => {
    const { engine, call } = createControlledEngine();
    const { client, reader } = openSession(engine);
    client.write(`${HELLO}${request('test-package', { version: 'slow-1.0', pkgarch: 'core2-64' })}${PING}`);
    const slow = await call(0);
    await settle();
    expect(reader.received).toBe('');
    slow.resolve(true);
    expect(await reader.line()).toBe('{"value":true}');
    expect(await reader.line()).toBe(PONG.trimEnd());
  });

  it('answers a request in flight before refusing malformed input that follows it', async () => {
    const { engine, call } = createControlledEngine();
    const { client, reader } = openSession(engine);
    client.write(`${HELLO}${request('test-package', { version: 'first-1.0', pkgarch: 'core2-64' })}`);
    const first = await call(0);
    client.write('{"get-pr": {\n');
    await settle();
    expect(reader.received).toBe('');
    first.resolve(true);
    expect(await reader.rest()).toBe(`{"value":true}\n${invokeError('message is not valid JSON: "{\\"get-pr\\": {"')}`);
  });

  it('answers the requests that arrive in the same chunk as malformed input, then refuses', async () => {
    const { engine, calls } = createControlledEngine({ testPackage: () => true });
    const { client, reader } = openSession(engine);
    client.write(`${HELLO}${request('test-package', { version: 'same-1.0', pkgarch: 'core2-64' })}${PING}not json\n${PING}`);
    expect(await reader.rest()).toBe(`{"value":true}\n${PONG}${invokeError('message is not valid JSON: "not json"')}`);
    expect(calls).toHaveLength(1);
  });

  it(`stops reading once ${MAX_QUEUED} requests wait, and reads again once answers flow`, async () => {
    const { engine, call } = createControlledEngine();
    const { client, server, reader } = openSession(engine);
    const ask = (index: number) => request('test-package', { version: `queued-${index}`, pkgarch: 'core2-64' });
    let text = HELLO;
    for (let index = 0; index < MAX_QUEUED - 1; index += 1) text += ask(index);
    client.write(text);
    await call(0);
    await settle();
    expect(server.isPaused()).toBe(false);

    client.write(ask(MAX_QUEUED - 1));
    await settle();
    expect(server.isPaused()).toBe(true);
    // Written while the session does not read: these wait in the stream, not in the session.
    client.write(ask(MAX_QUEUED) + ask(MAX_QUEUED + 1));
    await settle();
    expect(server.isPaused()).toBe(true);
    expect(server.readableLength).toBeGreaterThan(0);

    // One answer makes room: the session reads what waited in the stream (and, being full
    // again, pauses again until later answers make room).
    const total = MAX_QUEUED + 2;
    (await call(0)).resolve(true);
    await settle();
    expect(server.readableLength).toBe(0);
    for (let index = 1; index < total; index += 1) (await call(index)).resolve(index % 3 === 0);
    const answers: unknown[] = [];
    for (let index = 0; index < total; index += 1) answers.push(await reader.message());
    expect(answers).toEqual(Array.from({ length: total }, (_, index) => ({ value: index % 3 === 0 })));
    const versions = (await Promise.all(Array.from({ length: total }, (_, index) => call(index)))).map(
      (settled) => (settled.input as { version: string }).version,
    );
    expect(versions).toEqual(Array.from({ length: total }, (_, index) => `queued-${index}`));
    expect(server.isPaused()).toBe(false);
  });
});

describe('ConnectionSession bad requests', () => {
  it.each([
    ['an unknown method', request('get-everything', {}), 'unknown method "get-everything"', 'UNKNOWN_METHOD', 'unknown'],
    [
      'a missing parameter',
      request('get-pr', { version: '1.0-r0', pkgarch: 'core2-64', history: false }),
      'get-pr: missing parameter "checksum"',
      'INVALID_PARAMS',
      'get-pr',
    ],
    [
      'an ill-typed parameter',
      request('get-pr', { version: '1.0-r0', pkgarch: 'core2-64', checksum: 7 }),
      'get-pr: parameter "checksum" must be a string, got number 7',
      'INVALID_PARAMS',
      'get-pr',
    ],
    [
      'an empty version',
      request('test-pr', { version: '', pkgarch: 'core2-64', checksum: 'c', history: false }),
      'test-pr: parameter "version" must not be empty',
      'INVALID_PARAMS',
      'test-pr',
    ],
    ['malformed JSON', '{"get-pr": {\n', 'message is not valid JSON: "{\\"get-pr\\": {"', 'MALFORMED_MESSAGE', undefined],
  ])('refuses %s with an invoke-error naming it, then ends without answering more', async (_, bad, message, code, method) => {
    const { engine, calls, call } = createControlledEngine();
    const stats = new ServerStats(() => 1);
    const { client, reader, logger } = openSession(engine, { stats });
    const valid = request('test-package', { version: '1.0-r0', pkgarch: 'core2-64' });
    client.write(`${HELLO}${valid}`);
    (await call(0)).resolve(true);
    expect(await reader.line()).toBe('{"value":true}');

    client.write(`${bad}${valid}${PING}`);
    expect(await reader.rest()).toBe(invokeError(message));
    await settle();
    expect(calls).toHaveLength(1);
    // A client's mistake leaves the server fine: info, not warn or error.
    expect(logger.at('info')).toEqual([
      { level: 'info', message: 'bad request refused', fields: expect.objectContaining({ code, err: message, method }) },
    ]);
    expect([...logger.at('warn'), ...logger.at('error')]).toEqual([]);
    // Counted as answered with an error, whether or not it parsed.
    expect(stats.snapshot().requests.all).toMatchObject({ count: 2, errors: 1 });
  });
});

describe('ConnectionSession engine errors', () => {
  const query = request('test-pr', { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'c1', history: true });

  it('answers a database that is down with the store error message, logged as a warning', async () => {
    const { engine, calls, call } = createControlledEngine();
    const { client, reader, logger } = openSession(engine);
    client.write(`${HELLO}${query}${query}`);
    (await call(0)).reject(
      new PrStoreError('DATABASE_UNAVAILABLE', 'database unavailable while trying to read a revision', {
        cause: new Error('connect ECONNREFUSED 127.0.0.1:5432'),
      }),
    );
    expect(await reader.rest()).toBe(invokeError('database unavailable while trying to read a revision'));
    expect(calls).toHaveLength(1);
    expect(logger.at('warn')).toEqual([
      {
        level: 'warn',
        message: 'request failed',
        fields: expect.objectContaining({
          method: 'test-pr',
          code: 'DATABASE_UNAVAILABLE',
          cause: expect.stringContaining('ECONNREFUSED'),
        }),
      },
    ]);
    expect([...logger.at('info'), ...logger.at('error')]).toEqual([]);
  });

  it('answers an unexpected failure with "internal server error" only, logged as an error', async () => {
    const { engine, call } = createControlledEngine();
    const { client, reader, logger } = openSession(engine);
    client.write(`${HELLO}${query}${query}`);
    (await call(0)).reject(new Error('relation "revisions" does not exist'));
    expect(await reader.rest()).toBe(invokeError('internal server error'));
    expect(logger.at('error')).toEqual([
      {
        level: 'error',
        message: 'request failed',
        fields: expect.objectContaining({ code: 'INTERNAL', cause: 'relation "revisions" does not exist' }),
      },
    ]);
    expect([...logger.at('info'), ...logger.at('warn')]).toEqual([]);
  });
});

describe('ConnectionSession drain', () => {
  it('ends an idle session at once', async () => {
    const { client, server, session, reader } = openSession(createControlledEngine().engine);
    client.write(`${HELLO}${PING}`);
    expect(await reader.line()).toBe(PONG.trimEnd());
    session.drain();
    expect(await reader.rest()).toBe('');
    await session.closed;
    expect(server.destroyed).toBe(true);
  });

  it('answers the requests already received, then ends', async () => {
    const { engine, calls, call } = createControlledEngine();
    const { client, session, reader } = openSession(engine);
    const ask = (version: string) => request('test-package', { version, pkgarch: 'core2-64' });
    client.write(`${HELLO}${ask('in-flight')}${ask('waiting')}`);
    const inFlight = await call(0);
    session.drain();
    await settle();
    expect(reader.ended).toBe(false);
    expect(reader.received).toBe('');
    inFlight.resolve(true);
    (await call(1)).resolve(false);
    expect(await reader.rest()).toBe('{"value":true}\n{"value":false}\n');
    await session.closed;
    expect(calls).toHaveLength(2);
  });
});

describe('ConnectionSession drain with a client that keeps sending', () => {
  it('reads nothing more once draining, so the drain ends after the requests already received', async () => {
    const { engine, calls, call } = createControlledEngine();
    const { client, session, reader } = openSession(engine);
    client.write(`${HELLO}${request('test-package', { version: 'in-flight', pkgarch: 'core2-64' })}`);
    const inFlight = await call(0);
    session.drain();
    client.write(request('test-package', { version: 'after-drain', pkgarch: 'core2-64' }));
    await settle();
    inFlight.resolve(true);
    expect(await reader.rest()).toBe('{"value":true}\n');
    await session.closed;
    expect(calls).toHaveLength(1);
  });
});

describe('ConnectionSession and a client that does not read', () => {
  const rows = Array.from({ length: 40 }, (_, index) => ({
    version: 'big-1.0',
    pkgarch: 'core2-64',
    checksum: index.toString(16).padStart(64, '0'),
    value: String(index),
  }));

  it('answers ahead while the unread answers stay under the bound', async () => {
    const { engine, calls } = createControlledEngine({ exportRows: () => rows });
    const { client, reader } = openSession(engine, { highWaterMark: 1024, maxUnreadBytes: 64 * 1024 });
    reader.pause();
    client.write(HELLO + request('export', { version: 'big-1.0', history: true }).repeat(6));
    await settle();
    // Six answers of ~5 KB fit in 64 KiB: all are produced although none was read.
    expect(calls).toHaveLength(6);
  });

  it('drops a client that does not take its answers within the request timeout, and logs it', async () => {
    const { engine, calls } = createControlledEngine({ exportRows: () => rows });
    const { client, server, session, reader, logger } = openSession(engine, {
      highWaterMark: 1024,
      maxUnreadBytes: 1024,
      requestTimeoutMs: 80,
    });
    reader.pause();
    client.write(HELLO + request('export', { version: 'big-1.0', history: true }).repeat(50));
    await session.closed;
    expect(server.destroyed).toBe(true);
    expect(calls.length).toBeLessThan(5);
    const [entry] = logger.at('warn');
    expect(entry?.message).toBe('client does not read its answers; connection dropped');
    expect(entry?.fields.unreadBytes).toBeGreaterThan(1024);
  });

  it('serves a client that reads, under a bound smaller than the connection’s write buffer', async () => {
    // About 5 KB per answer: under the buffer's 16 KiB mark a write is never refused, so no
    // 'drain' comes, yet two answers pass the 1 KiB bound.
    const { engine, calls } = createControlledEngine({ exportRows: () => rows });
    const { client, server, reader } = openSession(engine, { highWaterMark: 16 * 1024, maxUnreadBytes: 1024, requestTimeoutMs: 2_000 });
    reader.pause();
    const total = 6;
    client.write(HELLO + request('export', { version: 'big-1.0', history: true }).repeat(total));
    await settle();
    // What the client's side buffers, then the bound: not all six.
    expect(calls.length).toBeLessThan(total);
    reader.resume();
    for (let index = 0; index < total; index += 1) expect(((await reader.message()) as { datainfo: unknown[] }).datainfo).toEqual(rows);
    expect(server.destroyed).toBe(false);
  });

  it('drops a client that stops reading once its connection is closing (idle)', async () => {
    const { engine } = createControlledEngine({ exportRows: () => rows });
    const { client, server, session, reader } = openSession(engine, {
      highWaterMark: 1024,
      maxUnreadBytes: 64 * 1024,
      idleTimeoutMs: 50,
      requestTimeoutMs: 100,
    });
    reader.pause();
    client.write(HELLO + request('export', { version: 'big-1.0', history: true }).repeat(2));
    // Idle once answered: our side ends, but the answers are never taken, so it never finishes.
    await session.closed;
    expect(server.destroyed).toBe(true);
  });

  it('produces no more answers until the client reads the ones written', async () => {
    // Each answer is bigger than what the connection buffers, so one unread answer fills it.
    const rows = Array.from({ length: 40 }, (_, index) => ({
      version: 'big-1.0',
      pkgarch: 'core2-64',
      checksum: index.toString(16).padStart(64, '0'),
      value: String(index),
    }));
    const { engine, calls } = createControlledEngine({ exportRows: () => rows });
    const { client, server, reader } = openSession(engine, { highWaterMark: 1024, maxUnreadBytes: 1024 });
    reader.pause();
    const total = 6;
    client.write(HELLO + request('export', { version: 'big-1.0', history: true }).repeat(total));
    await settle();
    expect(calls).toHaveLength(1);
    expect(server.writableNeedDrain).toBe(true);

    reader.resume();
    for (let index = 0; index < total; index += 1) {
      expect(((await reader.message()) as { datainfo: unknown[] }).datainfo).toEqual(rows);
    }
    expect(calls).toHaveLength(total);
  });
});
