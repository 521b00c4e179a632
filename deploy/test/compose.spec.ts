import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { services } from "@dispatch/build/src/dockerfile.ts";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");

interface ComposeService {
  image?: string;
  profiles?: string[];
  build?: { context: string; dockerfile: string };
  ports?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  read_only?: boolean;
  cap_drop?: string[];
}

const raw = readFileSync(join(repo, "docker-compose.yml"), "utf8");
// Default values of ${VAR:-default}, as compose fills them with no .env file.
const compose = parse(raw.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1"), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const all = compose.services;
const databases = [
  ...readFileSync(join(repo, "deploy/compose/postgres-init.sql"), "utf8").matchAll(/CREATE DATABASE (\w+);/g),
].map((m) => m[1]);
const grpcPort = (svc: string) => {
  const spec = services.find((s) => s.service === svc)!;
  return Number(spec.env.INTERNAL_PORT ?? spec.env.PORT);
};

describe("docker-compose.yml", () => {
  it("is valid for docker-compose (when installed; .ci/run installs it)", () => {
    let out: string;
    try {
      out = execFileSync("docker-compose", ["config", "-q"], { cwd: repo, encoding: "utf8", stdio: "pipe" });
    } catch (err) {
      const e = err as { code?: string; stderr?: string };
      if (e.code === "ENOENT") return;
      throw new Error(`docker-compose config failed:\n${e.stderr}`);
    }
    expect(out).toBe("");
  });

  it("runs PostgreSQL 16, Redis and every service, built from its own Dockerfile", () => {
    expect(all.postgres?.image).toMatch(/^postgres:16/);
    expect(all.redis?.image).toMatch(/^redis:/);
    for (const { service } of services) {
      const s = all[service];
      expect(s, service).toBeDefined();
      expect(s!.build).toEqual({ context: ".", dockerfile: `services/${service}/Dockerfile` });
      expect(existsSync(join(repo, s!.build!.dockerfile))).toBe(true);
    }
  });

  it("publishes only the gateway, and every container has a health check", () => {
    const published = Object.entries(all).filter(([, s]) => s.ports?.length && !s.profiles);
    expect(published.map(([name]) => name)).toEqual(["gateway"]);
    expect(all.gateway!.ports).toEqual(["8080:8080"]);
    for (const [name, s] of Object.entries(all))
      if (!s.profiles) expect(s.healthcheck?.test, name).toBeDefined();
    for (const { service } of services)
      expect(all[service]!.healthcheck!.test).toEqual(["CMD", "node", "/app/dist/health-probe.mjs"]);
  });

  it("starts each service only after what it depends on is healthy", () => {
    for (const [name, s] of Object.entries(all)) {
      if (s.profiles) continue;
      for (const [dep, how] of Object.entries(s.depends_on ?? {})) {
        expect(all[dep], `${name} depends on ${dep}`).toBeDefined();
        expect(how.condition, `${name} -> ${dep}`).toBe("service_healthy");
      }
    }
  });

  it("wires every address to a service that listens there, and each database to one the init script makes", () => {
    for (const { service } of services) {
      const env = all[service]!.environment ?? {};
      for (const [key, value] of Object.entries(env)) {
        const url = /^([A-Z]+)_URL$/.exec(key);
        if (url && key !== "DATABASE_URL" && key !== "REDIS_URL" && key !== "WEBHOOK_URL") {
          const target = url[1]!.toLowerCase();
          expect(value, `${service}.${key}`).toBe(`${target}:${grpcPort(target)}`);
        }
        if (key === "EVENT_SUBSCRIBERS") {
          for (const entry of value.split(",")) {
            const [, host, port] = /^\w+=(\w+):(\d+)$/.exec(entry) ?? [];
            expect(Number(port), `${service} subscriber ${entry}`).toBe(grpcPort(host!));
          }
        }
      }
      if (service === "gateway") {
        expect(env.DATABASE_URL).toBeUndefined();
        expect(env.REDIS_URL).toBe("redis://redis:6379");
        continue;
      }
      const db = new URL(env.DATABASE_URL!);
      expect(db.host).toBe("postgres:5432");
      expect(databases).toContain(db.pathname.slice(1));
      expect(all[service]!.depends_on?.postgres?.condition).toBe("service_healthy");
    }
  });

  it("lets a service drain before it is killed, and runs it locked down", () => {
    for (const { service } of services) {
      const s = all[service]!;
      expect(Number.parseInt(s.stop_grace_period!, 10) * 1000).toBeGreaterThan(10_000);
      expect(s.read_only).toBe(true);
      expect(s.cap_drop).toEqual(["ALL"]);
    }
  });
});

describe("docker compose --profile observability", () => {
  it("is valid, and adds a collector, Jaeger, Prometheus and Grafana only under its profile", () => {
    try {
      execFileSync("docker-compose", ["--profile", "observability", "config", "-q"], {
        cwd: repo,
        stdio: "pipe",
      });
    } catch (err) {
      const e = err as { code?: string; stderr?: string };
      if (e.code !== "ENOENT") throw new Error(`docker-compose config failed:\n${e.stderr}`);
    }
    const extra = Object.entries(all).filter(([, s]) => s.profiles?.includes("observability"));
    expect(extra.map(([n]) => n).sort()).toEqual(["grafana", "jaeger", "otel-collector", "prometheus"]);
    for (const { service } of services) {
      // Empty unless the environment sets it: tracing off by default.
      expect(all[service]!.environment?.OTEL_EXPORTER_OTLP_ENDPOINT ?? "", service).toBe("");
      expect(Object.keys(all[service]!.environment ?? {})).toContain("OTEL_EXPORTER_OTLP_ENDPOINT");
    }
  });

  it("has Prometheus scrape every service's admin port", () => {
    const prom = parse(readFileSync(join(repo, "deploy/observability/prometheus.yml"), "utf8")) as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(services.map((s) => `${s.service}:${s.env.ADMIN_PORT}`).sort());
  });
});
