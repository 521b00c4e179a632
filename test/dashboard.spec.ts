import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import "../packages/client/src/index.ts";
import "../packages/db/src/index.ts";
import "../packages/events/src/index.ts";
import "../services/notifications/src/push-worker.ts";
import { metricsRegistry } from "../packages/runtime/src/index.ts";

/**
 * The provisioned Grafana dashboard may only chart series the services export: every metric name in its
 * PromQL must be one the process registry (the same modules the services load) knows.
 */
const dashboard = JSON.parse(
  readFileSync(new URL("../deploy/observability/grafana/dashboards/dispatch.json", import.meta.url), "utf8"),
) as { panels: { title: string; targets: { expr: string }[] }[] };

/** Series names in a PromQL expression: identifiers that are not functions, keywords or label names. */
function seriesIn(expr: string): string[] {
  const noLabels = expr
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without)\s*\([^)]*\)/g, "");
  const words = noLabels.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  const functions = new Set([
    "sum",
    "max",
    "min",
    "avg",
    "rate",
    "increase",
    "histogram_quantile",
    "irate",
    "count",
  ]);
  return words.filter((w) => !functions.has(w) && !/^\d/.test(w) && !/^e\d+$/.test(w));
}

describe("the Grafana dashboard", () => {
  it("charts only metric names the services export", async () => {
    const exported = new Set<string>();
    for (const m of await metricsRegistry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (m.type === "histogram")
        for (const s of ["_bucket", "_sum", "_count"]) exported.add(`${m.name}${s}`);
    }
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => seriesIn(t.expr)));
    expect(used.length).toBeGreaterThan(15);
    expect(used.filter((n) => !exported.has(n))).toEqual([]);
    // What the dashboard promises: rate, errors and latency per method, breakers, queue depths.
    for (const n of [
      "grpc_server_handled_total",
      "grpc_server_handling_seconds_bucket",
      "dispatch_client_breaker_state",
      "dispatch_outbox_backlog",
      "dispatch_push_queue_depth",
    ]) {
      expect(used).toContain(n);
    }
  });
});
