import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { createClient } from "@dispatch/client";
import { type Database, openDatabase, rowsOf } from "@dispatch/db";
import { type Event, EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { DispatchError, type Server, type ServiceRegistration, serve } from "@dispatch/runtime";
import { createTestDatabase, type TestDatabase } from "@dispatch/testing";
import { sql } from "drizzle-orm";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { handleEventsWith, OutboxRelay, outbox, outboxRow } from "../src/index.ts";
import { schema } from "./fixtures/schema.ts";

let test: TestDatabase;
let database: Database<typeof schema>;
const servers: Server[] = [];
const relays: OutboxRelay[] = [];
const logger = pino({ level: "silent" });

beforeAll(async () => {
  test = await createTestDatabase();
  database = await openDatabase({
    service: "events-test",
    url: test.url,
    schema,
    migrationsFolder: fileURLToPath(new URL("./fixtures/migrations", import.meta.url)),
  });
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.stop()));
  await Promise.all(servers.splice(0).map((s) => s.shutdown()));
  await database.db.delete(outbox);
});
afterAll(async () => {
  await database?.close();
  await test?.drop();
});

/** Serves `impl` as an event subscriber and returns the relay's client for it. */
async function served(name: string, impl: ServiceRegistration<typeof EventSubscriberService>[1]) {
  const server = await serve({
    name,
    port: 0,
    host: "127.0.0.1",
    adminPort: false,
    logger,
    services: [[EventSubscriberService, impl]],
  });
  servers.push(server);
  return createClient(EventSubscriberService, {
    target: `127.0.0.1:${server.port}`,
    name,
    breaker: { volumeThreshold: 1000 },
    // The relay's own backoff is under test, not the client's quick retries.
    retry: false,
  });
}

/** A subscriber that records what it receives and fails while `failing(event)` says so. */
async function subscriber(name: string, failing: (e: Event) => boolean = () => false) {
  const received: Event[] = [];
  const client = await served(name, {
    handleEvent(req) {
      if (failing(req.event!)) throw new DispatchError(Code.Unavailable, "subscriber down");
      received.push(req.event!);
      return { duplicate: false };
    },
  });
  return { name, client, received };
}

/** A current subscriber: HandleEvents (one call per round) as well as HandleEvent; counts both. */
async function batchSubscriber(name: string, failing: (e: Event) => boolean = () => false) {
  const received: Event[] = [];
  const calls = { handleEvent: 0, handleEvents: 0 };
  const handleOne = async (event: Event) => {
    if (failing(event)) throw new DispatchError(Code.FailedPrecondition, "not yet");
    received.push(event);
    return { duplicate: false };
  };
  const batch = handleEventsWith(handleOne);
  const client = await served(name, {
    handleEvent(req) {
      calls.handleEvent++;
      return handleOne(req.event!);
    },
    handleEvents(req, ctx) {
      calls.handleEvents++;
      return batch(req, ctx);
    },
  });
  return { name, client, received, calls };
}

