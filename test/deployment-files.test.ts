import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLIENT_HELP, SERVER_HELP } from '../packages/server/src/cli/help-text.js';
import { ENV_NAMES, SERVER_DEFAULTS } from '../packages/server/src/cli/settings.js';

// CI has no Docker daemon: the Dockerfile and the manifests are checked by reading them, against
// what the CLI accepts. .ci/check-dockerfile runs the Dockerfile's build and starts its result.

const root = fileURLToPath(new URL('../', import.meta.url));
const deployment = join(root, 'examples/deployment');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The part of the `yaml` package used here; it is a dependency of @prserv/server, not of the root. */
interface Yaml {
  parse(text: string, options?: { merge?: boolean }): unknown;
  parseAllDocuments(text: string): Array<{ errors: unknown[]; toJS(): unknown }>;
}
const yaml = createRequire(join(root, 'packages/server/package.json'))('yaml') as Yaml;

// ---- What the CLI accepts -------------------------------------------------------------------

/** Option lines of a help text start two spaces in: `  --bind HOST:PORT   …`. */
const optionsOf = (help: string) => new Set([...help.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z-]*)/gm)].map(([, flag]) => flag!));
const serverFlags = optionsOf(SERVER_HELP);
const clientFlags = optionsOf(CLIENT_HELP);
const envNames = new Set<string>(Object.values(ENV_NAMES));
const serverConfigKeys = new Set(Object.keys(ENV_NAMES).filter((key) => key !== 'server_addr'));
const portOf = (address: string) => Number(/:(\d+)$/.exec(address)?.[1]);
const protocolPort = portOf(SERVER_DEFAULTS.bind_addr);

// ---- A Dockerfile, by its instructions ------------------------------------------------------

interface Instruction {
  keyword: string;
  /** `--name=value` options of the instruction (COPY --from, HEALTHCHECK --interval). */
  flags: Record<string, string>;
  /** The rest, unparsed. */
  text: string;
}
interface Stage {
  image: string;
  name: string;
  instructions: Instruction[];
}

