/**
 * The whole stack for the load scenarios, as the images run it: every service's bundle
 * (services/<svc>/dist/main.mjs) as its own process on its own PostgreSQL database, the gateway's rate
 * limits in Redis, logs at info (each per-RPC line is produced and written to a file per service, read back for error lines). Wired as
 * docker-compose.yml wires it; only the rate limits are raised (one user from one address is the load).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, rssAnonMb, rssMb, serving } from "./startup.ts";

const defaultRoot = fileURLToPath(new URL("..", import.meta.url));
let stacks = 0;
const admin = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const redis = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const SERVICES = ["identity", "catalog", "orders", "payments", "notifications", "gateway"] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface Stack {
  gatewayUrl: string;
  /** Each service's stdout (its JSON log lines at info) is written to <logDir>/<service>.log. */
  logDir: string;
  /** Admin (metrics) port per service. */
  adminPorts: Record<ServiceName, number>;
  pids: Record<ServiceName, number>;
  /** A service's DATABASE_URL. */
  databaseUrl: (svc: ServiceName) => string;
  /** `psql` on a service's database. */
  psql: (svc: ServiceName, sql: string, vars?: Record<string, string>) => string;
  rss: () => Record<ServiceName, number>;
  /** RSS and its anonymous part (the process's own memory), MB. */
  rssAnon: () => Record<ServiceName, { rssMb: number; anonMb: number }>;
  stop: () => Promise<void>;
}

/**
 * `root`: the checkout whose bundles run (default this one); bench/ab.ts passes an earlier commit's
 * checkout to measure both side by side.
 */
