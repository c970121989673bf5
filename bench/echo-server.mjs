#!/usr/bin/env node
// The framing-and-loopback ceiling: speaks just enough asyncrpc (PRSERVICE 1.0) to be driven by
// a PR client, and answers every request at once with a fixed, valid answer. No JSON parsing, no
// storage: its req/s is what the load generator and the loopback can do on this machine.
//
//   node bench/echo-server.mjs [--bind 127.0.0.1:PORT]
//
// Prints "listening HOST:PORT" on stdout when ready. Stops on SIGTERM/SIGINT, or when its parent
// goes away (so a crashed harness leaves no orphan).
import { createServer } from 'node:net';

const PING = '{"alive": true}\n';
const READONLY = '{"readonly": false}\n';
const VALUE = '{"value": "0"}\n';
const CHUNK_STREAM = '{"chunk-stream": null}';

function answerFor(line) {
  // Requests are {"method": {...}}: the method name starts at offset 2.
  if (line.startsWith('ping', 2)) return PING;
  if (line.startsWith('is-readonly', 2)) return READONLY;
  return VALUE;
}

const USAGE = 'Usage: node bench/echo-server.mjs [--bind 127.0.0.1:PORT]   (default 127.0.0.1:0, any free port)';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}

function parseBind(argv) {
  const at = argv.indexOf('--bind');
  const text = at >= 0 ? argv[at + 1] : '127.0.0.1:0';
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon) || '127.0.0.1';
  if (host !== 'localhost' && !/^127\.\d+\.\d+\.\d+$/.test(host)) {
    console.error(`echo-server: loopback only, not ${host}`);
    process.exit(2);
  }
  return { host, port: Number(text.slice(colon + 1)) };
}

const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.setEncoding('utf8');
  // 0: expect hello; 1: headers; 2: requests; 3: inside a chunk stream
  let state = 0;
  let needsHeaders = false;
  let pending = '';
  socket.on('data', (data) => {
    pending += data;
    let out = '';
    let start = 0;
    let at;
    while ((at = pending.indexOf('\n', start)) >= 0) {
      const line = pending.slice(start, at);
      start = at + 1;
      if (state === 2) {
        if (line === CHUNK_STREAM) state = 3;
        else if (line !== '') out += answerFor(line);
      } else if (state === 3) {
        if (line === '') { state = 2; out += VALUE; }
      } else if (state === 0) {
        if (line !== 'PRSERVICE 1.0') { socket.destroy(); return; }
        state = 1;
      } else if (line === '') {
        state = 2;
        if (needsHeaders) out += '\n';
      } else if (/^needs-headers:\s*true$/i.test(line)) {
        needsHeaders = true;
      }
    }
    pending = pending.slice(start);
    if (pending.length > 1 << 20) { socket.destroy(); return; }
    if (out) socket.write(out);
  });
  socket.on('error', () => socket.destroy());
});

const { host, port } = parseBind(process.argv.slice(2));
server.listen(port, host, () => {
  const address = server.address();
  process.stdout.write(`listening ${address.address}:${address.port}\n`);
});

const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1_000);
watch.unref();
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
