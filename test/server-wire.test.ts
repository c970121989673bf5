import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError, type PrClient } from '@prserv/client';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { type ServerProcess, startServerProcess } from '@prserv/test-support';
import { RawSocket } from '@prserv/test-support';

function freshPackage() {
  return { version: `1.0-r0-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' };
}

describe.each(STORE_KINDS)('prserv server on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let server: ServerProcess;
  let client: PrClient;

  beforeAll(async () => {
    database = await create(`e2e_${kind}`);
    server = await startServerProcess({ database: database.url });
    client = createPrClient({ address: server.address });
  });

  afterAll(async () => {
    await client?.close();
    await server?.stop();
    await database?.drop();
  });

  it('logs a startup line naming store, bind address and mode', () => {
    const startup = server.logs.find((entry) => entry.msg === 'prserv listening');
    expect(startup).toMatchObject({ store: kind, mode: 'nohist', readOnly: false, bind: server.address });
  });

  it('answers every modern request through the typed client', async () => {
    const pkg = freshPackage();
    expect(await client.ping()).toBe(true);
    expect(await client.isReadonly()).toBe(false);
    expect(await client.testPackage(pkg)).toBe(false);
    expect(await client.maxPackagePr(pkg)).toBeNull();
    expect(await client.testPr({ ...pkg, checksum: 'c0' })).toBeNull();
    for (const [index, checksum] of ['c0', 'c1', 'c2', 'c3'].entries()) {
      expect(await client.getPr({ ...pkg, checksum })).toBe(String(index));
    }
    expect(await client.getPr({ ...pkg, checksum: 'c0' })).toBe('4');
    expect(await client.getPr({ ...pkg, checksum: 'c0', history: true })).toBe('0');
    expect(await client.testPr({ ...pkg, checksum: 'c0' })).toBe('4');
    expect(await client.testPr({ ...pkg, checksum: 'c0', history: true })).toBe('0');
    expect(await client.maxPackagePr(pkg)).toBe('4');
    expect(await client.testPackage(pkg)).toBe(true);
    expect(await client.importOne({ ...pkg, checksum: 'imported', value: '4.1' })).toBe('4.1');
    expect(await client.maxPackagePr(pkg)).toBe('4.1');
    const exported = await client.export({ version: pkg.version, colinfo: true });
    expect(exported.metainfo).toMatchObject({ tbl_name: 'PRMAIN', core_ver: '2.0.0' });
    expect(exported.rows).toEqual([{ ...pkg, checksum: 'imported', value: '4.1' }]);
    const all = await client.export({ version: pkg.version, history: true });
    expect(all.metainfo).toEqual({});
    expect(all.rows).toHaveLength(6);
  });

  it('serves legacy requests in no-history mode with integer answers', async () => {
    const pkg = freshPackage();
    const raw = await RawSocket.greeted(server.port);
    try {
      const ask = async (message: unknown) => {
        raw.send(message);
        return raw.readMessage();
      };
      expect(await ask({ 'get-pr': { ...pkg, checksum: 'a' } })).toEqual({ value: 0 });
      expect(await ask({ 'get-pr': { ...pkg, checksum: 'b' } })).toEqual({ value: 1 });
      expect(await ask({ 'get-pr': { ...pkg, checksum: 'a' } })).toEqual({ value: 2 });
      expect(await ask({ 'test-pr': { ...pkg, checksum: 'a' } })).toEqual({ value: 2 });
      expect(await ask({ 'test-pr': { ...pkg, checksum: 'zz' } })).toEqual({ value: null });
      expect(await ask({ 'max-package-pr': pkg })).toEqual({ value: 2 });
      expect(await ask({ 'test-package': pkg })).toEqual({ value: true });
      expect(await ask({ 'import-one': { ...pkg, checksum: 'b', value: 1 } })).toEqual({ value: 1 });
      expect(await ask({ 'import-one': { ...pkg, checksum: 'a', value: 1 } })).toEqual({ value: 2 });
      expect(await ask({ 'import-one': { ...pkg, checksum: 'c', value: '7' } })).toEqual({ value: 7 });
      expect(await ask({ export: { version: pkg.version, pkgarch: null, checksum: null, colinfo: true } })).toEqual({
        metainfo: {
          tbl_name: 'PRMAIN_nohist',
          core_ver: '1.0.0',
          col_info: [
            { name: 'version', type: 'TEXT', notnull: 1, dflt_value: null, pk: 1 },
            { name: 'pkgarch', type: 'TEXT', notnull: 1, dflt_value: null, pk: 2 },
            { name: 'checksum', type: 'TEXT', notnull: 1, dflt_value: null, pk: 3 },
            { name: 'value', type: 'INTEGER', notnull: 0, dflt_value: null, pk: 0 },
          ],
        },
        datainfo: [{ ...pkg, checksum: 'c', value: 7 }],
      });
      expect(await ask({ ping: {} })).toEqual({ alive: true });
      expect(await ask({ 'is-readonly': {} })).toEqual({ readonly: false });
    } finally {
      raw.close();
    }
    // The typed client in legacy mode sees the same through strings.
    const legacy = createPrClient({ address: server.address, legacy: true });
    expect(await legacy.getPr({ ...pkg, checksum: 'd' })).toBe('8');
    await legacy.close();
  });

  it('answers needs-headers with an empty header block before any message', async () => {
    const raw = await RawSocket.open(server.port);
    try {
      raw.write('PRSERVICE 1.0\nneeds-headers: true\n\n');
      expect(await raw.readLine()).toBe('');
      raw.send({ ping: {} });
      expect(await raw.readMessage()).toEqual({ alive: true });
    } finally {
      raw.close();
    }
  });

  it('chunks an export above 32 KiB and reads chunked requests', async () => {
    const pkg = freshPackage();
    // 400 checksums of 64 hex digits: an export of ~50 KB.
    const checksums = Array.from({ length: 400 }, (_, index) => index.toString(16).padStart(64, '0'));
    for (const checksum of checksums) await client.importOne({ ...pkg, checksum, value: '1' });
    const raw = await RawSocket.greeted(server.port);
    try {
      raw.send({ export: { version: pkg.version, pkgarch: null, checksum: null, colinfo: false, history: true } });
      expect(await raw.readLine()).toBe('{"chunk-stream": null}');
      const pieces: string[] = [];
      for (let line = await raw.readLine(); line !== ''; line = await raw.readLine()) pieces.push(line);
      expect(pieces.length).toBeGreaterThan(1);
      expect(pieces.slice(0, -1).every((piece) => piece.length === 32767)).toBe(true);
      const response = JSON.parse(pieces.join('')) as { datainfo: unknown[] };
      expect(response.datainfo).toHaveLength(400);

      // A request sent as a chunk stream, cut in odd places, is read whole.
      const request = JSON.stringify({ 'get-pr': { ...pkg, checksum: 'chunked', history: false, padding: 'x'.repeat(70_000) } });
      raw.write('{"chunk-stream": null}\n');
      for (let offset = 0; offset < request.length; offset += 32767) raw.write(`${request.slice(offset, offset + 32767)}\n`);
      raw.write('\n');
      expect(await raw.readMessage()).toEqual({ value: '2' });
    } finally {
      raw.close();
    }
    const typed = await client.export({ version: pkg.version, history: true });
    expect(typed.rows).toHaveLength(401);
  });

  const badRequests: [string, string, RegExp][] = [
    ['malformed JSON', '{"get-pr": {\n', /not valid JSON/],
    ['an unknown method', '{"get-everything": {}}\n', /unknown method "get-everything"/],
    ['a missing parameter', '{"get-pr": {"version": "V", "pkgarch": "A", "history": false}}\n', /missing parameter "checksum"/],
    ['an ill-typed parameter', '{"get-pr": {"version": "V", "pkgarch": "A", "checksum": 7}}\n', /"checksum" must be a string/],
    ['an invalid import value', '{"import-one": {"version": "V", "pkgarch": "A", "checksum": "c", "value": "r1"}}\n', /value must be a revision/],
    ['a message that is not an object', '[1, 2]\n', /JSON object/],
    ['an oversize message', `${'x'.repeat(1024 * 1024 + 10)}\n`, /exceeds the limit of 1048576 bytes/],
  ];

  it.each(badRequests)('answers %s with an invoke-error naming it, closes, and serves others', async (_name, bytes, expected) => {
    const raw = await RawSocket.greeted(server.port);
    const bystander = createPrClient({ address: server.address });
    try {
      raw.write(bytes);
      const response = (await raw.readMessage()) as { 'invoke-error': { message: string } };
      expect(response['invoke-error'].message).toMatch(expected);
      expect(await raw.closedByPeer()).toBe(true);
      expect(await bystander.ping()).toBe(true);
      expect(await bystander.testPackage({ version: 'V', pkgarch: 'A' })).toBe(false);
    } finally {
      raw.close();
      await bystander.close();
    }
  });

  it('refuses a wrong protocol line with an invoke-error and closes', async () => {
    const raw = await RawSocket.open(server.port);
    try {
      raw.write('HASHEQUIVALENCE 1.1\n\n');
      const response = (await raw.readMessage()) as { 'invoke-error': { message: string } };
      expect(response['invoke-error'].message).toMatch(/unsupported protocol "HASHEQUIVALENCE 1.1"/);
      expect(await raw.closedByPeer()).toBe(true);
    } finally {
      raw.close();
    }
  });

  it('surfaces an invoke-error through the typed client as InvokeError', async () => {
    const pkg = freshPackage();
    const error = await client.importOne({ ...pkg, checksum: 'c', value: 'not-a-revision' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvokeError);
    expect((error as InvokeError).message).toMatch(/value must be a revision/);
    // The client reconnects by itself for the next call.
    expect(await client.getPr({ ...pkg, checksum: 'c' })).toBe('0');
  });
});