export async function startStack(root = defaultRoot): Promise<Stack> {
  const tag = `dispatch_bench_${process.pid}_${stacks++}`;
  const url = new URL(admin);
  const pg = ["-h", url.hostname, "-p", url.port || "5432", "-U", url.username || "postgres"];
  const dbName = (svc: ServiceName) => `${tag}_${svc}`;
  const databaseUrl = (svc: ServiceName) => {
    const u = new URL(admin);
    u.pathname = `/${dbName(svc)}`;
    return u.toString();
  };
  const withDb = SERVICES.filter((s) => s !== "gateway");
  for (const svc of withDb) {
    execFileSync("dropdb", [...pg, "--if-exists", dbName(svc)]);
    execFileSync("createdb", [...pg, dbName(svc)]);
  }
  const ports = {} as Record<ServiceName, number>;
  const adminPorts = {} as Record<ServiceName, number>;
  for (const svc of SERVICES) {
    ports[svc] = await freePort();
    adminPorts[svc] = await freePort();
  }
  const internal = await freePort();
  const at = (svc: ServiceName) => `127.0.0.1:${svc === "gateway" ? internal : ports[svc]}`;
  const env: Record<ServiceName, Record<string, string>> = {
    identity: {},
    catalog: { SEED_DEMO_DATA: "true" },
    orders: {
      CATALOG_URL: at("catalog"),
      EVENT_SUBSCRIBERS: `gateway=${at("gateway")},notifications=${at("notifications")}`,
    },
    payments: {
      EVENT_SUBSCRIBERS: `orders=${at("orders")},notifications=${at("notifications")}`,
      WEBHOOK_URL: `http://127.0.0.1:${ports.gateway}/webhooks/payments`,
    },
    notifications: { IDENTITY_URL: at("identity") },
    gateway: {
      INTERNAL_PORT: String(internal),
      IDENTITY_URL: at("identity"),
      CATALOG_URL: at("catalog"),
      ORDERS_URL: at("orders"),
      PAYMENTS_URL: at("payments"),
      REDIS_URL: redis,
      RATE_LIMIT_PREFIX: tag,
      // The highest the gateway accepts: the whole load comes from one user at one address.
      RATE_LIMIT_IP_PER_MINUTE: "1000000",
      RATE_LIMIT_USER_PER_MINUTE: "1000000",
    },
  };
  // BENCH_LOG_DIR keeps the logs; otherwise they go to a temporary folder removed at stop.
  const logDir = process.env.BENCH_LOG_DIR ?? mkdtempSync(join(tmpdir(), "dispatch-bench-logs-"));
  const children = new Map<ServiceName, ChildProcess>();
  const stop = async () => {
    await Promise.all(
      [...children.values()].map(
        (c) =>
          new Promise((resolve) => {
            if (c.exitCode !== null) return resolve(undefined);
            c.once("exit", resolve);
            c.kill("SIGTERM");
          }),
      ),
    );
    children.clear();
    if (!process.env.BENCH_LOG_DIR) rmSync(logDir, { recursive: true, force: true });
    for (const svc of withDb) execFileSync("dropdb", [...pg, "--if-exists", "--force", dbName(svc)]);
  };
  process.once("exit", () => {
    for (const c of children.values()) c.kill("SIGKILL");
  });
  // The node flags the images run with, as the checkout being run sets them (bench/ab.ts runs an earlier one).
  const flagsFile = join(root, "packages/build/src/node-flags.ts");
  const flagsModule = existsSync(flagsFile) ? await import(flagsFile) : undefined;
  // A service's own flags where the checkout has them (nodeFlagsFor), else the flags every service runs with.
  const nodeFlagsOf = (svc: string): readonly string[] =>
    flagsModule?.nodeFlagsFor?.(svc) ?? flagsModule?.NODE_FLAGS ?? [];
  try {
    for (const svc of SERVICES) {
      // BENCH_CPU_PROF_DIR: every service writes a V8 CPU profile there when it stops (bench/profile.ts reads them).
      const prof = process.env.BENCH_CPU_PROF_DIR;
      // BENCH_NODE_FLAGS: more node flags for every service (e.g. --trace-gc with BENCH_LOG_DIR).
      const flags = [
        ...nodeFlagsOf(svc),
        ...(prof ? ["--cpu-prof", "--cpu-prof-dir", prof, "--cpu-prof-name", `${svc}.cpuprofile`] : []),
        ...(process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? []),
      ];
      const child = spawn(process.execPath, [...flags, `services/${svc}/dist/main.mjs`], {
        cwd: root,
        env: {
          PATH: process.env.PATH ?? "",
          NODE_ENV: "production",
          LOG_LEVEL: "info",
          PORT: String(ports[svc]),
          ADMIN_PORT: String(adminPorts[svc]),
          ...(svc === "gateway" ? {} : { DATABASE_URL: databaseUrl(svc) }),
          ...env[svc],
          // BENCH_SERVICE_ENV: more environment for every service, space-separated NAME=value pairs.
          ...Object.fromEntries(
            (process.env.BENCH_SERVICE_ENV?.split(" ").filter(Boolean) ?? []).map((kv) => [
              kv.slice(0, kv.indexOf("=")),
              kv.slice(kv.indexOf("=") + 1),
            ]),
          ),
        },
        stdio: ["ignore", openSync(`${logDir}/${svc}.log`, "w"), "inherit"],
      });
      children.set(svc, child);
    }
    for (const svc of SERVICES) await serving(svc === "gateway" ? internal : ports[svc], 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const pids = Object.fromEntries([...children].map(([s, c]) => [s, c.pid!])) as Record<ServiceName, number>;
  return {
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    logDir,
    adminPorts,
    pids,
    databaseUrl,
    psql: (svc, sql, vars = {}) =>
      execFileSync(
        "psql",
        [
          ...pg,
          "-d",
          dbName(svc),
          "-v",
          "ON_ERROR_STOP=1",
          "-qAt",
          ...Object.entries(vars).flatMap(([k, v]) => ["-v", `${k}=${v}`]),
        ],
        { input: sql, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      ),
    rss: () => Object.fromEntries(SERVICES.map((s) => [s, rssMb(pids[s])])) as Record<ServiceName, number>,
    rssAnon: () =>
      Object.fromEntries(SERVICES.map((s) => [s, rssAnonMb(pids[s])])) as ReturnType<Stack["rssAnon"]>,
    stop,
  };
}

/**
 * One scrape of a Prometheus counter: its samples whose labels include all of `match`, summed by the
 * value of the label `by`.
 */
export async function counterBy(
  adminPort: number,
  name: string,
  match: Record<string, string>,
  by: string,
): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const sums = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const labels = line.slice(name.length + 1, line.lastIndexOf("}"));
    if (!Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) continue;
    const key = new RegExp(`(?:^|,)${by}="([^"]*)"`).exec(labels)?.[1] ?? "";
    sums.set(key, (sums.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return sums;
}

/** CPU seconds used so far by each service, by all PostgreSQL processes and by Redis (from /proc). */
export function cpuSeconds(stack: { pids: Record<string, number> }): Record<string, number> {
  const ticks = (pid: number) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
      return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15 of stat)
    } catch {
      return 0; // exited
    }
  };
  const byName = (name: string) => {
    let sum = 0;
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, "utf8").trim().startsWith(name)) sum += ticks(Number(pid));
      } catch {
        // gone
      }
    }
    return sum;
  };
  const out: Record<string, number> = {};
  for (const [svc, pid] of Object.entries(stack.pids)) out[svc] = ticks(pid) / 100;
  out.postgres = byName("postgres") / 100;
  out.redis = byName("redis-server") / 100;
  return out;
}

/** CPU time per call, in µs, of each process between two cpuSeconds() readings. */
export function cpuPerCall(before: Record<string, number>, after: Record<string, number>, calls: number) {
  return Object.fromEntries(
    Object.keys(after).map((k) => [k, Math.round((((after[k] ?? 0) - (before[k] ?? 0)) * 1e6) / calls)]),
  );
}

/** The service log lines at error level written since `since` (ms epoch), for explaining a failed run. */
export function errorLines(stack: Pick<Stack, "logDir">, since: number, max = 3): string[] {
  const found: string[] = [];
  for (const file of readdirSync(stack.logDir)) {
    for (const line of readFileSync(join(stack.logDir, file), "utf8").split("\n")) {
      if (!line.includes('"level":50')) continue;
      try {
        const l = JSON.parse(line) as {
          time: number;
          msg?: string;
          err?: { message?: string };
          rpc?: unknown;
        };
        if (l.time < since) continue;
        found.push(`${file.replace(/\.log$/, "")}: ${l.msg ?? ""} ${l.err?.message ?? ""}`.trim());
      } catch {
        // a line cut by the end of the file
      }
      if (found.length >= max) return found;
    }
  }
  return found;
}