function event(subject: string, n: number) {
  return outboxRow({
    id: randomUUID(),
    source: "test",
    subject,
    payload: { case: "userSignedUp", value: { userId: subject, email: `${n}@example.com` } },
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe(`outbox relay (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("delivers every pending event to every subscriber, then marks it published", async () => {
    const a = await subscriber("a");
    const b = await subscriber("b");
    await database.db.insert(outbox).values([event("u1", 1), event("u2", 1), event("u1", 2)]);
    const relay = new OutboxRelay({ db: database.db, subscribers: [a, b], logger, pollIntervalMs: 20 });
    relays.push(relay);
    expect(await relay.lagSeconds()).toBeGreaterThanOrEqual(0);
    relay.start();
    await waitFor(() => a.received.length === 3 && b.received.length === 3);
    await waitFor(async () => (await relay.lagSeconds()) === 0);
    const pending = await database.db.execute(
      sql`select count(*)::int as n from outbox where published_at is null`,
    );
    expect(JSON.stringify(pending)).toContain('"n":0');
    // Per aggregate, in the order written.
    const emails = a.received
      .filter((e) => e.subject === "u1")
      .map((e) => (e.payload.value as { email: string }).email);
    expect(emails).toEqual(["1@example.com", "2@example.com"]);
  });

  it("vacuums the outbox itself once it has published vacuumEvery events, and never with 0", async () => {
    const vacuums = async () => {
      const [row] = rowsOf<{ n: number | string }>(
        await database.db.execute(
          sql`select vacuum_count as n from pg_stat_user_tables where relname = 'outbox'`,
        ),
      );
      return Number(row!.n);
    };
    const published = async () => {
      const [row] = rowsOf<{ n: number | string }>(
        await database.db.execute(sql`select count(*) as n from outbox where published_at is not null`),
      );
      return Number(row!.n);
    };
    const a = await subscriber("a");
    const run = async (vacuumEvery: number) => {
      await database.db.insert(outbox).values(Array.from({ length: 12 }, (_, i) => event(`v${i}`, i)));
      const relay = new OutboxRelay({
        db: database.db,
        subscribers: [a],
        logger,
        pollIntervalMs: 20,
        vacuumEvery,
      });
      relays.push(relay);
      relay.start();
      await waitFor(async () => (await published()) === 12);
      await relay.stop(); // waits for a VACUUM under way
      await database.db.delete(outbox);
    };
    const before = await vacuums();
    await run(0);
    expect(await vacuums()).toBe(before);
    await run(10);
    expect(await vacuums()).toBe(before + 1);
  });

  it("deletes the events published longer ago than the retention, oldest first in batches, and no others", async () => {
    // 2,500 events published two hours ago (more than one delete statement's batch of 2,000), one
    // published a minute ago, and one written two hours ago and still pending.
    await database.db.execute(sql`
      insert into outbox (id, event_type, subject, payload, created_at, published_at)
      select gen_random_uuid(), 'test', 'old' || g, '\\x00'::bytea, now() - interval '2 hours', now() - interval '2 hours'
      from generate_series(1, 2500) g`);
    const recent = { ...event("recent", 1), publishedAt: new Date(Date.now() - 60_000) };
    const pending = { ...event("pending", 1), createdAt: new Date(Date.now() - 7_200_000) };
    await database.db.insert(outbox).values([recent, pending]);
    const left = async () =>
      (await database.db.select({ id: outbox.id }).from(outbox)).map((r) => r.id).sort();

    const keepAll = new OutboxRelay({
      db: database.db,
      subscribers: [],
      logger,
      publishedRetentionMs: Infinity,
    });
    expect(await keepAll.prune()).toBe(0);
    expect((await left()).length).toBe(2502);

    const relay = new OutboxRelay({
      db: database.db,
      subscribers: [],
      logger,
      publishedRetentionMs: 3_600_000,
    });
    expect(await relay.prune()).toBe(2500);
    expect(await left()).toEqual([recent.id, pending.id].sort());
    expect(await relay.prune()).toBe(0);
  });

  it("a running relay deletes what it published once the retention has passed", async () => {
    const a = await subscriber("a");
    await database.db.insert(outbox).values([event("r1", 1), event("r2", 1), event("r1", 2)]);
    const relay = new OutboxRelay({
      db: database.db,
      subscribers: [a],
      logger,
      pollIntervalMs: 20,
      publishedRetentionMs: 0,
      pruneIntervalMs: 50,
    });
    relays.push(relay);
    relay.start();
    await waitFor(
      async () => a.received.length === 3 && (await database.db.select().from(outbox)).length === 0,
    );
    expect(a.received.map((e) => e.subject).sort()).toEqual(["r1", "r1", "r2"]);
  });

  it("retries a failed delivery with backoff and never lets a later event of the aggregate overtake it", async () => {
    let failuresLeft = 2;
    const s = await subscriber("flaky", (e) => e.subject === "blocked" && failuresLeft-- > 0);
    await database.db.insert(outbox).values([event("blocked", 1), event("blocked", 2), event("free", 1)]);
    const relay = new OutboxRelay({
      db: database.db,
      subscribers: [s],
      logger,
      pollIntervalMs: 20,
      maxBackoffMs: 200,
    });
    relays.push(relay);
    relay.start();
    await waitFor(() => s.received.some((e) => e.subject === "free"));
    // "free" went through while "blocked" 1 was failing; "blocked" 2 waited behind it.
    expect(s.received.filter((e) => e.subject === "blocked")).toEqual([]);
    await waitFor(() => s.received.filter((e) => e.subject === "blocked").length === 2);
    expect(
      s.received
        .filter((e) => e.subject === "blocked")
        .map((e) => (e.payload.value as { email: string }).email),
    ).toEqual(["1@example.com", "2@example.com"]);
    const rows = await database.db.select().from(outbox);
    const first = rows.find(
      (r) =>
        r.subject === "blocked" &&
        r.seq === Math.min(...rows.filter((x) => x.subject === "blocked").map((x) => x.seq)),
    );
    expect(first?.attempts).toBe(3);
  });

  it("retries an event only for the subscriber that refused it; the one that took it is not sent it again", async () => {
    const took = await subscriber("took");
    let refusals = 2;
    const refused = await subscriber("refused", () => refusals-- > 0);
    const row = event("once", 1);
    await database.db.insert(outbox).values(row);
    const relay = new OutboxRelay({
      db: database.db,
      subscribers: [took, refused],
      logger,
      pollIntervalMs: 20,
      maxBackoffMs: 100,
    });
    relays.push(relay);
    relay.start();
    await waitFor(async () => {
      const [r] = await database.db.select().from(outbox);
      return r?.publishedAt != null;
    });
    expect(refused.received.map((e) => e.id)).toEqual([row.id]);
    expect(took.received.map((e) => e.id)).toEqual([row.id]);
    const [r] = await database.db.select().from(outbox);
    expect(r!.attempts).toBe(3);
    expect(r!.deliveredTo).toEqual(["took"]);
  });

  it("two relays on one database deliver each aggregate in order", async () => {
    const s = await subscriber("s");
    const rows = [];
    for (let n = 1; n <= 5; n++) for (const subject of ["x", "y", "z"]) rows.push(event(subject, n));
    await database.db.insert(outbox).values(rows);
    const r1 = new OutboxRelay({ db: database.db, subscribers: [s], logger, pollIntervalMs: 10 });
    const r2 = new OutboxRelay({ db: database.db, subscribers: [s], logger, pollIntervalMs: 10 });
    relays.push(r1, r2);
    r1.start();
    r2.start();
    await waitFor(async () => (await relay0Lag(r1)) === 0 && s.received.length >= 15);
    for (const subject of ["x", "y", "z"]) {
      const order = s.received
        .filter((e) => e.subject === subject)
        .map((e) => (e.payload.value as { email: string }).email);
      expect(order).toEqual([
        "1@example.com",
        "2@example.com",
        "3@example.com",
        "4@example.com",
        "5@example.com",
      ]);
    }
  });

  it("sends a subscriber a round in one HandleEvents call, retries only the event it refused, and still serves an older one", async () => {
    let refusals = 1;
    const current = await batchSubscriber("current", (e) => e.subject === "refused" && refusals-- > 0);
    const older = await subscriber("older");
    const rows = ["a", "b", "c", "refused", "d", "e"].map((subject) => event(subject, 1));
    await database.db.insert(outbox).values(rows);
    const relay = new OutboxRelay({
      db: database.db,
      subscribers: [current, older],
      logger,
      pollIntervalMs: 20,
      maxBackoffMs: 200,
    });
    relays.push(relay);
    relay.start();
    await waitFor(async () => (await relay.lagSeconds()) === 0 && current.received.length === 6);
    // The six events in one call; the refused one again later, alone (a round of one is a HandleEvent).
    expect(current.calls.handleEvents).toBe(1);
    expect(current.calls.handleEvent).toBe(1);
    expect(current.received.map((e) => e.subject).sort()).toEqual(["a", "b", "c", "d", "e", "refused"]);
    // The older subscriber (HandleEvent only, HandleEvents UNIMPLEMENTED) got every event, one a call,
    // and each once: the retry of the event the other refused skips the subscriber that took it.
    expect(older.received.map((e) => e.subject).sort()).toEqual(["a", "b", "c", "d", "e", "refused"]);
    const attempts = Object.fromEntries(
      (await database.db.select().from(outbox)).map((r) => [r.subject, r.attempts]),
    );
    expect(attempts).toEqual({ a: 1, b: 1, c: 1, d: 1, e: 1, refused: 2 });
  });
});

async function relay0Lag(r: OutboxRelay): Promise<number> {
  return r.lagSeconds();
}
