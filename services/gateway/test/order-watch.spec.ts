import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { createLogger, type Server, serve } from "@dispatch/runtime";
import { testClient } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrderWatchHub, orderEventsSubscriber } from "../src/order-watch.ts";

const hub = new OrderWatchHub();
let server: Server;

beforeAll(async () => {
  server = await serve({
    name: "gateway-events-test",
    port: 0,
    host: "127.0.0.1",
    adminPort: false,
    logger: createLogger({ name: "gateway-events-test", level: "silent" }),
    services: [orderEventsSubscriber(hub)],
  });
});
afterAll(() => server?.shutdown());

const placed = (orderId: string) => ({
  id: randomUUID(),
  source: "orders",
  subject: orderId,
  payload: { case: "orderPlaced" as const, value: { orderId, userId: "u-1", restaurantId: "r-1" } },
});

describe("the gateway's event intake (order watchers)", () => {
  it("wakes the watchers of every order in a HandleEvents call and answers each event as handled", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const never = new AbortController().signal;
    const woken: string[] = [];
    const watch = (orderId: string) => hub.nextChange(orderId, never, 10_000).then(() => woken.push(orderId));
    const watching = [watch("o-1"), watch("o-2")];
    expect(hub.watching).toBe(2);
    const events = [
      placed("o-1"),
      {
        id: randomUUID(),
        source: "orders",
        subject: "o-2",
        payload: {
          case: "orderStatusChanged" as const,
          value: { orderId: "o-2", userId: "u-1", reason: "accepted" },
        },
      },
      placed("o-3"),
    ];
    const { results } = await client.handleEvents({ events });
    await Promise.all(watching);
    expect(woken.sort()).toEqual(["o-1", "o-2"]);
    expect(results.map((r) => [r.eventId, r.code])).toEqual(events.map((e) => [e.id, 0]));
    expect(hub.watching).toBe(0);
  });

  it("refuses more than 500 events a call with INVALID_ARGUMENT naming the field", async () => {
    const client = testClient(EventSubscriberService, server.port);
    const events = Array.from({ length: 501 }, (_, n) => placed(`o-${n}`));
    const err = await client.handleEvents({ events }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toContain("events");
  });
});
