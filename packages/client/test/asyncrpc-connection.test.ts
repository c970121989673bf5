import { connect as netConnect, createServer, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { unusedPort } from '@prserv/test-support';
import { ProtocolError } from '@prserv/core/protocol';
import { AsyncRpcConnection, type ConnectionOptions } from '../src/asyncrpc-connection.js';
import { PrClientError } from '../src/client-errors.js';
import type { ServerAddress } from '../src/server-address.js';

/** One accepted connection of a {@link scriptedPeer}, as the peer sees it. */
interface PeerConnection {
  readonly socket: Socket;
  /** Every byte the client sent so far, as text (the client writes ASCII only). */
  received: string;
  /** The lines the client sent after its hello (which ends at the first empty line). */
  readonly messageLines: string[];
  /** True once the client's side of the connection is gone. */
  closed: boolean;
}

interface ScriptedPeer {
  readonly address: ServerAddress;
  readonly connections: PeerConnection[];
  close(): Promise<void>;
}

const peers: ScriptedPeer[] = [];

/**
 * A TCP peer on 127.0.0.1 whose behaviour the test scripts: it splits what the client sends into
 * lines, keeps the hello apart, and hands every later line to `onLine` to answer as it likes.
 */
async function scriptedPeer(onLine: (line: string, connection: PeerConnection) => void = () => {}): Promise<ScriptedPeer> {
  const connections: PeerConnection[] = [];
  const server = createServer((socket) => {
    const connection: PeerConnection = { socket, received: '', messageLines: [], closed: false };
    connections.push(connection);
    let buffer = '';
    let inHello = true;
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('close', () => {
      connection.closed = true;
    });
    socket.on('data', (text: string) => {
      connection.received += text;
      buffer += text;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (inHello) {
          if (line === '') inHello = false;
          continue;
        }
        connection.messageLines.push(line);
        onLine(line, connection);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const peer: ScriptedPeer = {
    address: { host: '127.0.0.1', port },
    connections,
    async close() {
      for (const connection of connections) connection.socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  peers.push(peer);
  return peer;
}


const options: ConnectionOptions = { connectTimeoutMs: 5_000 };
const HELLO = 'PRSERVICE 1.0\nneeds-headers: false\n\n';

/** Whatever a promise settles to, so a rejection can be inspected field by field. */
function settled(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => value,
    (error: unknown) => error,
  );
}

afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.close()));
});

describe('AsyncRpcConnection.open', () => {
  it('sends the PRSERVICE 1.0 hello, a needs-headers: false header and the empty line as soon as it connects', async () => {
    const peer = await scriptedPeer();
    const connection = await AsyncRpcConnection.open(peer.address, options);
    await vi.waitFor(() => expect(peer.connections[0]?.received).toBe(HELLO));
    expect(connection.closed).toBe(false);
    connection.close();
  });

  it('fails with CONNECT_FAILED naming the address when nothing listens', async () => {
    const port = await unusedPort();
    const error = await settled(AsyncRpcConnection.open({ host: '127.0.0.1', port }, options));
    expect(error).toBeInstanceOf(PrClientError);
    expect(error).toMatchObject({ name: 'PrClientError', code: 'CONNECT_FAILED' });
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails with TIMEOUT when the connection does not open in time, and destroys the socket', async () => {
    // A socket that is never connected stands for a host that does not answer.
    const socket = new Socket();
    const error = await settled(
      AsyncRpcConnection.open({ host: '192.0.2.1', port: 8585 }, { connectTimeoutMs: 100, createSocket: () => socket }),
    );
    expect(error).toMatchObject({ name: 'PrClientError', code: 'TIMEOUT' });
    expect((error as Error).message).toBe('timed out after 100 ms connecting to PR server 192.0.2.1:8585');
    expect(socket.destroyed).toBe(true);
  });

  it('fails with ABORTED and opens no socket when the signal is already aborted', async () => {
    const createSocket = vi.fn(() => new Socket());
    const reason = new Error('build cancelled');
    const error = await settled(
      AsyncRpcConnection.open({ host: '127.0.0.1', port: 8585 }, { ...options, createSocket, signal: AbortSignal.abort(reason) }),
    );
    expect(error).toMatchObject({ code: 'ABORTED', cause: reason });
    expect(createSocket).not.toHaveBeenCalled();
  });

  it('fails with ABORTED when aborted while connecting, and destroys the socket', async () => {
    const socket = new Socket();
    const controller = new AbortController();
    const reason = new Error('build cancelled');
    const opening = settled(
      AsyncRpcConnection.open({ host: '192.0.2.1', port: 8585 }, { ...options, createSocket: () => socket, signal: controller.signal }),
    );
    controller.abort(reason);
    expect(await opening).toMatchObject({ code: 'ABORTED', cause: reason });
    expect(socket.destroyed).toBe(true);
  });
});

describe('AsyncRpcConnection.request', () => {
  it('sends a request as one compact ASCII JSON line after the hello and resolves with the answer', async () => {
    const peer = await scriptedPeer((_line, { socket }) => socket.write('{"value": "3"}\n'));
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const request = { 'get-pr': { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'caf\u00e9', history: false } };
    expect(await connection.request(request, { timeoutMs: 5_000 })).toEqual({ value: '3' });
    expect(peer.connections[0]!.received).toBe(
      `${HELLO}{"get-pr":{"version":"1.0-r0","pkgarch":"core2-64","checksum":"caf\\u00e9","history":false}}\n`,
    );
    connection.close();
  });

  it('keeps a partial answer across TCP chunks, even one split inside a UTF-8 character', async () => {
    // The answer arrives one byte per read: the peer writes the next byte only once the client
    // has read the previous one, so no two bytes can share a read.
    const answer = Buffer.from('{"value": "caf\u00e9 \u2713"}\n', 'utf8');
    const reads: number[] = [];
    let onRead: (() => void) | undefined;
    const nextRead = () => new Promise<void>((resolve) => (onRead = resolve));
    const createSocket = (address: ServerAddress) => {
      const socket = netConnect(address);
      socket.on('data', (chunk: Buffer) => {
        reads.push(chunk.length);
        onRead?.();
      });
      return socket;
    };
    const peer = await scriptedPeer((_line, { socket }) => {
      void (async () => {
        for (const byte of answer) {
          const read = nextRead();
          socket.write(Buffer.of(byte));
          await read;
        }
      })();
    });
    const connection = await AsyncRpcConnection.open(peer.address, { ...options, createSocket });
    expect(await connection.request({ 'test-pr': {} }, { timeoutMs: 5_000 })).toEqual({ value: 'caf\u00e9 \u2713' });
    expect(reads).toEqual(Array.from(answer, () => 1));
    connection.close();
  });

  it('reassembles a chunk-stream answer cut into pieces of 32767 characters', async () => {
    const datainfo = Array.from({ length: 1500 }, (_, index) => ({
      version: '1.0-r0',
      pkgarch: 'core2-64',
      checksum: index.toString(16).padStart(64, '0'),
      value: String(index),
    }));
    const text = JSON.stringify({ metainfo: {}, datainfo });
    const pieces: string[] = [];
    for (let offset = 0; offset < text.length; offset += 32_767) pieces.push(text.slice(offset, offset + 32_767));
    expect(pieces.length).toBeGreaterThan(3);
    const peer = await scriptedPeer((_line, { socket }) => socket.write(`{"chunk-stream": null}\n${pieces.join('\n')}\n\n`));
    const connection = await AsyncRpcConnection.open(peer.address, options);
    expect(await connection.request({ export: {} }, { timeoutMs: 5_000 })).toEqual({ metainfo: {}, datainfo });
    connection.close();
  });

  it('joins the pieces of a chunk stream whatever their length, then reads single lines again', async () => {
    let answers = 0;
    const peer = await scriptedPeer((_line, { socket }) => {
      answers += 1;
      if (answers === 1) socket.write('{"chunk-stream": null}\n{"val\nue": \n"0.3\n"}\n\n');
      else socket.write('{"alive": true}\n');
    });
    const connection = await AsyncRpcConnection.open(peer.address, options);
    expect(await connection.request({ 'get-pr': {} }, { timeoutMs: 5_000 })).toEqual({ value: '0.3' });
    expect(await connection.request({ ping: {} }, { timeoutMs: 5_000 })).toEqual({ alive: true });
    connection.close();
  });

  it('sends a request of 32767 characters or more as a chunk stream with no space in its pieces', async () => {
    const peer = await scriptedPeer((line, { socket }) => {
      // A single-line request starts with "{" and is answered at once; a stream ends with an empty line.
      if (line === '' || (line.startsWith('{"ping"') && line.endsWith('}'))) socket.write('{"alive": true}\n');
    });
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const padded = (length: number) => ({ ping: { pad: 'ab '.repeat(length).slice(0, length - '{"ping":{"pad":""}}'.length) } });

    // 32766 characters: still one line (BitBake chunks from DEFAULT_MAX_CHUNK - 1 = 32767 on).
    await connection.request(padded(32_766), { timeoutMs: 5_000 });
    const [single] = peer.connections[0]!.messageLines.splice(0);
    expect(single).toBe(JSON.stringify(padded(32_766)));

    const long = padded(80_000);
    await connection.request(long, { timeoutMs: 5_000 });
    const lines = peer.connections[0]!.messageLines.splice(0);
    expect(lines[0]).toBe('{"chunk-stream": null}');
    expect(lines.at(-1)).toBe('');
    const pieces = lines.slice(1, -1);
    expect(pieces.slice(0, -1).every((piece) => piece.length === 32_767)).toBe(true);
    expect(pieces.at(-1)!.length).toBeGreaterThan(0);
    expect(pieces.at(-1)!.length).toBeLessThanOrEqual(32_767);
    // BitBake's reader strips trailing white space from each piece, so spaces travel as \u0020.
    expect(pieces.some((piece) => piece.includes(' '))).toBe(false);
    expect(JSON.parse(pieces.join(''))).toEqual(long);
    connection.close();
  });

  it('hands an invoke-error answer back as it came; discard() then fails the request queued behind as CONNECTION_LOST', async () => {
    // The peer keeps the connection open, so only discard() can end it.
    const peer = await scriptedPeer((_line, { socket }) => socket.write('{"invoke-error": {"message": "unknown method \\"get-pr2\\""}}\n'));
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const refused = connection.request({ 'get-pr2': {} }, { timeoutMs: 5_000 });
    const behind = settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }));
    expect(await refused).toEqual({ 'invoke-error': { message: 'unknown method "get-pr2"' } });
    connection.discard('the server refused a request');
    const error = await behind;
    expect(error).toBeInstanceOf(PrClientError);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect((error as Error).message).toContain('the server refused a request');
    expect(connection.closed).toBe(true);
    await vi.waitFor(() => expect(peer.connections[0]!.closed).toBe(true));
  });

  it('fails with PROTOCOL and drops the connection on an answer that is not JSON', async () => {
    const peer = await scriptedPeer((_line, { socket }) => socket.write('alive\n'));
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const error = await settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }));
    expect(error).toMatchObject({ name: 'PrClientError', code: 'PROTOCOL' });
    expect((error as Error).cause).toBeInstanceOf(ProtocolError);
    expect((error as Error).cause).toMatchObject({ code: 'MALFORMED_MESSAGE' });
    expect(connection.closed).toBe(true);
    await vi.waitFor(() => expect(peer.connections[0]!.closed).toBe(true));
  });

  it.each([
    ['one line', `{"value": "${'1'.repeat(100)}"}\n`],
    ['a chunk stream of short pieces', `{"chunk-stream": null}\n${`{"value": "${'1'.repeat(100)}"}`.match(/.{1,10}/g)!.join('\n')}\n\n`],
  ])('fails with PROTOCOL on an answer over maxMessageBytes sent as %s', async (_form, answer) => {
    const peer = await scriptedPeer((_line, { socket }) => socket.write(answer));
    const connection = await AsyncRpcConnection.open(peer.address, { ...options, maxMessageBytes: 64 });
    const error = await settled(connection.request({ 'get-pr': {} }, { timeoutMs: 5_000 }));
    expect(error).toMatchObject({ code: 'PROTOCOL', cause: { code: 'MESSAGE_TOO_LARGE' } });
    expect(connection.closed).toBe(true);
  });

  it('drops the connection when the peer sends an answer nobody asked for', async () => {
    const peer = await scriptedPeer((_line, { socket }) => socket.write('{"value": "1"}\n{"value": "2"}\n'));
    const connection = await AsyncRpcConnection.open(peer.address, options);
    expect(await connection.request({ 'get-pr': {} }, { timeoutMs: 5_000 })).toEqual({ value: '1' });
    expect(connection.closed).toBe(true);
    const error = await settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }));
    expect(error).toMatchObject({ code: 'CONNECTION_LOST', cause: { code: 'PROTOCOL' } });
    expect(peer.connections[0]!.messageLines).toHaveLength(1);
  });
});

