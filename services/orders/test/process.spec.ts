import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { OrdersService } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { createTestDatabase, startServiceProcess, testClient } from "@dispatch/testing";
import postgres from "postgres";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** Runs orders' entry point with `env` added, to its exit. */
async function failedStart(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "services/orders/src/main.ts"], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "exit");
  return { code, stdout, stderr };
}

describe("orders as a process", () => {
  it("refuses to start with one message naming every bad or missing variable", async () => {
    const { code, stderr } = await failedStart({
      PORT: "not-a-port",
      LOG_LEVEL: "loud",
      ADMIN_PORT: "99999",
      OUTBOX_RETENTION_S: "an hour",
      PROCESSED_EVENTS_RETENTION_S: "0",
    });
    expect(code).toBe(1);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('PORT must be an integer 0-65535 (got "not-a-port")');
    expect(lines[0]).toContain("ADMIN_PORT must be an integer 0-65535");
    expect(lines[0]).toContain("LOG_LEVEL must be one of");
    expect(lines[0]).toContain('OUTBOX_RETENTION_S must be an integer 0-315360000 (got "an hour")');
    expect(lines[0]).toContain('PROCESSED_EVENTS_RETENTION_S must be an integer 60-315360000 (got "0")');
  });

  it("refuses to start on a DATABASE_URL whose max it cannot run on, naming it and not the password", async () => {
    const { code, stdout, stderr } = await failedStart({
      PORT: "0",
      ADMIN_PORT: "0",
      DATABASE_URL: "postgres://orders:pa55word@127.0.0.1:1/orders?max=1",
      CATALOG_URL: "127.0.0.1:1",
    });
    expect(code).toBe(1);
    expect(stderr).toContain('DATABASE_URL: max="1" is not a connection count this service can run on');
    expect(stdout + stderr).not.toContain("pa55word");
  });

  it("drains, closes its database and exits 0 on SIGTERM", async () => {
    const db = await createTestDatabase();
    try {
      const orders = await startServiceProcess("orders", {
        DATABASE_URL: db.url,
        CATALOG_URL: "127.0.0.1:1",
        LOG_LEVEL: "info",
      });
      const client = testClient(OrdersService, orders.port);
      expect((await client.listActiveOrders({ userId: "u1" })).orders).toEqual([]);
      if (db.url) {
        // Active orders went through the read pool: one connection of its own, which ran that read.
        const watcher = postgres(db.url, { max: 1, onnotice: () => {} });
        try {
          const [reads] = await watcher<{ n: number; ranTheRead: boolean }[]>`
            select count(*)::int as n, bool_and(query ilike '%from "orders"%') as "ranTheRead"
            from pg_stat_activity where datname = current_database() and application_name = 'orders reads'`;
          expect(reads!.n).toBe(1);
          expect(reads!.ranTheRead).toBe(true);
        } finally {
          await watcher.end();
        }
      }
      expect(await orders.stop()).toBe(0);
      const log = orders.output();
      expect(log).toContain('"msg":"shutting down"');
      expect(log).toContain('"msg":"stopped"');
    } finally {
      await db.drop();
    }
  });
});
