import client from "prom-client";
import { describe, expect, it } from "vitest";
import { LATENCY_BUCKETS, RpcMethodMetrics, registry } from "./metrics.ts";

/** The exposition lines of one family, labels as written. */
function series(text: string, prefix: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(prefix));
}

describe("RPC metric families", () => {
  it("expose exactly what prom-client's own counter and histogram would for the same calls", async () => {
    const m = new RpcMethodMetrics("server", "unary", "spec.v1.Metrics", "Exact");
    const own = new client.Registry();
    const labels = { grpc_type: "unary", grpc_service: "spec.v1.Metrics", grpc_method: "Exact" };
    const started = new client.Counter({
      name: "s",
      help: "s",
      labelNames: Object.keys(labels),
      registers: [own],
    });
    const handled = new client.Counter({
      name: "h",
      help: "h",
      labelNames: [...Object.keys(labels), "grpc_code"],
      registers: [own],
    });
    const seconds = new client.Histogram({
      name: "d",
      help: "d",
      labelNames: Object.keys(labels),
      buckets: LATENCY_BUCKETS,
      registers: [own],
    });
    // On bucket bounds, between them, beyond the last, and several codes.
    const calls: [number, number][] = [
      [0, 0.0005],
      [0, 0.0004],
      [0, 0.003],
      [5, 0.01],
      [0, 0.0100001],
      [13, 12],
      [0, 0.7],
      [5, 0],
    ];
    for (const [code, s] of calls) {
      m.start();
      m.done(code, s);
      started.inc(labels);
      handled.inc({
        ...labels,
        grpc_code: ["OK", "", "", "", "", "NotFound", "", "", "", "", "", "", "", "Internal"][code]!,
      });
      seconds.observe(labels, s);
    }
    const ours = await registry.metrics();
    const theirs = (await own.metrics())
      .replaceAll(/^s\{/gm, "grpc_server_started_total{")
      .replaceAll(/^h\{/gm, "grpc_server_handled_total{")
      .replaceAll(/^d_/gm, "grpc_server_handling_seconds_");
    const mine = (prefix: string) => series(ours, prefix).filter((l) => l.includes('"Exact"'));
    for (const prefix of [
      "grpc_server_started_total{",
      "grpc_server_handled_total{",
      "grpc_server_handling_seconds_",
    ])
      expect(mine(prefix)).toEqual(series(theirs, prefix));
    expect(mine("grpc_server_handling_seconds_bucket")).toHaveLength(LATENCY_BUCKETS.length + 1);
    expect(ours).toContain("# TYPE grpc_server_handling_seconds histogram");
    expect(ours).toContain("# TYPE grpc_server_handled_total counter");
  });

  it("keep a method's series apart from another's, and reset to zero with the registry", async () => {
    const a = new RpcMethodMetrics("client", "unary", "spec.v1.Metrics", "A");
    const b = new RpcMethodMetrics("client", "unary", "spec.v1.Metrics", "B");
    a.start();
    a.done(0, 0.002);
    a.start();
    a.done(0, 0.002);
    b.start();
    const count = (text: string, method: string) =>
      series(text, "grpc_client_started_total{").find((l) => l.includes(`grpc_method="${method}"`));
    let text = await registry.metrics();
    expect(count(text, "A")).toMatch(/ 2$/);
    expect(count(text, "B")).toMatch(/ 1$/);
    registry.resetMetrics();
    text = await registry.metrics();
    expect(count(text, "A")).toMatch(/ 0$/);
    expect(series(text, "grpc_client_handling_seconds_count{").find((l) => l.includes('"A"'))).toMatch(/ 0$/);
  });
});
