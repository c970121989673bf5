import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, STORE_KINDS, startServerProcess, type TestDatabase } from '@prserv/test-support';

// The wire, byte for byte: fixed conversations with a server on a new database, against a transcript
// kept in the repository (test/fixtures/wire-transcript.json). Any change to what the server
// sends, however small, shows here and must be a deliberate one (docs/protocol.md says what).

const HELLO = 'PRSERVICE 1.0\n\n';
const line = (message: unknown) => `${JSON.stringify(message)}\n`;
const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
const legacyPkg = { version: '2.0', pkgarch: 'x' };

/** What each conversation writes, one write at a time. */
const CONVERSATIONS: Record<string, string[]> = {
  modern: [
    HELLO,
    line({ 'get-pr': { ...pkg, checksum: 'a', history: false } }),
    line({ 'get-pr': { ...pkg, checksum: 'b', history: false } }),
    line({ 'get-pr': { ...pkg, checksum: 'a', history: false } }),
    line({ 'get-pr': { ...pkg, checksum: 'b', history: true } }),
    line({ 'test-pr': { ...pkg, checksum: 'a', history: true } }),
    line({ 'test-pr': { ...pkg, checksum: 'zz', history: false } }),
    line({ 'test-package': pkg }),
    line({ 'max-package-pr': pkg }),
    line({ 'import-one': { ...pkg, checksum: 'c', value: '7' } }),
    line({ 'import-one': { ...pkg, checksum: 'd', value: '1.2' } }),
    line({ export: { version: null, pkgarch: null, checksum: null, colinfo: true, history: true } }),
    line({ 'is-readonly': {} }),
    line({ ping: {} }),
    // A chunked request, split as BitBake splits long messages.
    `${line({ 'chunk-stream': null })}{"get-pr": {"version": "1.0-r0",\n "pkgarch": "core2-64", "checksum": "e", "history": false}}\n\n`,
  ],
  legacy: [
    HELLO,
    line({ 'get-pr': { ...legacyPkg, checksum: 'a' } }),
    line({ 'get-pr': { ...legacyPkg, checksum: 'b' } }),
    line({ 'max-package-pr': legacyPkg }),
    line({ 'import-one': { ...legacyPkg, checksum: 'c', value: 9 } }),
    line({ 'import-one': { ...legacyPkg, checksum: 'd', value: 3 } }),
    line({ export: { version: '2.0', pkgarch: null, checksum: null, colinfo: true } }),
    line({ 'test-pr': { ...legacyPkg, checksum: 'a' } }),
  ],
  'needs-headers': ['PRSERVICE 1.0\nneeds-headers: true\n\n', line({ ping: {} })],
  'wrong protocol': ['HASHEQUIVALENCE 1.1\n\n'],
  'bad header': ['PRSERVICE 1.0\n: nope\n\n'],
  'malformed JSON': [HELLO, '{"get-pr": {\n'],
  'unknown method': [HELLO, line({ 'get-everything': {} })],
  'missing parameter': [HELLO, line({ 'get-pr': { ...pkg, history: false } })],
  'bad import value': [HELLO, line({ 'import-one': { ...pkg, checksum: 'q', value: 'r1' } })],
  'ill-typed parameter': [HELLO, line({ 'get-pr': { ...pkg, checksum: 5, history: false } })],
  'two methods': [HELLO, line({ ping: {}, 'is-readonly': {} })],
  'not an object': [HELLO, '[1,2]\n'],
  'NUL in a key': [HELLO, line({ 'get-pr': { ...pkg, checksum: 'a\u0000b', history: false } })],
};

/** Plays one conversation; resolves with everything received and whether the server closed. */
function converse(port: number, writes: string[]): Promise<{ received: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    let quiet: NodeJS.Timeout | undefined;
    const finish = (closedByServer: boolean) => {
      clearTimeout(quiet);
      socket.destroy();
      resolve({ received, closedByServer });
    };
    // Every answer comes well within this once the last request is written.
    const waitForQuiet = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(false), 400);
    };
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      received += text;
      waitForQuiet();
    });
    socket.on('end', () => finish(true));
    socket.on('error', reject);
    socket.on('connect', async () => {
      // One write at a time, as BitBake's client sends (it waits for each answer).
      for (const write of writes) {
        socket.write(write);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      waitForQuiet();
    });
  });
}

const TRANSCRIPT = new URL('./fixtures/wire-transcript.json', import.meta.url);
/** PRSERV_UPDATE_WIRE_TRANSCRIPT=1 rewrites the transcript from the server under test (after a deliberate change). */
const updating = process.env.PRSERV_UPDATE_WIRE_TRANSCRIPT === '1';
const expected = (updating ? {} : JSON.parse(readFileSync(TRANSCRIPT, 'utf8'))) as Record<string, { received: string; closedByServer: boolean }>;

describe.each(STORE_KINDS)('the wire on $kind, byte for byte', ({ kind, create }) => {
  let database: TestDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await create(`wire_${kind}`);
    server = await startServerProcess({ database: database.url });
  });

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it('holds every conversation of the transcript, in order', async () => {
    const actual: Record<string, { received: string; closedByServer: boolean }> = {};
    for (const [name, writes] of Object.entries(CONVERSATIONS)) actual[name] = await converse(server.port, writes);
    if (updating) {
      writeFileSync(TRANSCRIPT, `${JSON.stringify(actual, null, 2)}\n`);
      return;
    }
    expect(Object.keys(expected)).toEqual(Object.keys(CONVERSATIONS));
    for (const name of Object.keys(CONVERSATIONS)) expect({ name, ...actual[name] }).toEqual({ name, ...expected[name] });
  }, 60_000);
});
