// A minimal asyncrpc (PRSERVICE 1.0) client for the bench scripts: readiness probes, seeding rows
// and reading a package's state. Deliberately independent of @prserv/client so the harness keeps
// working while the packages change, and so it can talk to any PR server (ours, BitBake's, echo).
import { connect } from 'node:net';

const CHUNK_STREAM = '{"chunk-stream": null}';

/**
 * Opens one connection, sends the hello (`PRSERVICE 1.0`, no headers, empty line) and returns
 * `{ call(method, params), close() }`. `call` sends one request and resolves with the decoded
 * response (chunk-streamed responses are joined). Every call is bounded by `timeoutMs`.
 * Only loopback hosts are accepted: this harness never sends traffic elsewhere.
 */
export async function openWire({ host = '127.0.0.1', port, timeoutMs = 30_000 }) {
  if (!isLoopback(host)) throw new Error(`refusing non-loopback address ${host}`);
  const socket = connect({ host, port });
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect ${host}:${port} timed out`)); }, timeoutMs);
    socket.once('connect', () => { clearTimeout(timer); resolve(); });
    socket.once('error', (error) => { clearTimeout(timer); reject(error); });
  });
  socket.write('PRSERVICE 1.0\n\n');

  let buffered = '';
  let chunks = null; // non-null while inside a chunk stream
  const lines = [];
  let waiter = null;
  let failure = null;
  socket.setEncoding('utf8');
  socket.on('data', (data) => {
    buffered += data;
    let at;
    while ((at = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      if (chunks !== null) {
        if (line === '') { lines.push(chunks.join('')); chunks = null; } else chunks.push(line);
      } else if (line === CHUNK_STREAM) {
        chunks = [];
      } else {
        lines.push(line);
      }
    }
    if (lines.length > 0 && waiter) { const w = waiter; waiter = null; w.resolve(lines.shift()); }
  });
  const fail = (error) => {
    failure ??= error;
    if (waiter) { const w = waiter; waiter = null; w.reject(failure); }
  };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('connection closed by the server')));

  const nextLine = () => {
    if (lines.length > 0) return Promise.resolve(lines.shift());
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => { waiter = { resolve, reject }; });
  };

  return {
    async call(method, params = {}) {
      const text = JSON.stringify({ [method]: params });
      if (text.length >= 32_767) throw new Error('request too large for this minimal client');
      socket.write(`${text}\n`);
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${method} timed out after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return JSON.parse(await Promise.race([nextLine(), timeout]));
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      socket.destroy();
    },
  };
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host) {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Waits until a PR server at `port` answers a ping (any JSON answer counts, so the echo server
 * passes too). Polls every 100 ms for at most `timeoutMs`; `isAlive()` lets the caller stop early
 * when the server process has died.
 */
export async function waitUntilServing({ port, timeoutMs = 60_000, isAlive = () => true }) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`server on port ${port} exited before serving${lastError ? ` (${lastError.message})` : ''}`);
    try {
      const wire = await openWire({ port, timeoutMs: 2_000 });
      try {
        await wire.call('ping', {});
        return;
      } finally {
        wire.close();
      }
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`server on port ${port} not serving after ${timeoutMs} ms${lastError ? ` (${lastError.message})` : ''}`);
}
