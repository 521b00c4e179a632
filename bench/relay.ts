/**
 * Relay catch-up (`pnpm bench:relay`, part of `pnpm bench`): how fast an outbox relay drains a backlog
 * (what it does after a subscriber was down, or a burst of writes) to two subscribers, each its own
 * process acknowledging every event, when they serve HandleEvents (one call per round, up to 100 events)
 * and when they serve HandleEvent only (one call per event). The relay runs in this process on orders'
 * tables in the local PostgreSQL; wall time from start to an empty backlog, and CPU per event of the
 * relay (this process), the two subscribers and PostgreSQL, from /proc.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { openDatabase } from "../packages/db/src/index.ts";
import { OutboxRelay, outboxRow, subscribersFrom } from "../packages/events/src/index.ts";
import { createLogger } from "../packages/runtime/src/index.ts";
import { createTestDatabase } from "../packages/testing/src/index.ts";
import { schema } from "../services/orders/src/store/schema.ts";
import { startEchoServer } from "./servers/start.ts";
import { cpuSeconds } from "./stack.ts";

const events = Number(process.env.BENCH_RELAY_EVENTS ?? 5000);
const admin = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface DrainRow {
  mode: string;
  events: number;
  seconds: number;
  calls: number;
  cpuUsPerEvent: { relay: number; subscribers: number; postgres: number };
}

async function drain(batch: boolean): Promise<DrainRow> {
  const test = await createTestDatabase("dispatch_bench_relay", admin);
  const database = await openDatabase({
    service: "bench-relay",
    url: test.url,
    schema,
    migrationsFolder: fileURLToPath(new URL("../services/orders/migrations", import.meta.url)),
  });
  const subscribers = await Promise.all(
    ["a", "b"].map(() => startEchoServer("event-subscriber.ts", { env: { BENCH_BATCH: batch ? "1" : "0" } })),
  );
  const logger = createLogger({ name: "bench-relay", level: "warn" });
  const relay = new OutboxRelay({
    db: database.db,
    subscribers: subscribersFrom(subscribers.map((s, i) => `s${i}=127.0.0.1:${s.port}`).join(","), logger),
    logger,
  });
  try {
    // A backlog of distinct orders (a round takes the oldest event of each of up to 100 subjects).
    for (let i = 0; i < events; i += 500) {
      const rows = [];
      for (let j = i; j < Math.min(events, i + 500); j++) {
        const orderId = randomUUID();
        rows.push(
          outboxRow({
            id: randomUUID(),
            source: "orders",
            subject: orderId,
            payload: {
              case: "orderPlaced",
              value: {
                orderId,
                userId: "u-1",
                restaurantId: "rst-001",
                total: { currencyCode: "EUR", amountMinor: 1250n },
              },
            },
          }),
        );
      }
      await database.db.insert(schema.outbox).values(rows);
    }
    // The relay is this process.
    const pids = { relay: process.pid, s0: subscribers[0]!.child.pid!, s1: subscribers[1]!.child.pid! };
    const cpu0 = cpuSeconds({ pids });
    const t0 = performance.now();
    let delivered = 0;
    while (delivered < events) {
      const n = await relay.runOnce();
      if (n === 0) throw new Error(`the relay stopped with ${events - delivered} events undelivered`);
      delivered += n;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds({ pids });
    // Each subscriber prints the calls it served when it exits.
    const printed = subscribers.map((s) => {
      let err = "";
      s.child.stderr!.on("data", (d: Buffer) => {
        err += d;
      });
      return async () => {
        await s.stop();
        return Number(/CALLS (\d+)/.exec(err)?.[1] ?? Number.NaN);
      };
    });
    const calls = (await Promise.all(printed.map((stop) => stop()))).reduce((a, b) => a + b, 0);
    const perEvent = (s: number) => Math.round((s * 1e6) / events);
    return {
      mode: batch ? "HandleEvents (a round a call)" : "HandleEvent (an event a call)",
      events,
      seconds,
      calls,
      cpuUsPerEvent: {
        relay: perEvent((cpu1.relay ?? 0) - (cpu0.relay ?? 0)),
        subscribers: perEvent((cpu1.s0 ?? 0) - (cpu0.s0 ?? 0) + (cpu1.s1 ?? 0) - (cpu0.s1 ?? 0)),
        postgres: perEvent((cpu1.postgres ?? 0) - (cpu0.postgres ?? 0)),
      },
    };
  } finally {
    await relay.stop();
    await Promise.all(subscribers.map((s) => s.stop()));
    await database.close();
    await test.drop();
  }
}

export async function relayScenario(): Promise<{ content: string; rows: DrainRow[] }> {
  const rows: DrainRow[] = [];
  // In turns, twice each: the median is not needed for a 2x difference, but both runs are shown.
  for (const batch of [true, false, true, false]) {
    const row = await drain(batch);
    console.error(
      `${row.mode}: ${row.events} events in ${row.seconds.toFixed(2)} s (${Math.round(row.events / row.seconds)}/s), ${row.calls} calls`,
    );
    rows.push(row);
  }
  const table = [
    "| subscribers serve | events | calls | drained in | events/s | relay µs/event | subscribers µs/event | postgres µs/event |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${r.events} | ${r.calls} | ${r.seconds.toFixed(2)} s | ${Math.round(r.events / r.seconds)} | ${r.cpuUsPerEvent.relay} | ${r.cpuUsPerEvent.subscribers} | ${r.cpuUsPerEvent.postgres} |`,
    ),
  ].join("\n");
  return { content: table, rows };
}