describe('AsyncRpcConnection failures', () => {
  it('fails the request in flight with CONNECTION_LOST when the peer closes, and the one queued behind without sending it', async () => {
    const peer = await scriptedPeer((_line, { socket }) => socket.end());
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const inFlight = settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }));
    const behind = settled(connection.request({ 'is-readonly': {} }, { timeoutMs: 5_000 }));
    expect(await inFlight).toMatchObject({ code: 'CONNECTION_LOST', message: 'the server closed the connection' });
    const error = await behind;
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect((error as Error).message).toMatch(/^request not sent: /);
    expect(connection.closed).toBe(true);
    expect(peer.connections[0]!.messageLines).toEqual(['{"ping":{}}']);
  });

  it('fails with CONNECTION_LOST when the peer closes halfway through an answer', async () => {
    const peer = await scriptedPeer((_line, { socket }) => socket.end('{"value": "1'));
    const connection = await AsyncRpcConnection.open(peer.address, options);
    expect(await settled(connection.request({ 'get-pr': {} }, { timeoutMs: 5_000 }))).toMatchObject({ code: 'CONNECTION_LOST' });
  });

  it('times out a request the peer never answers and drops the connection, so no late answer is taken for the next request', async () => {
    let requests = 0;
    const peer = await scriptedPeer((_line, { socket }) => {
      requests += 1;
      // Were the connection kept after the timeout, this answer to the second request would be
      // taken for the first's.
      if (requests === 2) socket.write('{"value": "late"}\n');
    });
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const error = await settled(connection.request({ 'get-pr': {} }, { timeoutMs: 100 }));
    expect(error).toMatchObject({ code: 'TIMEOUT', message: 'no answer from the PR server within 100 ms' });
    await vi.waitFor(() => expect(connection.closed).toBe(true));
    await vi.waitFor(() => expect(peer.connections[0]!.closed).toBe(true));
    expect(await settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }))).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(requests).toBe(1);
  });

  it('ends a request queued behind a slow one on its own deadline, and never sends it', async () => {
    const answerFirst: Array<() => void> = [];
    const peer = await scriptedPeer((line, { socket }) => {
      if (line === '{"first":{}}') answerFirst.push(() => socket.write('{"n": 1}\n'));
      else socket.write('{"n": 3}\n');
    });
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const first = connection.request({ first: {} }, { timeoutMs: 10_000 });
    const second = settled(connection.request({ second: {} }, { timeoutMs: 100 }));
    expect(await second).toMatchObject({ code: 'TIMEOUT' });
    await vi.waitFor(() => expect(answerFirst).toHaveLength(1));
    answerFirst[0]!();
    expect(await first).toEqual({ n: 1 });
    // The queued request's timeout does not spoil the connection: it was never on the wire.
    expect(await connection.request({ third: {} }, { timeoutMs: 5_000 })).toEqual({ n: 3 });
    expect(peer.connections[0]!.messageLines).toEqual(['{"first":{}}', '{"third":{}}']);
    expect(connection.closed).toBe(false);
    connection.close();
  });

  it('aborts the request in flight, drops the connection and fails the one queued behind as CONNECTION_LOST', async () => {
    const peer = await scriptedPeer();
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const controller = new AbortController();
    const reason = new Error('build cancelled');
    const inFlight = settled(connection.request({ 'get-pr': {} }, { timeoutMs: 5_000, signal: controller.signal }));
    const behind = settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }));
    await vi.waitFor(() => expect(peer.connections[0]?.messageLines).toHaveLength(1));
    controller.abort(reason);
    expect(await inFlight).toMatchObject({ code: 'ABORTED', cause: reason });
    expect(connection.closed).toBe(true);
    expect(await behind).toMatchObject({ code: 'CONNECTION_LOST' });
    await vi.waitFor(() => expect(peer.connections[0]!.closed).toBe(true));
    expect(peer.connections[0]!.messageLines).toEqual(['{"get-pr":{}}']);
  });

  it('fails the request in flight and every later one with CLOSED after close(), and ends the socket', async () => {
    const peer = await scriptedPeer();
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const inFlight = settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }));
    await vi.waitFor(() => expect(peer.connections[0]?.messageLines).toHaveLength(1));
    connection.close();
    expect(await inFlight).toMatchObject({ name: 'PrClientError', code: 'CLOSED' });
    expect(await settled(connection.request({ ping: {} }, { timeoutMs: 5_000 }))).toMatchObject({ code: 'CLOSED' });
    expect(connection.closed).toBe(true);
    await vi.waitFor(() => expect(peer.connections[0]!.closed).toBe(true));
  });
});

describe('AsyncRpcConnection ordering', () => {
  it('carries concurrent requests one at a time, in call order, each resolved with its own answer', async () => {
    let waiting = 0;
    let overlaps = 0;
    const peer = await scriptedPeer((line, { socket }) => {
      // A client that sent a request before the previous answer would be seen here with one waiting.
      if (waiting > 0) overlaps += 1;
      waiting += 1;
      const { ping } = JSON.parse(line) as { ping: { n: number } };
      setImmediate(() => {
        waiting -= 1;
        socket.write(`{"n": ${ping.n}}\n`);
      });
    });
    const connection = await AsyncRpcConnection.open(peer.address, options);
    const order: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        connection.request({ ping: { n } }, { timeoutMs: 5_000 }).then((answer) => {
          order.push(n);
          return answer;
        }),
      ),
    );
    expect(answers).toEqual(Array.from({ length: 10 }, (_, n) => ({ n })));
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(peer.connections[0]!.messageLines).toEqual(Array.from({ length: 10 }, (_, n) => `{"ping":{"n":${n}}}`));
    expect(overlaps).toBe(0);
    connection.close();
  });
});
