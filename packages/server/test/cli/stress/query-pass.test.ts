import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQueryPass } from '../../../src/cli/stress/query-pass.js';

describe('the query passes around a stress load', () => {
  let silent: Server;
  let port: number;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // Takes the hello and every request, and never answers.
    silent = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('give up a request a server never answers, instead of waiting for ever', async () => {
    const pass = await runQueryPass([{ host: '127.0.0.1', port }], 1, ['{"max-package-pr": {"version": "v", "pkgarch": "a"}}\n'], 'asyncrpc', undefined, 100);
    expect(pass.answers).toEqual([undefined]);
    expect(pass.errors).toBeGreaterThanOrEqual(1);
    expect(pass.firstError).toMatch(/no answer within 0.1 s/);
  });
});
