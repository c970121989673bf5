// A minimal PostgreSQL client (simple-query protocol only) so the bench scripts stay free of
// dependencies: enough to create and drop databases and read pg_stat views. Authentication:
// trust, cleartext, md5 and SCRAM-SHA-256. Loopback servers only.
import { connect } from 'node:net';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { isLoopback } from './wire.mjs';

/** Parses a postgres:// URL into connection parameters. */
export function parsePgUrl(url) {
  const u = new URL(url);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`not a PostgreSQL URL: ${url}`);
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username || 'postgres'),
    password: decodeURIComponent(u.password || ''),
    database: decodeURIComponent(u.pathname.replace(/^\//, '') || 'postgres'),
  };
}

/** The same URL pointing at another database. */
export function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/**
 * Connects and returns `{ query(sql) → rows (objects of strings/null), close() }`.
 * Every step is bounded by `timeoutMs`.
 */
export async function pgConnect(url, { timeoutMs = 30_000 } = {}) {
  const { host, port, user, password, database } = parsePgUrl(url);
  if (!isLoopback(host)) throw new Error(`refusing non-loopback PostgreSQL host ${host}`);
  const socket = connect({ host, port });
  let buffer = Buffer.alloc(0);
  const queue = [];
  let waiter = null;
  let failure = null;
  socket.on('data', (data) => {
    buffer = Buffer.concat([buffer, data]);
    while (buffer.length >= 5) {
      const length = buffer.readInt32BE(1);
      if (buffer.length < 1 + length) break;
      queue.push({ type: String.fromCharCode(buffer[0]), body: buffer.subarray(5, 1 + length) });
      buffer = buffer.subarray(1 + length);
    }
    if (queue.length > 0 && waiter) { const w = waiter; waiter = null; w.resolve(queue.shift()); }
  });
  const fail = (error) => {
    failure ??= error;
    if (waiter) { const w = waiter; waiter = null; w.reject(failure); }
  };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('PostgreSQL closed the connection')));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });

  const next = () => {
    if (queue.length > 0) return Promise.resolve(queue.shift());
    if (failure) return Promise.reject(failure);
    let timer;
    return new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`PostgreSQL did not answer within ${timeoutMs} ms`)), timeoutMs);
      waiter = { resolve, reject };
    }).finally(() => clearTimeout(timer));
  };
  const send = (type, body) => {
    const head = Buffer.alloc(type ? 5 : 4);
    if (type) {
      head.write(type, 0);
      head.writeInt32BE(body.length + 4, 1);
    } else {
      head.writeInt32BE(body.length + 4, 0);
    }
    socket.write(Buffer.concat([head, body]));
  };
  const cstr = (s) => Buffer.from(`${s}\0`, 'utf8');
  const errorText = (body) => {
    const fields = {};
    let at = 0;
    while (at < body.length && body[at] !== 0) {
      const code = String.fromCharCode(body[at]);
      const end = body.indexOf(0, at + 1);
      fields[code] = body.toString('utf8', at + 1, end);
      at = end + 1;
    }
    return `${fields.S ?? 'ERROR'} ${fields.C ?? ''}: ${fields.M ?? 'unknown error'}`;
  };

  // Startup, protocol 3.0.
  const params = Buffer.concat([cstr('user'), cstr(user), cstr('database'), cstr(database), cstr('client_encoding'), cstr('UTF8'), Buffer.from([0])]);
  const version = Buffer.alloc(4);
  version.writeInt32BE(196608, 0);
  send(null, Buffer.concat([version, params]));

  let scram = null;
  for (let steps = 0; steps < 100; steps += 1) {
    const msg = await next();
    if (msg.type === 'E') {
      socket.destroy();
      throw new Error(`PostgreSQL: ${errorText(msg.body)}`);
    }
    if (msg.type === 'Z') break;
    if (msg.type !== 'R') continue;
    const kind = msg.body.readInt32BE(0);
    if (kind === 0) continue;
    if (kind === 3) {
      send('p', cstr(password));
    } else if (kind === 5) {
      const salt = msg.body.subarray(4, 8);
      const inner = createHash('md5').update(password + user).digest('hex');
      const outer = createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
      send('p', cstr(`md5${outer}`));
    } else if (kind === 10) {
      const nonce = randomBytes(18).toString('base64');
      const firstBare = `n=*,r=${nonce}`;
      const first = Buffer.from(`n,,${firstBare}`);
      const len = Buffer.alloc(4);
      len.writeInt32BE(first.length, 0);
      send('p', Buffer.concat([cstr('SCRAM-SHA-256'), len, first]));
      scram = { nonce, firstBare };
    } else if (kind === 11) {
      const serverFirst = msg.body.subarray(4).toString('utf8');
      const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
      if (!attrs.r?.startsWith(scram.nonce)) throw new Error('SCRAM: bad server nonce');
      const salted = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = createHmac('sha256', salted).update('Client Key').digest();
      const storedKey = createHash('sha256').update(clientKey).digest();
      const withoutProof = `c=biws,r=${attrs.r}`;
      const authMessage = `${scram.firstBare},${serverFirst},${withoutProof}`;
      const signature = createHmac('sha256', storedKey).update(authMessage).digest();
      const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
      send('p', Buffer.from(`${withoutProof},p=${proof.toString('base64')}`));
    } else if (kind === 12) {
      continue;
    } else {
      socket.destroy();
      throw new Error(`PostgreSQL asks for an authentication method this client lacks (${kind})`);
    }
  }

  return {
    /** Runs one simple query (may hold several statements); resolves with the last result's rows. */
    async query(sql) {
      send('Q', cstr(sql));
      let columns = [];
      let rows = [];
      let error = null;
      for (;;) {
        const msg = await next();
        if (msg.type === 'T') {
          const count = msg.body.readInt16BE(0);
          columns = [];
          rows = [];
          let at = 2;
          for (let i = 0; i < count; i += 1) {
            const end = msg.body.indexOf(0, at);
            columns.push(msg.body.toString('utf8', at, end));
            at = end + 1 + 18;
          }
        } else if (msg.type === 'D') {
          const count = msg.body.readInt16BE(0);
          const row = {};
          let at = 2;
          for (let i = 0; i < count; i += 1) {
            const len = msg.body.readInt32BE(at);
            at += 4;
            row[columns[i]] = len < 0 ? null : msg.body.toString('utf8', at, at + len);
            if (len > 0) at += len;
          }
          rows.push(row);
        } else if (msg.type === 'E') {
          error = new Error(`PostgreSQL: ${errorText(msg.body)}`);
        } else if (msg.type === 'Z') {
          if (error) throw error;
          return rows;
        }
      }
    },
    close() {
      try {
        send('X', Buffer.alloc(0));
      } catch {
        // already closed
      }
      socket.destroy();
    },
  };
}

/** Runs one statement on a short-lived connection. */
export async function pgQuery(url, sql) {
  const client = await pgConnect(url);
  try {
    return await client.query(sql);
  } finally {
    client.close();
  }
}

/** Quotes an SQL identifier. */
export function ident(name) {
  return `"${String(name).replace(/"/g, '""')}"`;
}