/** Stages and their instructions; continuation lines joined, comment lines dropped. */
function parseDockerfile(source: string): Stage[] {
  const stages: Stage[] = [];
  const lines = source.split('\n').filter((line) => !/^\s*#/.test(line));
  for (const line of lines.join('\n').replace(/\\\n/g, ' ').split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const keyword = match[1]!.toUpperCase();
    let text = match[2]!.trim();
    const flags: Record<string, string> = {};
    for (let flag = /^--([\w-]+)=(\S+)\s+/.exec(text); flag; flag = /^--([\w-]+)=(\S+)\s+/.exec(text)) {
      flags[flag[1]!] = flag[2]!;
      text = text.slice(flag[0].length);
    }
    if (keyword === 'FROM') {
      const [image, as, name] = text.split(/\s+/);
      stages.push({ image: image!, name: as?.toUpperCase() === 'AS' ? name! : String(stages.length), instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, flags, text });
    }
  }
  return stages;
}

/** Exec form (`["a", "b"]`) or shell form of RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD. */
const command = (text: string) => (text.startsWith('[') ? (JSON.parse(text) as string[]) : ['/bin/sh', '-c', text]);
const all = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
const last = (stage: Stage, keyword: string) => all(stage, keyword).at(-1);
/** `ENV A=1 B="2"` of a stage, later ones winning. */
const envOf = (stage: Stage) =>
  Object.fromEntries(all(stage, 'ENV').flatMap(({ text }) => [...text.matchAll(/(\w+)=("[^"]*"|\S*)/g)].map(([, name, value]) => [name!, value!.replace(/^"|"$/g, '')])));

const dockerfile = read('Dockerfile');
const stages = parseDockerfile(dockerfile);
const runtime = stages.at(-1)!;
const build = stages.find((stage) => all(runtime, 'COPY').some((copy) => copy.flags.from === stage.name));
const imageEnv = envOf(runtime);
const httpPort = portOf(imageEnv.PRSERV_HTTP ?? '');
const imageUser = last(runtime, 'USER')?.text ?? 'root';
const entrypoint = command(last(runtime, 'ENTRYPOINT')?.text ?? '[]');
const pnpmVersion = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager.replace(/^pnpm@/, '');

// ---- The manifests --------------------------------------------------------------------------

type Json = Record<string, any>;
const kubernetesText = read('examples/deployment/kubernetes.yaml');
const kubernetesDocuments = yaml.parseAllDocuments(kubernetesText);
const kubernetes = kubernetesDocuments.map((document) => document.toJS() as Json);
const kubernetesDeployment = kubernetes.find((object) => object.kind === 'Deployment')!;
const kubernetesService = kubernetes.find((object) => object.kind === 'Service')!;
const kubernetesContainer = kubernetesDeployment.spec.template.spec.containers.find((container: Json) => container.name === 'prserv') as Json;
/** Plain values of a container's env; those from a Secret or ConfigMap are absent. */
const kubernetesEnv: Record<string, string> = Object.fromEntries(
  (kubernetesContainer.env as Json[]).filter((entry) => entry.value !== undefined).map((entry) => [entry.name, String(entry.value)]),
);
const containerPort = (port: string | number) =>
  typeof port === 'number' ? port : ((kubernetesContainer.ports as Json[]).find((entry) => entry.name === port)?.containerPort as number | undefined);

const composeText = read('examples/deployment/compose.yaml');
const compose = yaml.parse(composeText, { merge: true }) as Json;
const composePrservServices = Object.entries(compose.services as Record<string, Json>).filter(([, service]) => service.environment?.PRSERV_DATABASE);

const configFile = yaml.parse(read('examples/deployment/prserv.yaml')) as Json;

/** A systemd unit: `Key=value` lines by section; keys may repeat. */
function parseUnit(source: string): Array<{ section: string; key: string; value: string }> {
  let section = '';
  const entries: Array<{ section: string; key: string; value: string }> = [];
  for (const line of source.split('\n').map((text) => text.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else entries.push({ section, key: line.slice(0, line.indexOf('=')), value: line.slice(line.indexOf('=') + 1) });
  }
  return entries;
}
const unit = parseUnit(read('examples/deployment/prserv.service'));
const unitValues = (key: string) => unit.filter((entry) => entry.section === 'Service' && entry.key === key).map((entry) => entry.value);
const unitEnv = Object.fromEntries(unitValues('Environment').map((assignment) => assignment.split(/=(.*)/s).slice(0, 2)));

/** BitBake assignments of a conf file: `NAME = "value"`. */
const bitbakeConf = Object.fromEntries(
  [...read('examples/deployment/local.conf').matchAll(/^(\w+)\s*\??=\s*"([^"]*)"/gm)].map(([, name, value]) => [name!, value!]),
);

const deploymentFiles = ['Dockerfile', 'kubernetes.yaml', 'compose.yaml', 'prserv.service', 'prserv.yaml', 'local.conf'].map((name) =>
  name === 'Dockerfile' ? { name, text: dockerfile } : { name, text: read(`examples/deployment/${name}`) },
);

/** Flags given to `prserv server|client` anywhere, comments included: "… `prserv server --read-only`". */
function prservFlagsIn(text: string): Array<{ command: string; flag: string }> {
  return [...text.matchAll(/\bprserv (server|client)((?:[ \t]+[^\s`'"(),]+)*)/g)].flatMap(([, subcommand, rest]) =>
    [...rest!.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map(([, flag]) => ({ command: subcommand!, flag: flag! })),
  );
}

// ---- The Dockerfile -------------------------------------------------------------------------

describe('Dockerfile', () => {
  it('builds in one stage and runs from another, both on the same node image pinned to a release', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toBeDefined();
    expect(build).not.toBe(runtime);
    for (const stage of stages) expect(stage.image).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim$/);
    expect(runtime.image).toBe(build!.image);
  });

  it('installs with the committed lock file and the pnpm of package.json, builds, and deploys the server', () => {
    const runs = all(build!, 'RUN').map(({ text }) => text);
    const copies = all(build!, 'COPY').map(({ text }) => text);
    for (const run of runs.filter((text) => text.includes('pnpm'))) expect(run).toContain(`npx -y pnpm@${pnpmVersion} `);
    const install = runs.findIndex((text) => / install .*--frozen-lockfile/.test(text));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(runs.findIndex((text) => / run build$/.test(text))).toBeGreaterThan(install);
    expect(runs.some((text) => /--filter @prserv\/server deploy --prod /.test(text))).toBe(true);
    expect(copies.some((text) => text.split(/\s+/).includes('pnpm-lock.yaml') || text === '. .')).toBe(true);
  });

  it('keeps the runtime stage to what the build stage deployed: nothing from the build context', () => {
    const copies = all(runtime, 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy.flags.from).toBe(build!.name);
    expect(all(runtime, 'ADD')).toEqual([]);
  });

  it('runs as a numeric non-root user, which Kubernetes runAsNonRoot can verify', () => {
    expect(imageUser).toMatch(/^\d+(:\d+)?$/);
    expect(Number(imageUser.split(':')[0])).toBeGreaterThan(0);
    const userCreation = all(runtime, 'RUN').find(({ text }) => text.includes('useradd'))?.text;
    expect(userCreation).toContain(`--uid ${imageUser.split(':')[0]}`);
  });

  it('starts `prserv server` with flags the CLI knows, settings coming from PRSERV_* variables', () => {
    expect(entrypoint).toEqual(['prserv']);
    const cmd = command(last(runtime, 'CMD')!.text);
    expect(cmd[0]).toBe('server');
    expect(cmd.filter((word) => word.startsWith('--')).filter((flag) => !serverFlags.has(flag))).toEqual([]);
    expect(imageEnv.PATH?.split(':')).toContain('/opt/prserv/bin');
  });

  it('keeps the embedded store in the volume and listens on every interface at the protocol port', () => {
    expect(all(runtime, 'VOLUME').map(({ text }) => text)).toEqual([imageEnv.PRSERV_DATABASE]);
    expect(imageEnv.PRSERV_BIND_ADDR).toBe(`0.0.0.0:${protocolPort}`);
  });

  it('exposes the protocol port and the HTTP port of PRSERV_HTTP', () => {
    expect(httpPort).toBeGreaterThan(0);
    const exposed = all(runtime, 'EXPOSE').flatMap(({ text }) => text.split(/\s+/).map((port) => Number(port.replace(/\/tcp$/, ''))));
    expect(exposed.sort()).toEqual([protocolPort, httpPort].sort());
  });

  it('sets only PRSERV_* variables that prserv reads', () => {
    const names = Object.keys(imageEnv).filter((name) => name.startsWith('PRSERV_'));
    expect(names.filter((name) => !envNames.has(name))).toEqual([]);
  });

  it('leaves dependencies and build outputs out of the build context, and keeps what the build needs', () => {
    const rules = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const ignored = (path: string) =>
      rules.reduce((out, rule) => {
        const include = rule.startsWith('!');
        const pattern = (include ? rule.slice(1) : rule).replace(/^\//, '').replace(/\/$/, '');
        const source = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*\*\//g, '\0').replace(/\*/g, '[^/]*').replace(/\0/g, '(.*/)?');
        return new RegExp(`^${source}(/.*)?$`).test(path) ? !include : out;
      }, false);
    for (const path of ['node_modules/x', 'packages/core/node_modules/x', 'packages/server/dist/cli.js', '.git/HEAD']) expect(ignored(path), path).toBe(true);
    for (const path of ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'tsconfig.base.json', 'packages/core/src/index.ts', 'packages/core/scripts/make-embedded-template.mjs', 'examples/package.json']) {
      expect(ignored(path), path).toBe(false);
    }
  });
});

describe('Dockerfile HEALTHCHECK', () => {
  const healthcheck = last(runtime, 'HEALTHCHECK')!;
  const [program, ...args] = command(healthcheck.text.replace(/^CMD\s+/, ''));

  /** Runs the health check as Docker would, with PRSERV_HTTP as given; resolves with its exit code. */
  const runCheck = (http: string | undefined) =>
    new Promise<number>((done) => {
      const env = { ...process.env };
      delete env.PRSERV_HTTP;
      if (http !== undefined) env.PRSERV_HTTP = http;
      execFile(program === 'node' ? process.execPath : program!, args, { env, timeout: 15_000 }, (error) => done(error ? Number(error.code ?? 1) : 0));
    });
  /** An HTTP server answering `status` on /healthz and 404 elsewhere. */
  const withHealthServer = async (status: number, use: (port: number) => Promise<void>) => {
    const server: Server = createServer((request, response) => response.writeHead(request.url === '/healthz' ? status : 404).end());
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    try {
      await use((server.address() as AddressInfo).port);
    } finally {
      await new Promise((closed) => server.close(closed));
    }
  };

  it('is an exec-form command with an interval, a timeout and a start period', () => {
    expect(healthcheck.text).toMatch(/^CMD \[/);
    expect(Object.keys(healthcheck.flags)).toEqual(expect.arrayContaining(['interval', 'timeout', 'start-period']));
  });

  it('passes when PRSERV_HTTP is unset or empty: no HTTP listener is not ill health', async () => {
    expect(await runCheck(undefined)).toBe(0);
    expect(await runCheck('')).toBe(0);
  });

  it('passes when /healthz answers 200 at the address of PRSERV_HTTP, through loopback for 0.0.0.0', async () => {
    await withHealthServer(200, async (port) => {
      expect(await runCheck(`0.0.0.0:${port}`)).toBe(0);
      expect(await runCheck(`127.0.0.1:${port}`)).toBe(0);
      expect(await runCheck(`:${port}`)).toBe(0);
    });
  });

  it('fails when /healthz answers otherwise or nothing listens', async () => {
    let closedPort = 0;
    await withHealthServer(503, async (port) => {
      closedPort = port;
      expect(await runCheck(`0.0.0.0:${port}`)).toBe(1);
    });
    expect(await runCheck(`127.0.0.1:${closedPort}`)).toBe(1);
  });
});

// ---- The manifests --------------------------------------------------------------------------

describe('examples/deployment', () => {
  it('has YAML that parses', () => {
    for (const document of kubernetesDocuments) expect(document.errors).toEqual([]);
    expect(kubernetes.map((object) => object.kind)).toEqual(['Deployment', 'Service']);
    expect(compose.services).toBeDefined();
    expect(configFile.server).toBeDefined();
  });

  it('uses only PRSERV_* variables that prserv reads (PRSERV_HOST being BitBake’s)', () => {
    const unknown = deploymentFiles
      .map(({ name, text }) => {
        const used = new Set([...text.replace(/PRSERV_HOST = "/g, '').matchAll(/\bPRSERV_[A-Z0-9_]+/g)].map(([variable]) => variable));
        return [name, [...used].filter((variable) => !envNames.has(variable))] as const;
      })
      .filter(([, names]) => names.length > 0);
    expect(Object.fromEntries(unknown)).toEqual({});
  });

  it('gives prserv only flags its help lists', () => {
    const given = [
      ...deploymentFiles.flatMap(({ text }) => prservFlagsIn(text)),
      ...(kubernetesContainer.args as string[]).filter((word) => word.startsWith('--')).map((flag) => ({ command: 'server', flag })),
      ...composePrservServices.flatMap(([, service]) => ((service.command ?? []) as string[]).filter((word) => word.startsWith('--')).map((flag) => ({ command: 'server', flag }))),
    ];
    expect(given.filter(({ command, flag }) => !(command === 'server' ? serverFlags : clientFlags).has(flag))).toEqual([]);
  });

  it('uses only config keys prserv reads, with the same ports', () => {
    expect(Object.keys(configFile.server).filter((key) => !serverConfigKeys.has(key))).toEqual([]);
    expect(Object.keys(configFile.client)).toEqual(['server_addr']);
    expect(portOf(configFile.server.bind_addr)).toBe(protocolPort);
    expect(portOf(configFile.server.http)).toBe(httpPort);
    expect(portOf(configFile.client.server_addr)).toBe(protocolPort);
  });

  it('points BitBake at the protocol port', () => {
    expect(bitbakeConf.PRSERV_HOST).toMatch(new RegExp(`^[\\w.-]+:${protocolPort}$`));
    for (const { name, text } of deploymentFiles) {
      for (const [, address] of text.matchAll(/PRSERV_HOST = "([^"]+)"/g)) expect(portOf(address!), name).toBe(protocolPort);
    }
  });
});

describe('examples/deployment/kubernetes.yaml', () => {
  it('runs several replicas of the image on one PostgreSQL database from a Secret', () => {
    expect(kubernetesDeployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(kubernetesContainer.args).toEqual(['server']);
    const database = (kubernetesContainer.env as Json[]).find((entry) => entry.name === ENV_NAMES.database)!;
    expect(database.valueFrom.secretKeyRef).toMatchObject({ name: expect.any(String), key: expect.any(String) });
  });

  it('runs as the image’s non-root user', () => {
    const security = kubernetesDeployment.spec.template.spec.securityContext as Json;
    expect(security.runAsNonRoot).toBe(true);
    expect(`${security.runAsUser}:${security.runAsGroup}`).toBe(imageUser.includes(':') ? imageUser : `${imageUser}:${imageUser}`);
  });

  it('listens on the protocol port and serves HTTP on the image’s HTTP port', () => {
    expect(portOf(kubernetesEnv.PRSERV_BIND_ADDR!)).toBe(protocolPort);
    expect(containerPort('prserv')).toBe(protocolPort);
    expect(portOf(kubernetesEnv.PRSERV_HTTP!)).toBe(httpPort);
    expect(containerPort('http')).toBe(httpPort);
  });

  it('probes liveness on /healthz and readiness on /readyz, at the HTTP port', () => {
    const probes = kubernetesContainer as Record<string, Json | undefined>;
    expect(probes.livenessProbe?.httpGet.path).toBe('/healthz');
    expect(probes.readinessProbe?.httpGet.path).toBe('/readyz');
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      if (probes[probe]) expect(containerPort(probes[probe]!.httpGet.port), probe).toBe(httpPort);
    }
  });

  it('has a Service whose ports reach the container’s, the protocol one at its own number', () => {
    expect(kubernetesService.spec.selector).toEqual(kubernetesDeployment.spec.selector.matchLabels);
    const ports = kubernetesService.spec.ports as Json[];
    for (const port of ports) expect(containerPort(port.targetPort), port.name).toBe(port.port);
    expect(ports.map((port) => port.port)).toContain(protocolPort);
  });

  it('states a connection budget that matches the manifest and fits PostgreSQL’s default max_connections', () => {
    const [, replicas, surge, perReplica, total] = /\((\d+) \+ (\d+)\) × (\d+) = (\d+)/.exec(kubernetesText)!.map(Number);
    expect(replicas).toBe(kubernetesDeployment.spec.replicas);
    expect(surge).toBe(kubernetesDeployment.spec.strategy.rollingUpdate.maxSurge);
    expect(perReplica).toBe(Number(kubernetesEnv.PRSERV_MAX_CONNECTIONS));
    expect(total).toBe((replicas! + surge!) * perReplica!);
    expect(total).toBeLessThanOrEqual(100 - 3);
  });
});

describe('examples/deployment/compose.yaml', () => {
  it('runs two prserv replicas built from this repository on one healthy PostgreSQL', () => {
    expect(composePrservServices).toHaveLength(2);
    const databases = new Set(composePrservServices.map(([, service]) => service.environment.PRSERV_DATABASE as string));
    expect(databases.size).toBe(1);
    const host = new URL([...databases][0]!).hostname;
    expect(compose.services[host]).toBeDefined();
    for (const [name, service] of composePrservServices) {
      expect(existsSync(join(resolve(deployment, service.build as string), 'Dockerfile')), name).toBe(true);
      expect(service.depends_on[host], name).toEqual({ condition: 'service_healthy' });
      expect(compose.services[host].healthcheck, name).toBeDefined();
    }
  });

  it('publishes the image’s protocol and HTTP ports', () => {
    for (const [name, service] of composePrservServices) {
      const bind = (service.environment.PRSERV_BIND_ADDR as string | undefined) ?? imageEnv.PRSERV_BIND_ADDR!;
      expect(portOf(service.environment.PRSERV_HTTP), name).toBe(httpPort);
      const published = (service.ports as string[]).map((mapping) => Number(mapping.split(':').at(-1)));
      expect(published.sort(), name).toEqual([portOf(bind), httpPort].sort());
    }
  });

  it('states a connection budget that matches the file and fits the max_connections it sets', () => {
    const [, replicas, perReplica, total] = /(\d+) × (\d+) = (\d+)/.exec(composeText)!.map(Number);
    expect(replicas).toBe(composePrservServices.length);
    for (const [, service] of composePrservServices) expect(Number(service.environment.PRSERV_MAX_CONNECTIONS)).toBe(perReplica);
    expect(total).toBe(replicas! * perReplica!);
    const maxConnections = Number(/max_connections=(\d+)/.exec((compose.services.postgres.command as string[]).join(' '))?.[1]);
    expect(total).toBeLessThanOrEqual(maxConnections - 3);
  });
});

describe('examples/deployment/prserv.service', () => {
  it('runs `prserv server` as its own user, on the protocol and HTTP ports', () => {
    expect(unitValues('User')).toEqual(['prserv']);
    expect(unitValues('ExecStart')[0]).toMatch(/\bprserv server\b/);
    expect(portOf(unitEnv.PRSERV_BIND_ADDR!)).toBe(protocolPort);
    expect(portOf(unitEnv.PRSERV_HTTP!)).toBe(httpPort);
  });

  it('stops with SIGTERM, which prserv drains on, and gives it time to', () => {
    expect(unitValues('KillSignal')).toEqual(['SIGTERM']);
    expect(Number(unitValues('TimeoutStopSec')[0])).toBeGreaterThan(10);
  });
});

describe('examples/deployment folder', () => {
  it('holds only files these tests read, so that a new manifest is checked too', () => {
    const names = deploymentFiles.map(({ name }) => name).filter((name) => name !== 'Dockerfile');
    expect(readdirSync(deployment).sort()).toEqual(names.sort());
  });
});
