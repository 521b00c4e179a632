/** The Dockerfile every service ships; `pnpm new-service` writes it for new services too. */
export interface ImageSpec {
  service: string;
  /** One line on what the service does, for the image's description label. */
  description: string;
  /** Ports the image exposes: gRPC (and the gateway's public edge), then admin HTTP. */
  ports: number[];
  /** Environment baked in as defaults (PORT, ADMIN_PORT, …); compose and Kubernetes override them. */
  env: Record<string, string>;
}

export function dockerfile(spec: ImageSpec): string {
  const { service } = spec;
  const env = Object.entries({ NODE_ENV: "production", ...spec.env })
    .map(([k, v]) => `${k}=${v}`)
    .join(" \\\n    ");
  return `# syntax=docker/dockerfile:1
# Image of the ${service} service (${spec.description}).
# Build from the repository root:  docker build -f services/${service}/Dockerfile -t dispatch/${service} .
#
# Stage 1 installs only what ${service} needs from the lockfile and bundles it with esbuild (tree-shaken,
# minified, one file). Stage 2 is a slim Node 24 base holding only what the service runs (the bundle,
# a health probe${service === "gateway" ? "" : ", the SQL migrations"}): no package manager, no node_modules, no sources, no tests.
# Both bases are build arguments, so a mirror or another slim base (e.g. node:24-alpine) can be used.
ARG BUILD_BASE=node:24-bookworm-slim
ARG RUNTIME_BASE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM \${BUILD_BASE} AS build
WORKDIR /src
ENV CI=true
RUN npm install --global --no-audit --no-fund pnpm@10.34.8
COPY . .
RUN --mount=type=cache,id=dispatch-pnpm-store,target=/pnpm-store \\
    pnpm install --frozen-lockfile --prod --store-dir /pnpm-store \\
      --filter "@dispatch/${service}..." --filter @dispatch/build
RUN node packages/build/src/bundle.ts ${service}

FROM \${RUNTIME_BASE}
WORKDIR /app
COPY --from=build /src/services/${service}/dist/ /app/dist/
${service === "gateway" ? "" : `COPY --from=build /src/services/${service}/migrations/ /app/migrations/\n`}# distroless keeps node in /nodejs/bin; other bases have it in /usr/local/bin.
ENV PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin \\
    ${env}
# The distroless "nonroot" user; any base works with a numeric id.
USER 65532:65532
EXPOSE ${spec.ports.join(" ")}
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \\
  CMD ["node", "/app/dist/health-probe.mjs"]
# node is PID 1: the service handles SIGTERM itself (drain, then exit 0) and exits on SIGINT.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/main.mjs"]
`;
}

/** The six services as they ship (ports from ARCHITECTURE.md). */
export const services: ImageSpec[] = [
  spec("identity", "accounts, access and refresh tokens, devices", 50051),
  spec("catalog", "restaurants, menus and prices", 50052),
  spec("orders", "orders, their status history and outbox", 50053),
  spec("payments", "payments with idempotency keys and provider webhooks", 50054),
  spec("notifications", "push notifications through a queue", 50055),
  {
    service: "gateway",
    description: "the public edge: Connect, gRPC-Web and gRPC for the apps",
    ports: [8080, 50050, 51050],
    env: { PORT: "8080", INTERNAL_PORT: "50050", ADMIN_PORT: "51050" },
  },
];

export function spec(service: string, description: string, port: number): ImageSpec {
  return {
    service,
    description,
    ports: [port, port + 1000],
    env: { PORT: String(port), ADMIN_PORT: String(port + 1000) },
  };
}
