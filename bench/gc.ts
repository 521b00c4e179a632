/**
 * `pnpm bench:gc [checkout]`: what V8's garbage collector does in the gateway and in orders while
 * ListActiveOrders runs through the stack: the stack of this checkout's bundles (or another's, bundled,
 * as for `pnpm bench:ab`) with `--trace-gc-nvp`, 15 s at the rate to warm the path up (V8 compiles it in
 * the first ~10,000 calls), then two runs whose collections are counted: scavenges and their pauses, the
 * bytes a scavenge keeps in the young generation per call and the share of them the next scavenge promotes
 * (a call lasts milliseconds, so what is still there ~100 ms later is held by old objects, live or already
 * dead: docs/BENCHMARKS-ROUNDS.md, twenty-fifth round), the bytes promoted to the old generation per call,
 * and the full collections (mark-compacts) that the promoted bytes bring on, with the part of their pauses
 * spent freeing dead external strings (node:http2 hands header values to JavaScript as external strings
 * over nghttp2's buffers, and those its stream objects carry into the old generation are freed in that
 * phase: docs/BENCHMARKS-ROUNDS.md, thirtieth round). Prints a table; writes nothing.
 * Env: BENCH_GC_RPS (default 1000), BENCH_GC_PROTOCOL (grpc or connect, default grpc), BENCH_FIXED_S
 * (seconds per counted run, default 20).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { activeRun, call, type Point, seed, signIn } from "./mobile.ts";
import { startStack } from "./stack.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const checkout = resolve(process.argv[2] ?? root);
const rps = Number(process.env.BENCH_GC_RPS ?? 1000);
const protocol = (process.env.BENCH_GC_PROTOCOL ?? "grpc") as "grpc" | "connect";
const seconds = Number(process.env.BENCH_FIXED_S ?? 20);
const services = ["gateway", "orders"] as const;

const logDir = mkdtempSync(join(tmpdir(), "dispatch-bench-gc-"));
process.env.BENCH_LOG_DIR = logDir;
process.env.BENCH_NODE_FLAGS = [process.env.BENCH_NODE_FLAGS, "--trace-gc-nvp"].filter(Boolean).join(" ");

interface Collection {
  kind: "scavenge" | "full";
  pauseMs: number;
  promoted: number;
  /** What the scavenge kept in the young generation (`new_space_survived`). */
  kept: number;
  /** V8's `promotion_rate`: the share of what the scavenge before kept that this one promoted, in %. */
  promotionRate: number;
  /** A mark-compact's phase that frees dead external strings (`clear.external_string_table`), ms. */
  externalStringsMs: number;
}

/** The collections a service's log (node's stdout) reports between two byte offsets. */
function collections(svc: string, from: number, to: number): Collection[] {
  const text = readFileSync(join(logDir, `${svc}.log`))
    .subarray(from, to)
    .toString();
  const out: Collection[] = [];
  for (const line of text.split("\n")) {
    const kind = / gc=(\w+)/.exec(line)?.[1];
    if (!kind) continue;
    // Every numeric `name=value` of the line (`promotion_rate=99.4%` reads as 99.4; phases are dotted).
    const field = new Map([...line.matchAll(/ ([\w.]+)=([\d.]+)/g)].map(([, k, v]) => [k, Number(v)]));
    out.push({
      kind: kind === "s" ? "scavenge" : "full",
      pauseMs: field.get("pause") ?? 0,
      promoted: field.get("promoted") ?? 0,
      kept: field.get("new_space_survived") ?? 0,
      promotionRate: field.get("promotion_rate") ?? 0,
      externalStringsMs: field.get("clear.external_string_table") ?? 0,
    });
  }
  return out;
}

const size = (svc: string) => statSync(join(logDir, `${svc}.log`)).size;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)] ?? 0;

const stack = await startStack(checkout);
try {
  const email = `gc-${process.pid}@example.com`;
  await call(stack.gatewayUrl, "SignUp", { email, password: "bench-password-1", displayName: "GC" });
  seed(stack, (await signIn(stack.gatewayUrl, email)).userId);
  console.error(`warming up: ${rps} rps for 15 s`);
  await activeRun(stack, email, protocol, rps, 15);
  const from = Object.fromEntries(services.map((s) => [s, size(s)]));
  const points: Point[] = [];
  for (let i = 0; i < 2; i++) {
    const p = await activeRun(stack, email, protocol, rps, seconds);
    console.error(
      `run ${i + 1}: ${p.requests} calls, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms, ${p.errors} errors`,
    );
    points.push(p);
  }
  // Let node write out what the last collections printed.
  await new Promise((r) => setTimeout(r, 500));
  const calls = points.reduce((a, p) => a + p.requests, 0);
  const rows = services.map((svc) => {
    const cs = collections(svc, from[svc]!, size(svc));
    const sc = cs.filter((c) => c.kind === "scavenge");
    const full = cs.filter((c) => c.kind === "full");
    const pauses = sc.map((c) => c.pauseMs);
    // What a scavenge keeps, and how much of it the next one promotes (a scavenge right after a full
    // collection has nothing to promote: the full collection emptied the young generation).
    const rates = cs.flatMap((c, i) =>
      c.kind === "scavenge" && cs[i - 1]?.kind === "scavenge" ? [c.promotionRate] : [],
    );
    const fullPauses = full.map((c) => c.pauseMs);
    const external = full.map((c) => c.externalStringsMs);
    return `| ${svc} | ${sc.length} | ${quantile(pauses, 0.5).toFixed(1)} | ${quantile(pauses, 0.9).toFixed(1)} | ${Math.round(pauses.reduce((a, b) => a + b, 0))} | ${Math.round(sc.reduce((a, c) => a + c.kept, 0) / calls)} | ${quantile(rates, 0.5).toFixed(1)} | ${Math.round(sc.reduce((a, c) => a + c.promoted, 0) / calls)} | ${full.length} | ${Math.round(fullPauses.reduce((a, b) => a + b, 0))} | ${quantile(fullPauses, 0.5).toFixed(1)} | ${Math.round(external.reduce((a, b) => a + b, 0))} | ${quantile(external, 0.5).toFixed(1)} |`;
  });
  console.log(`ListActiveOrders, ${protocol === "grpc" ? "gRPC, h2c" : "Connect JSON, HTTP/1.1"}, ${rps} rps, 2 × ${seconds} s (${calls} calls, and the warm-and-settle time between runs), ${checkout}

| service | scavenges | pause median ms | p90 ms | all ms | kept B/call | of it promoted at the next scavenge, median % | promoted B/call | mark-compacts | their pauses ms | median ms | of them freeing external strings ms | median ms |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join("\n")}`);
} finally {
  await stack.stop();
  rmSync(logDir, { recursive: true, force: true });
}
