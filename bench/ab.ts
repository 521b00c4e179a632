/**
 * `pnpm bench:ab <checkout> [active|place]`: active orders (500 rps through the gateway, both protocols)
 * or place order (150 rps, bench/driver.ts) on this checkout's bundles and on another checkout's, both stacks up at once and measured in turns, so the
 * machine's drift (this VM's speed moves by 2x within a day) falls on both alike. Prepare the other
 * checkout with `git worktree add /tmp/base <commit> && cd /tmp/base && pnpm install --offline &&
 * pnpm bundle`. Writes the table into docs/BENCHMARKS.md ("A/B against an earlier commit", and
 * "…: place order"). Env: BENCH_ROUNDS (default 3), BENCH_FIXED_S (seconds per run, default 15),
 * BENCH_AB_RPS (the rate).
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { h2loadVersion } from "./h2load.ts";
import { machineStateLine } from "./machine-state.ts";
import { activeRun, call, type Point, placeRun, seed, signIn } from "./mobile.ts";
import { machine, writeSection } from "./report.ts";
import { type Stack, startStack } from "./stack.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const other = process.argv[2];
const scenario = process.argv[3] ?? "active";
if (!other || (scenario !== "active" && scenario !== "place")) {
  console.error("usage: pnpm bench:ab <path of another checkout, bundled> [active|place]");
  process.exit(2);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_FIXED_S ?? 15);
const rps = Number(process.env.BENCH_AB_RPS ?? (scenario === "active" ? 500 : 150));
const protocols = scenario === "active" ? (["connect", "grpc"] as const) : (["grpc"] as const);
const commit = (dir: string) =>
  execFileSync("git", ["-C", dir, "log", "-1", "--format=%h %s"], { encoding: "utf8" }).trim();

execFileSync(process.execPath, ["packages/build/src/bundle.ts"], { cwd: root, stdio: "inherit" });
// The machine's state before any load (quoted in the report's "Machine:" line).
console.error(`machine: ${await machineStateLine()}`);
const sides: { name: string; dir: string; stack?: Stack; email: string }[] = [
  { name: "base", dir: resolve(other), email: `ab-base-${process.pid}@example.com` },
  { name: "this", dir: root, email: `ab-this-${process.pid}@example.com` },
];
const rows: { side: string; round: number; point: Point }[] = [];
const rssAfter = new Map<string, Record<string, number>>();
const all = (p: Point) => Object.values(p.cpuUsPerCall ?? {}).reduce((a, b) => a + b, 0);
try {
  for (const side of sides) {
    side.stack = await startStack(side.dir);
    await call(side.stack.gatewayUrl, "SignUp", {
      email: side.email,
      password: "bench-password-1",
      displayName: "AB",
    });
    seed(side.stack, (await signIn(side.stack.gatewayUrl, side.email)).userId);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const protocol of protocols) {
      // Alternate which side goes first, so neither always runs on a warmer or cooler machine.
      for (const side of round % 2 ? sides : [...sides].reverse()) {
        const point =
          scenario === "active"
            ? await activeRun(side.stack!, side.email, protocol, rps, seconds)
            : await placeRun(side.stack!, side.email, rps, seconds);
        console.error(
          `round ${round} ${side.name} ${point.protocol}: p99 ${point.p99Ms} ms, gateway ${point.cpuUsPerCall?.gateway} µs, orders ${point.cpuUsPerCall?.orders} µs, all ${all(point)} µs`,
        );
        rows.push({ side: side.name, round, point });
      }
    }
  }
  // RSS once every run is done (both stacks were up throughout): what the load left each process holding.
  for (const side of sides) rssAfter.set(side.name, side.stack!.rss());
} finally {
  for (const side of sides) await side.stack?.stop();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const shown =
  scenario === "active"
    ? (["gateway", "orders", "postgres"] as const)
    : (["gateway", "orders", "catalog", "notifications", "postgres"] as const);
const table = [
  `| protocol | checkout | req/s | errors | p50 ms | p99 ms | ${shown.map((s) => `${s} µs/call`).join(" | ")} | all µs/call |`,
  `| --- | --- | ---: | ---: | ---: | ---: | ${shown.map(() => "---: | ").join("")}---: |`,
];
for (const protocol of scenario === "active" ? ["Connect JSON, HTTP/1.1", "gRPC, h2c"] : ["gRPC, h2c"]) {
  for (const side of sides) {
    const ps = rows.filter((r) => r.side === side.name && r.point.protocol === protocol).map((r) => r.point);
    const med = (f: (p: Point) => number) => median(ps.map(f));
    table.push(
      `| ${protocol} | ${side.name} | ${med((p) => p.achievedRps)} | ${ps.reduce((a, p) => a + p.errors, 0)} | ${med((p) => p.p50Ms).toFixed(1)} | ${med((p) => p.p99Ms).toFixed(1)} | ${shown.map((s) => `${med((p) => p.cpuUsPerCall?.[s] ?? 0)} | `).join("")}${med(all)} |`,
    );
  }
}
const content = `Both stacks up at once on this machine (each as in "Mobile flows under load": bundles, PostgreSQL, Redis,
the same seed), ${scenario === "active" ? "ListActiveOrders" : "PlaceOrder (bench/driver.ts, every reply checked)"} at ${rps} rps for ${seconds} s per run, ${rounds} rounds, the two checkouts
measured in turns (order alternating per round); medians of the rounds. CPU per call from /proc as in
that section.

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${await machine(await h2loadVersion())}
- Command: \`pnpm bench:ab <checkout>${scenario === "active" ? "" : " place"}\`
- base: \`${commit(sides[0]!.dir)}\`
- this: \`${commit(root)}\` (plus uncommitted changes, if any)

${table.join("\n")}

RSS after the last run, MB: ${sides
  .map(
    (s) =>
      `${s.name}: ${Object.entries(rssAfter.get(s.name) ?? {})
        .map(([svc, mb]) => `${svc} ${mb}`)
        .join(", ")}`,
  )
  .join("; ")}.

Every run, p99 ms, gateway and orders µs/call: ${rows.map((r) => `${r.side} ${r.point.protocol.split(",")[0]} r${r.round} ${r.point.p99Ms.toFixed(0)}/${r.point.cpuUsPerCall?.gateway}/${r.point.cpuUsPerCall?.orders}`).join("; ")}.`;
console.log(content);
writeSection(`A/B against an earlier commit${scenario === "active" ? "" : ": place order"}`, content);
