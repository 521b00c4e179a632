/**
 * Start-up and memory (`pnpm bench:startup`, part of `pnpm bench`): each service's bundle
 * (services/<svc>/dist/main.mjs, as the images run it) from process start to SERVING on grpc.health.v1,
 * its idle RSS, and `pnpm start` (every service from its local bundle on PGlite) to all healthy: first as on a
 * fresh clone (no local bundles, no databases), then again.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { nodeFlagsFor } from "../packages/build/src/node-flags.ts";
import { freePort } from "../packages/testing/src/service-process.ts";
import { waitForPorts } from "../scripts/start-ports.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const admin = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const services = JSON.parse(readFileSync(`${root}/deploy/services.json`, "utf8")) as {
  service: string;
  database: boolean;
  internalPort?: number;
}[];

/**
 * Ports for the services: the tests' free port, below Linux's ephemeral range and never handed out twice.
 * A port from `listen(0)` lies in that range, and an outgoing connection (PostgreSQL, a client) can take
 * it before the service binds it: a full `pnpm bench` lost its stack to that (payments: EADDRINUSE).
 */
export { freePort };

export async function serving(port: number, timeoutMs: number): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const until = performance.now() + timeoutMs;
  for (;;) {
    try {
      if ((await health.check({}, { timeoutMs: 200 })).status === HealthCheckResponse_ServingStatus.SERVING)
        return;
    } catch {
      // not yet
    }
    if (performance.now() > until) throw new Error(`not SERVING on ${port}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** RSS and its anonymous part from /proc/<pid>/statm (resident less shared pages): cheap enough to poll. */
export function rssAnonMb(pid: number): { rssMb: number; anonMb: number } {
  const [, resident, shared] = readFileSync(`/proc/${pid}/statm`, "utf8").split(" ").map(Number);
  const mb = (pages: number) => Math.round((pages * 4096) / 1e5) / 10;
  return { rssMb: mb(resident!), anonMb: mb(resident! - shared!) };
}

export const rssMb = (pid: number) => rssAnonMb(pid).rssMb;

export interface RssParts {
  rssMb: number;
  anonMb: number;
  fileMb: number;
  /** Of the file-backed part, what the kernel maps in 2 MB pages (FilePmdMapped). */
  fileHugeMb: number;
}

/**
 * RSS as the kernel splits it: anonymous pages (the process's own: V8's heap, malloc, stacks) and
 * file-backed ones (mostly the node binary's code and data, shared with every process that maps it),
 * and of those, the ones mapped in 2 MB pages: where the kernel keeps the binary's page cache in 2 MB
 * folios it maps each touched one whole (bare Node: 62.9 MB of the binary resident against 35.4 for a copy
 * on tmpfs, which the kernel keeps in 4 kB pages; docs/BENCHMARKS-ROUNDS.md, "Twenty-first round").
 */
export function rssPartsMb(pid: number): RssParts {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (text: string, field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  const mb = (k: number) => Math.round((k * 1024) / 1e5) / 10;
  return {
    rssMb: mb(kb(status, "VmRSS")),
    anonMb: mb(kb(status, "RssAnon")),
    fileMb: mb(kb(status, "RssFile") + kb(status, "RssShmem")),
    fileHugeMb: mb(kb(rollup, "FilePmdMapped")),
  };
}

export interface StartupRow {
  service: string;
  startMs: number;
  idleRssMb: number;
  idleAnonMb: number;
  idleFileMb: number;
  idleFileHugeMb: number;
}

/** One service's bundle, three starts; the median start and the RSS after 2 s idle. */
async function measureService(svc: (typeof services)[number]): Promise<StartupRow> {
  const db = `dispatch_bench_${svc.service}_${process.pid}`;
  const url = new URL(admin);
  const pg = ["-h", url.hostname, "-p", url.port || "5432", "-U", url.username || "postgres"];
  const starts: number[] = [];
  let idle: RssParts = { rssMb: 0, anonMb: 0, fileMb: 0, fileHugeMb: 0 };
  try {
    if (svc.database) {
      execFileSync("dropdb", [...pg, "--if-exists", db]);
      execFileSync("createdb", [...pg, db]);
    }
    url.pathname = `/${db}`;
    for (let i = 0; i < 3; i++) {
      const [port, internal, adminPort] = [await freePort(), await freePort(), await freePort()];
      const env: Record<string, string> = {
        ...(process.env as Record<string, string>),
        NODE_ENV: "production",
        LOG_LEVEL: "warn",
        PORT: String(port),
        ADMIN_PORT: String(adminPort),
        ...(svc.internalPort ? { INTERNAL_PORT: String(internal) } : {}),
        ...(svc.database ? { DATABASE_URL: url.toString() } : {}),
      };
      const t0 = performance.now();
      const child: ChildProcess = spawn(
        process.execPath,
        [...nodeFlagsFor(svc.service), `services/${svc.service}/dist/main.mjs`],
        {
          cwd: root,
          env,
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      // A service that dies while starting is named with its last words, instead of a wait that may
      // never end (a full `pnpm bench` once stopped silently here).
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => {
        stderr = (stderr + d).slice(-2000);
      });
      const exited = new Promise<never>((_, reject) =>
        child.once("exit", (code, signal) =>
          reject(new Error(`${svc.service} exited (${code ?? signal}) before SERVING:\n${stderr}`)),
        ),
      );
      try {
        await Promise.race([serving(svc.internalPort ? internal : port, 30_000), exited]);
        starts.push(performance.now() - t0);
        if (i === 2) {
          await new Promise((r) => setTimeout(r, 2000));
          idle = rssPartsMb(child.pid!);
        }
      } finally {
        // Waiting for an exit that already happened would leave nothing to keep node running: the
        // benchmark would end there without a word.
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          await new Promise((r) => child.once("exit", r));
        }
      }
    }
  } finally {
    if (svc.database) execFileSync("dropdb", [...pg, "--if-exists", "--force", db]);
  }
  starts.sort((a, b) => a - b);
  return {
    service: svc.service,
    startMs: Math.round(starts[1]!),
    idleRssMb: idle.rssMb,
    idleAnonMb: idle.anonMb,
    idleFileMb: idle.fileMb,
    idleFileHugeMb: idle.fileHugeMb,
  };
}

/** `pnpm start` from spawn to its "all healthy" banner, its PGlite folders under `dataRoot`. */
async function measurePnpmStart(dataRoot: string): Promise<number> {
  await waitForPorts(70_000);
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: "warn", DATA_ROOT: dataRoot },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  const ms = await new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (out.includes("Walk through the app")) resolve(performance.now() - t0);
    });
    child.stderr!.on("data", (d: Buffer) => {
      out += d;
    });
    child.once("exit", (code) => reject(new Error(`pnpm start exited ${code}:\n${out}`)));
  });
  process.kill(-child.pid!, "SIGINT");
  await new Promise((r) => child.once("exit", r));
  return Math.round(ms);
}

/** RSS of Node itself, idle, running nothing: the floor under every service's figure. */
async function bareNodeRss(): Promise<RssParts> {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 5000)"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 2000));
  const rss = rssPartsMb(child.pid!);
  child.kill();
  return rss;
}

export async function startup(): Promise<{
  rows: StartupRow[];
  pnpmStartMs: number;
  pnpmRestartMs: number;
  bareNode: RssParts;
}> {
  execFileSync(process.execPath, ["packages/build/src/bundle.ts"], { cwd: root, stdio: "inherit" });
  const rows: StartupRow[] = [];
  for (const svc of services) {
    const row = await measureService(svc);
    console.error(
      `${svc.service}: start to SERVING ${row.startMs} ms, idle RSS ${row.idleRssMb} MB (anonymous ${row.idleAnonMb}, file-backed ${row.idleFileMb})`,
    );
    rows.push(row);
  }
  // As a developer meets it: the first start builds the local bundles and creates and migrates the
  // databases; later starts reuse both.
  for (const svc of services)
    rmSync(join(root, "services", svc.service, ".start"), { recursive: true, force: true });
  const dataRoot = mkdtempSync(join(tmpdir(), "dispatch-start-"));
  try {
    const pnpmStartMs = await measurePnpmStart(dataRoot);
    const pnpmRestartMs = await measurePnpmStart(dataRoot);
    console.error(`pnpm start to all healthy: first ${pnpmStartMs} ms, again ${pnpmRestartMs} ms`);
    return { rows, pnpmStartMs, pnpmRestartMs, bareNode: await bareNodeRss() };
  } finally {
    rmSync(dataRoot, { recursive: true, force: true });
  }
}
