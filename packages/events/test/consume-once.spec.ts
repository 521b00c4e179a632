import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Database, openDatabase } from "@dispatch/db";
import { type Event, EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { DispatchError, type Server, serve, startTracing, stopTracing } from "@dispatch/runtime";
import { createTestDatabase, type TestDatabase, testClient } from "@dispatch/testing";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { eq, sql } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventSubscriberService,
  MAX_EVENTS_PER_CALL,
  ProcessedEventsRetention,
  processedEvents,
} from "../src/index.ts";
import { schema } from "./fixtures/schema.ts";

let test: TestDatabase;
let database: Database<typeof schema>;
let server: Server;
const applied: Event[] = [];
const exporter = new InMemorySpanExporter();

beforeAll(async () => {
  startTracing({ service: "consume-once-test", exporter, immediate: true, ratio: 0 });
  test = await createTestDatabase();
  database = await openDatabase({
    service: "consume-once-test",
    url: test.url,
    schema,
    migrationsFolder: fileURLToPath(new URL("./fixtures/migrations", import.meta.url)),
  });
  server = await serve({
    name: "consume-once-test",
    port: 0,
    host: "127.0.0.1",
    adminPort: false,
    logger: pino({ level: "silent" }),
    services: [
      eventSubscriberService(
        database.db,
        async (event) => {
          if (event.subject === "refused") throw new DispatchError(Code.FailedPrecondition, "not yet");
          if (event.subject === "broken") throw new Error("a bug in the handler");
          applied.push(event);
        },
        { handles: (event) => event.payload.case === "userSignedUp" },
      ),
    ],
  });
});
afterAll(async () => {
  await stopTracing();
  await server?.shutdown();
  await database?.close();
  await test?.drop();
});

const recorded = async (id: string) =>
  (await database.db.select().from(processedEvents).where(eq(processedEvents.eventId, id))).length;

