import { execFile, execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Code, ConnectError } from "@connectrpc/connect";
import { closeClients } from "@dispatch/client";
import { CatalogService, GetMenuRequestSchema } from "@dispatch/gen/dispatch/catalog/v1/catalog_pb.ts";
import { createTestDatabase, freePort, startServiceProcess, testClient } from "@dispatch/testing";
import postgres from "postgres";
import { afterAll } from "vitest";

/** The shared PostgreSQL the fault tests create their databases on (CI sets TEST_DATABASE_URL). */
process.env.TEST_DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  await closeClients();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Runs `undo` after the file's tests (last registered first), whether they passed or not. */
export function onCleanup(...undo: (() => Promise<unknown>)[]): void {
  cleanups.push(...undo);
}

const resultsDir = fileURLToPath(new URL("./.results/", import.meta.url));

/** Records a scenario's figures for docs/RELIABILITY.md (`pnpm test:faults` prints the table). */
export function record(scenario: string, figures: Record<string, unknown>): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${scenario}.json`), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`[${scenario}]`, JSON.stringify(figures));
}

export interface Outcome {
  /** ms since the scenario's t0 when the call was sent */
  at: number;
  ms: number;
  code: Code | 0;
  message?: string;
}

/** Runs `call` and records when, how long and with what code it ended. */
export async function timed(t0: number, out: Outcome[], call: () => Promise<unknown>): Promise<void> {
  const start = performance.now();
  try {
    await call();
    out.push({ at: start - t0, ms: performance.now() - start, code: 0 });
  } catch (err) {
    const e = ConnectError.from(err);
    out.push({ at: start - t0, ms: performance.now() - start, code: e.code, message: e.rawMessage });
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Open-loop load: `rate` calls per second for `durationMs`, sent in 10 ms batches whatever the answers
 * do, as real traffic does. Resolves when every call has ended.
 */
export async function openLoop(
  rate: number,
  durationMs: number,
  send: (i: number) => Promise<void>,
): Promise<number> {
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < durationMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (sent < due) pending.push(send(sent++));
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(pending);
  return sent;
}

/** What faults/loadgen.ts measured: calls by grpc-status (or stream error), OK latencies, GOAWAYs received. */
export interface LoadResult {
  seconds: number;
  total: number;
  rate: number;
  byStatus: Record<string, number>;
  okP50: number;
  okP99: number;
  okMax: number;
  goaways: string[];
}

/** The calls a load run got other than OK (0) and RESOURCE_EXHAUSTED (8), by status: none is the bar. */
export function otherStatuses(result: LoadResult): Record<string, number> {
  return Object.fromEntries(Object.entries(result.byStatus).filter(([k]) => k !== "0" && k !== "8"));
}

const loadgen = fileURLToPath(new URL("./loadgen.ts", import.meta.url));

/**
 * Drives `method` on 127.0.0.1:`port` from its own process (faults/loadgen.ts) for `ms`: `closed:<n>` keeps
 * n calls in flight, `open:<rate>` sends at a fixed rate; over `connections` HTTP/2 connections.
 */
export async function drive(
  port: number,
  method: string,
  body: Uint8Array,
  mode: string,
  ms: number,
  connections = 8,
): Promise<LoadResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      "--import",
      "tsx",
      loadgen,
      String(port),
      method,
      Buffer.from(body).toString("hex"),
      mode,
      String(ms),
      String(connections),
    ],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A seeded restaurant and two of its dishes, from a running catalog, for PlaceOrder requests. */
export async function demoMenu(catalogPort: number) {
  const catalog = testClient(CatalogService, catalogPort);
  const { restaurants } = await catalog.listRestaurants({ pageSize: 1 });
  const restaurantId = restaurants[0]!.id;
  const { items } = await catalog.getMenu({ restaurantId });
  return { restaurantId, itemIds: items.slice(0, 2).map((i) => i.id) };
}

/**
 * Catalog as a process on its own database, shedding above `maxInFlight` calls, with a GetMenu request
 * for its demo restaurant encoded for faults/loadgen.ts (scenarios 6 and 7).
 */
export async function sheddingCatalog(maxInFlight: number) {
  const db = await createTestDatabase("dispatch_fault_catalog");
  onCleanup(() => db.drop());
  const catalog = await startServiceProcess("catalog", {
    DATABASE_URL: db.url,
    MAX_IN_FLIGHT: String(maxInFlight),
  });
  onCleanup(() => catalog.stop());
  const { restaurantId } = await demoMenu(catalog.port);
  return {
    catalog,
    pid: catalog.child.pid!,
    restaurantId,
    method: "/dispatch.catalog.v1.CatalogService/GetMenu",
    body: toBinary(GetMenuRequestSchema, create(GetMenuRequestSchema, { restaurantId })),
  };
}

/** Resident set size of a process, in MB (Linux). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

// Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<major>/bin.
const pgBin = (() => {
  const debian = spawnSync("sh", ["-c", "ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1"], {
    encoding: "utf8",
  }).stdout.trim();
  if (debian && existsSync(join(debian, "initdb"))) return debian;
  const out = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  return out.status === 0 ? out.stdout.trim() : "/usr/lib/postgresql/15/bin";
})();

/**
 * A throwaway PostgreSQL cluster of the test's own (initdb in a temporary folder, its own port), so a
 * test may stop and start it; never the machine's shared server. As root it runs as `postgres`.
 */
export class ThrowawayPostgres {
  /** A running one, removed after the test (onCleanup). */
  static async start(): Promise<ThrowawayPostgres> {
    const pg = new ThrowawayPostgres();
    onCleanup(() => pg.destroy());
    await pg.init();
    return pg;
  }

  readonly dir = mkdtempSync(join(tmpdir(), "dispatch-pg-"));
  port = 0;
  private readonly asRoot = process.getuid?.() === 0;

  private run(cmd: string, args: string[]): string {
    const bin = join(pgBin, cmd);
    return this.asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", bin, ...args], { encoding: "utf8", stdio: "pipe" })
      : execFileSync(bin, args, { encoding: "utf8", stdio: "pipe" });
  }

  async init(): Promise<void> {
    this.port = await freePort();
    if (this.asRoot) chownSync(this.dir, uidOf("postgres"), gidOf("postgres"));
    this.run("initdb", ["-D", join(this.dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"]);
    await this.start();
  }

  url(database = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    this.run("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-l",
      join(this.dir, "log"),
      "-w",
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "start",
    ]);
  }

  /** Fast shutdown: sessions are terminated, as when a database fails over or restarts. */
  async stop(): Promise<void> {
    this.run("pg_ctl", ["-D", join(this.dir, "data"), "-m", "fast", "-w", "stop"]);
  }

  async createDatabase(name: string): Promise<string> {
    const sql = postgres(this.url(), { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`create database "${name}"`);
    } finally {
      await sql.end();
    }
    return this.url(name);
  }

  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uidOf(user: string): number {
  return Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
}
function gidOf(user: string): number {
  return Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim());
}
