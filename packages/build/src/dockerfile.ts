import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeFlagsFor } from "./node-flags.ts";

/** The Dockerfile every service ships; `pnpm new-service` writes it for new services too. */
export interface ImageSpec {
  service: string;
  /** One line on what the service does, for the image's description label. */
  description: string;
  /** Ports the image exposes: gRPC (and the gateway's public edge), then admin HTTP. */
  ports: number[];
  /** Environment baked in as defaults (PORT, ADMIN_PORT, …); compose and Kubernetes override them. */
  env: Record<string, string>;
  /** Owns a database: the image carries its SQL migrations. */
  database: boolean;
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
# a health probe${spec.database ? ", the SQL migrations" : ""}): no package manager, no node_modules, no sources, no tests.
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
${spec.database ? `COPY --from=build /src/services/${service}/migrations/ /app/migrations/\n` : ""}# distroless keeps node in /nodejs/bin; other bases have it in /usr/local/bin.
ENV PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin \\
    ${env}
# The distroless "nonroot" user; any base works with a numeric id.
USER 65532:65532
EXPOSE ${spec.ports.join(" ")}
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \\
  CMD ["node", "/app/dist/health-probe.mjs"]
# node is PID 1: the service handles SIGTERM itself (drain, then exit 0) and exits on SIGINT.
STOPSIGNAL SIGTERM
ENTRYPOINT [${["node", ...nodeFlagsFor(service), "/app/dist/main.mjs"].map((arg) => JSON.stringify(arg)).join(", ")}]
`;
}

export interface ServiceEntry {
  service: string;
  description: string;
  /** gRPC port (the gateway: its public HTTP port; its gRPC port is internalPort). Admin HTTP: gRPC + 1000. */
  port: number;
  internalPort?: number;
  /** Owns a PostgreSQL database. */
  database: boolean;
}

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Every service that ships, from deploy/services.json (`pnpm new-service` appends to it). */
export function serviceEntries(): ServiceEntry[] {
  return JSON.parse(readFileSync(join(root, "deploy/services.json"), "utf8")) as ServiceEntry[];
}

export function imageSpec(e: ServiceEntry): ImageSpec {
  const grpc = e.internalPort ?? e.port;
  const env: Record<string, string> = { PORT: String(e.port) };
  if (e.internalPort) env.INTERNAL_PORT = String(e.internalPort);
  env.ADMIN_PORT = String(grpc + 1000);
  const ports = [...new Set([e.port, grpc, grpc + 1000])];
  return { service: e.service, description: e.description, ports, env, database: e.database };
}

export const services: ImageSpec[] = serviceEntries().map(imageSpec);