describe(`event subscriber (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("applies a handled event once however often it arrives, and records it", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const event = {
      id: randomUUID(),
      source: "identity",
      subject: "u-1",
      payload: { case: "userSignedUp" as const, value: { userId: "u-1", email: "a@example.com" } },
    };
    const answers = await Promise.all([1, 2, 3].map(() => client.handleEvent({ event })));
    expect(answers.filter((a) => !a.duplicate)).toHaveLength(1);
    expect(applied.filter((e) => e.id === event.id)).toHaveLength(1);
    expect(await recorded(event.id)).toBe(1);
  });

  it("forgets the ids applied longer ago than the retention, in batches, and no others; a redelivery within it stays a duplicate", async () => {
    // 2,500 ids applied two days ago (more than one delete statement's batch) and one applied now.
    await database.db.execute(sql`
      insert into processed_events (event_id, processed_at)
      select gen_random_uuid(), now() - interval '2 days' from generate_series(1, 2500)`);
    const client = testClient(EventSubscriberService, server.port);
    const event = {
      id: randomUUID(),
      source: "identity",
      subject: "u-retention",
      payload: { case: "userSignedUp" as const, value: { userId: "u-retention", email: "r@example.com" } },
    };
    expect((await client.handleEvent({ event })).duplicate).toBe(false);
    const count = async () => (await database.db.select().from(processedEvents)).length;
    const before = await count();

    const retention = new ProcessedEventsRetention({
      db: database.db,
      logger: pino({ level: "silent" }),
      retentionMs: 86_400_000,
    });
    retention.start(); // prunes at once, then every interval
    await retention.stop(); // waits for the prune under way
    expect(await count()).toBe(before - 2500);
    expect(await recorded(event.id)).toBe(1);
    expect((await client.handleEvent({ event })).duplicate).toBe(true);
    expect(await retention.prune()).toBe(0);
  });

  it("acknowledges an event it has no effect for without applying or recording it", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const event = {
      id: randomUUID(),
      source: "orders",
      subject: "o-1",
      payload: {
        case: "orderPlaced" as const,
        value: { orderId: "o-1", userId: "u-1", restaurantId: "r-1" },
      },
    };
    expect((await client.handleEvent({ event })).duplicate).toBe(false);
    expect(applied.some((e) => e.id === event.id)).toBe(false);
    expect(await recorded(event.id)).toBe(0);
  });

  it("HandleEvents answers for each event: applied once, duplicates, one subject in order, failures its own", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const signUp = (subject: string, n: number) => ({
      id: randomUUID(),
      source: "identity",
      subject,
      payload: { case: "userSignedUp" as const, value: { userId: subject, email: `${n}@example.com` } },
    });
    const first = signUp("batch-1", 1);
    await client.handleEvent({ event: first });
    const events = [
      first, // seen before: a duplicate
      signUp("batch-2", 1),
      signUp("batch-2", 2),
      signUp("batch-2", 3),
      signUp("refused", 1),
      signUp("broken", 1),
      { ...signUp("batch-3", 1), id: "" },
      signUp("batch-4", 1),
    ];
    const { results } = await client.handleEvents({ events });
    expect(results.map((r) => r.eventId)).toEqual(events.map((e) => e.id));
    expect(results.map((r) => r.code)).toEqual([
      0,
      0,
      0,
      0,
      Code.FailedPrecondition,
      Code.Internal,
      Code.InvalidArgument,
      0,
    ]);
    expect(results.map((r) => r.duplicate)).toEqual([true, false, false, false, false, false, false, false]);
    expect(results[4]!.message).toBe("not yet");
    // An unexpected error's message stays in the subscriber's log.
    expect(results[5]!.message).toBe("internal error");
    expect(results[6]!.message).toBe("event.id is required");
    // One subject's events in the request's order; the failed ones neither applied nor recorded.
    expect(
      applied.filter((e) => e.subject === "batch-2").map((e) => (e.payload.value as { email: string }).email),
    ).toEqual(["1@example.com", "2@example.com", "3@example.com"]);
    for (const e of events.slice(1, 4)) expect(await recorded(e.id)).toBe(1);
    expect(await recorded(events[4]!.id)).toBe(0);
    expect(await recorded(events[5]!.id)).toBe(0);
    expect(applied.filter((e) => e.id === first.id)).toHaveLength(1);
    expect(await recorded(events[7]!.id)).toBe(1);
  });

  it("HandleEvents refuses more than its limit of events with INVALID_ARGUMENT naming the field", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const events = Array.from({ length: MAX_EVENTS_PER_CALL + 1 }, (_, n) => ({
      id: randomUUID(),
      source: "identity",
      subject: `limit-${n}`,
      payload: { case: "userSignedUp" as const, value: { userId: `limit-${n}`, email: "l@example.com" } },
    }));
    const err = await client.handleEvents({ events }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toContain("events");
    expect(await recorded(events[0]!.id)).toBe(0);
  });

  it("HandleEvents handles each event in a span of the trace that wrote it, its SQL under that span", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const traceId = randomUUID().replaceAll("-", "");
    const parentSpanId = "00f067aa0ba902b7";
    const traced = (n: number, sampled: boolean) => ({
      id: randomUUID(),
      source: "identity",
      subject: `traced-${n}`,
      traceContext: { traceparent: `00-${traceId}-${parentSpanId}-${sampled ? "01" : "00"}` },
      payload: { case: "userSignedUp" as const, value: { userId: `traced-${n}`, email: "t@example.com" } },
    });
    exporter.reset();
    const events = [traced(1, true), traced(2, false)];
    await client.handleEvents({ events });
    const spans = exporter.getFinishedSpans();
    const handled = spans.filter((s) => s.name === "event handle");
    // Only the sampled event's (the root sampling ratio is 0: nothing else is recorded).
    expect(handled).toHaveLength(1);
    const span = handled[0]!;
    expect(span.spanContext().traceId).toBe(traceId);
    expect(span.parentSpanContext?.spanId).toBe(parentSpanId);
    expect(span.attributes["messaging.message.id"]).toBe(events[0]!.id);
    if (process.env.TEST_DATABASE_URL) {
      const sqlUnder = spans.filter(
        (s) =>
          s.attributes["db.system.name"] === "postgresql" &&
          s.parentSpanContext?.spanId === span.spanContext().spanId,
      );
      expect(sqlUnder.map((s) => s.name)).toContain("INSERT");
    }
  });
});
