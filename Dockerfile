# prserv: the PR server for BitBake/Yocto, as a container image.
#
#   docker build -t prserv .
#   docker run -d -p 8585:8585 -p 9585:9585 -v prserv-data:/var/lib/prserv prserv
#   docker run -d -p 8585:8585 -e PRSERV_DATABASE=postgres://prserv:…@db/prserv prserv
#
# Settings are PRSERV_* variables (set below as defaults, overridden by `docker run -e`) or flags
# after the image name (`docker run prserv server --read-only`); flags win over the environment.
#
# .ci/check-dockerfile runs the build stage's RUN lines in a temporary folder and starts prserv from
# what the runtime stage copies: keep build-stage paths relative to WORKDIR.

# The Node release CI tests on, pinned so that a rebuild gets the same runtime.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
# The lock file alone first: downloads stay cached in their own layer until it changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN npx -y pnpm@12.4.2 fetch
COPY . .
RUN npx -y pnpm@12.4.2 install --offline --frozen-lockfile
RUN npx -y pnpm@12.4.2 run build
# The server with its production dependencies only; the workspace packages it uses (`workspace:*`)
# are copied in as their published files, so the result needs nothing from the workspace.
RUN npx -y pnpm@12.4.2 --filter @prserv/server deploy --prod .deploy/prserv
# `prserv` on PATH, as `npm install -g @prserv/server` would put it.
RUN mkdir .deploy/prserv/bin && ln -s ../dist/cli.js .deploy/prserv/bin/prserv

FROM node:20.20.2-bookworm-slim AS runtime
# A numeric uid, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 prserv \
  && useradd --system --uid 10001 --gid prserv --home-dir /var/lib/prserv --shell /usr/sbin/nologin prserv \
  && mkdir -p /var/lib/prserv \
  && chown prserv:prserv /var/lib/prserv
# Owned by root: the server cannot modify its own code.
COPY --from=build /src/.deploy/prserv /opt/prserv
ENV PATH=/opt/prserv/bin:$PATH \
  NODE_ENV=production \
  PRSERV_DATABASE=/var/lib/prserv \
  PRSERV_BIND_ADDR=0.0.0.0:8585 \
  PRSERV_HTTP=0.0.0.0:9585
# Defaults as environment rather than as flags in CMD: a flag would silently win over the
# PRSERV_DATABASE that an orchestrator injects from a secret.
#
# Listening on every interface is what a container needs (its loopback is unreachable from
# outside), and the server then logs one warning while PRSERV_ALLOW is unset. The image sets no
# allow list: it cannot know the builders' networks (Docker NAT, pod CIDRs, 100.64.0.0/10 in some
# clusters), and a guessed one would close legitimate builders' connections. Set PRSERV_ALLOW (and
# PRSERV_ALLOW_WRITE), or restrict the network around the container, as the examples do.
#
# The embedded store is one process per folder; for several replicas use PostgreSQL.
VOLUME /var/lib/prserv
WORKDIR /var/lib/prserv
USER 10001:10001
# 8585: the PR protocol (BitBake: PRSERV_HOST = "host:8585"). 9585: /metrics, /healthz and /readyz.
EXPOSE 8585 9585
# Probes the address PRSERV_HTTP names (0.0.0.0 and :: through loopback) and passes when it is
# empty: `-e PRSERV_HTTP=` turns the HTTP listener off, and that must not make the container
# unhealthy. Set the address with PRSERV_HTTP rather than --http, so that this check finds it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const a = process.env.PRSERV_HTTP; if (!a) process.exit(0); const i = a.lastIndexOf(':'); let host = a.slice(0, i); if (host.startsWith('[')) host = host.slice(1, -1); if (host === '' || host === '0.0.0.0') host = '127.0.0.1'; if (host === '::') host = '::1'; require('node:http').get({ host, port: a.slice(i + 1), path: '/healthz', timeout: 4000 }, (res) => process.exit(res.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1));"]
# prserv drains requests in flight on SIGTERM (docker stop) and exits 0.
ENTRYPOINT ["prserv"]
CMD ["server"]
