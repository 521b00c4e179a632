#!/usr/bin/env node
/**
 * `pnpm new-service <name>`: a new service with everything the six have — its contract
 * (proto/dispatch/<name>/v1/<name>.proto, gen/ regenerated), services/<name>/ with the standard rooms
 * (config, domain, store, rpc, migrations, a test) and a working example (CreateItem, GetItem), its
 * Dockerfile, its compose entry and database, and its Kubernetes manifests in both overlays.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ServiceEntry, serviceEntries } from "./dockerfile.ts";
import { serviceTemplate } from "./service-template.ts";
import { deployFiles } from "./write-deploy.ts";

const RESERVED = new Set([
  "build",
  "client",
  "db",
  "deploy",
  "events",
  "gen",
  "runtime",
  "testing",
  "type",
  "vendor",
  "app",
]);

/** Why `name` cannot be a service name, or undefined when it can. */
export function invalidName(name: string | undefined, root: string): string | undefined {
  if (!name) return "usage: pnpm new-service <name>   (one lowercase word, e.g. ratings)";
  if (!/^[a-z][a-z0-9]{1,29}$/.test(name))
    return `"${name}" is not a service name: use one lowercase word of 2-30 letters and digits, starting with a letter (it becomes the proto package dispatch.${name.toLowerCase().replace(/[^a-z0-9]/g, "")}.v1, the folder services/${name.toLowerCase()} and a database name)`;
  if (RESERVED.has(name))
    return `"${name}" is reserved (a platform package or proto namespace); pick another name`;
  if (existsSync(join(root, "services", name))) return `services/${name} already exists`;
  if (existsSync(join(root, "proto/dispatch", name))) return `proto/dispatch/${name} already exists`;
  return undefined;
}

function write(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
  console.log(`  ${path}`);
}

function edit(root: string, path: string, change: (text: string) => string): void {
  const before = readFileSync(join(root, path), "utf8");
  const after = change(before);
  if (after === before) throw new Error(`could not add the service to ${path}: its layout changed`);
  writeFileSync(join(root, path), after);
  console.log(`  ${path} (edited)`);
}

export function newService(name: string, root: string, opts: { install?: boolean } = {}): void {
  const problem = invalidName(name, root);
  if (problem) throw new Error(problem);
  const entries = serviceEntries();
  const port = Math.max(...entries.filter((e) => !e.internalPort).map((e) => e.port)) + 1;
  const entry: ServiceEntry = { service: name, description: `the ${name} service`, port, database: true };
  console.log(`new service ${name} on gRPC port ${port} (admin ${port + 1000}):`);

  for (const [path, text] of Object.entries(serviceTemplate(name, port))) write(root, path, text);

  writeFileSync(join(root, "deploy/services.json"), `${JSON.stringify([...entries, entry], null, 2)}\n`);
  console.log("  deploy/services.json (edited)");
  // Dockerfile and deploy/k8s/base/<name>/ from the same writer as the others.
  for (const [path, text] of Object.entries(deployFiles())) {
    if (
      path.startsWith(`deploy/k8s/base/${name}/`) ||
      path === `services/${name}/Dockerfile` ||
      path === "deploy/k8s/base/kustomization.yaml"
    )
      write(root, path, text);
  }

  const createDb = (t: string) => `${t.trimEnd()}\nCREATE DATABASE ${name};\n`;
  edit(root, "deploy/compose/postgres-init.sql", createDb);
  edit(root, "deploy/k8s/overlays/dev/postgres-init.sql", createDb);
  edit(root, "docker-compose.yml", (t) =>
    t.replace(
      "\n  gateway:\n",
      `
  ${name}:
    <<: *service
    build: { context: ., dockerfile: services/${name}/Dockerfile }
    image: dispatch/${name}
    environment:
      DATABASE_URL: postgres://dispatch:\${POSTGRES_PASSWORD:-dispatch}@postgres:5432/${name}
      LOG_LEVEL: \${LOG_LEVEL:-info}
      OTEL_EXPORTER_OTLP_ENDPOINT: \${OTEL_EXPORTER_OTLP_ENDPOINT:-}
    depends_on:
      <<: *database

  gateway:
`,
    ),
  );
  edit(root, "deploy/observability/prometheus.yml", (t) =>
    t.replace(/( {10}- gateway:\d+\n)/, `$1          - ${name}:${port + 1000}\n`),
  );
  edit(root, "deploy/k8s/overlays/dev/kustomization.yaml", (t) =>
    t
      .replace(
        /( {2}- \{ name: dispatch\/gateway, newTag: dev \}\n)/,
        `$1  - { name: dispatch/${name}, newTag: dev }\n`,
      )
      .replace(
        /( {6}- notifications-database-url=[^\n]*\n)/,
        `$1      - ${name}-database-url=postgres://dispatch:dispatch@postgres:5432/${name}?max=4\n`,
      ),
  );
  edit(root, "deploy/k8s/overlays/prod/kustomization.yaml", (t) =>
    t
      .replace(
        /( {2}- \{ name: dispatch\/gateway, newName: [^\n]*\n)/,
        `$1  - { name: dispatch/${name}, newName: registry.example.com/dispatch/${name}, newTag: "1.0.0" }\n`,
      )
      .replace(/( {2}- \{ name: gateway, count: 2 \}\n)/, `$1  - { name: ${name}, count: 2 }\n`),
  );

  const run = (cmd: string, args: string[]) => {
    console.log(`$ ${cmd} ${args.join(" ")}`);
    execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
  };
  if (opts.install !== false) run("pnpm", ["install", "--prefer-offline", "--no-frozen-lockfile"]);
  run("pnpm", ["--filter", `@dispatch/${name}`, "exec", "drizzle-kit", "generate", "--name", "init"]);
  run("pnpm", ["generate"]);
  run("pnpm", ["exec", "biome", "check", "--write", `services/${name}`]);
  console.log(`
done. Next:
  pnpm vitest run services/${name}        its test (PGlite; TEST_DATABASE_URL for PostgreSQL)
  PORT=${port} pnpm --filter @dispatch/${name} start
  edit proto/dispatch/${name}/v1/${name}.proto, then pnpm generate; schema changes: pnpm --filter @dispatch/${name} db:generate`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
  const name = process.argv[2];
  const problem = invalidName(name, root);
  if (problem) {
    console.error(`new-service: ${problem}`);
    process.exit(2);
  }
  newService(name!, root);
}
