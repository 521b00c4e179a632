import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type Database, openDatabase } from "@dispatch/db";
import { type Event, EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { type Server, serve } from "@dispatch/runtime";
import { createTestDatabase, type TestDatabase, testClient } from "@dispatch/testing";
import { eq } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventSubscriberService, processedEvents } from "../src/index.ts";
import { schema } from "./fixtures/schema.ts";

let test: TestDatabase;
let database: Database<typeof schema>;
let server: Server;
const applied: Event[] = [];

beforeAll(async () => {
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
          applied.push(event);
        },
        { handles: (event) => event.payload.case === "userSignedUp" },
      ),
    ],
  });
});
afterAll(async () => {
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
});
