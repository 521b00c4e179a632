import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { AppService, OrderStatus } from "@dispatch/gen/dispatch/app/v1/app_pb.ts";
import {
  DeliveryOutcome,
  NotificationsService,
} from "@dispatch/gen/dispatch/notifications/v1/notifications_pb.ts";
import { testClient } from "@dispatch/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack } from "./stack.ts";

let stack: Awaited<ReturnType<typeof startStack>>;

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** A mobile app's call: Connect protocol, JSON, HTTP/1.1 (what `curl` or fetch sends). */
async function app(
  method: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${stack.url}/dispatch.app.v1.AppService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function waitFor<T>(get: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe(`the app's flow through the gateway (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("sign up, browse, order, pay, watch it become paid, rotate and reuse a refresh token", async () => {
    const email = `e2e-${randomUUID()}@example.com`;
    const password = "a long enough password";
    const up = await app("SignUp", { email, password, displayName: "E2E" });
    expect(up.status).toBe(200);
    const signedIn = await app("SignIn", { email, password });
    expect(signedIn.status).toBe(200);
    const session = signedIn.json.session as { accessToken: string; refreshToken: string; userId: string };
    const token = session.accessToken;

    const restaurants = await app("ListRestaurants", { pageSize: 5 });
    const first = (restaurants.json.restaurants as { id: string; open: boolean }[]).find((r) => r.open)!;
    const menu = await app("GetMenu", { restaurantId: first.id });
    const item = (
      menu.json.items as { id: string; available: boolean; price: { amountMinor: string } }[]
    ).find((i) => i.available)!;

    expect(
      (
        await app(
          "RegisterDevice",
          { deviceId: "phone-1", platform: "PLATFORM_IOS", pushToken: "apns-token-1" },
          token,
        )
      ).status,
    ).toBe(200);

    const placed = await app(
      "PlaceOrder",
      {
        requestId: `req-${randomUUID()}`,
        restaurantId: first.id,
        items: [{ menuItemId: item.id, quantity: 2 }],
        deliveryAddress: { line1: "Torstrasse 1", city: "Berlin", countryCode: "DE" },
      },
      token,
    );
    expect(placed.status).toBe(200);
    const order = placed.json.order as { id: string; status: string; total: { amountMinor: string } };
    expect(order.status).toBe("ORDER_STATUS_PENDING_PAYMENT");

    // Watch over a streaming Connect call on HTTP/1.1, as a web or mobile client would.
    const client = createClient(
      AppService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
    );
    const seen: OrderStatus[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      try {
        for await (const update of client.watchOrder(
          { orderId: order.id },
          { headers: { authorization: `Bearer ${token}` }, signal: abort.signal },
        )) {
          seen.push(update.order!.status);
          if (update.order!.status === OrderStatus.PLACED) return;
        }
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      }
    })();
    await waitFor(async () => (seen.length > 0 ? true : undefined));

    const paid = await app(
      "CreatePayment",
      { idempotencyKey: `pay-${randomUUID()}`, orderId: order.id },
      token,
    );
    expect(paid.status).toBe(200);
    expect((paid.json.payment as { amount: { amountMinor: string } }).amount.amountMinor).toBe(
      order.total.amountMinor,
    );

    const placedNow = await waitFor(async () => {
      const r = await app("GetOrder", { orderId: order.id }, token);
      return (r.json.order as { status: string }).status === "ORDER_STATUS_PLACED" ? r : undefined;
    });
    expect(placedNow.status).toBe(200);
    await Promise.race([
      watching,
      new Promise((_, reject) => setTimeout(() => reject(new Error("watch saw no change")), 10_000)),
    ]);
    abort.abort();
    expect(seen).toEqual([OrderStatus.PENDING_PAYMENT, OrderStatus.PLACED]);

    // The PLACED event reached notifications, which pushed to the registered phone (recording provider).
    const notifications = testClient(
      NotificationsService,
      Number(stack.downstream.NOTIFICATIONS_URL.split(":")[1]),
    );
    const push = await waitFor(async () => {
      const { notifications: list } = await notifications.listNotifications({ userId: session.userId });
      return list.find(
        (n) =>
          n.title === "Order confirmed" && n.deliveries.some((d) => d.outcome === DeliveryOutcome.DELIVERED),
      );
    });
    expect(push.data).toEqual({ order_id: order.id });
    expect(push.deliveries.map((d) => d.deviceId)).toEqual(["phone-1"]);

    const active = await app("ListActiveOrders", {}, token);
    expect((active.json.orders as { id: string }[]).map((o) => o.id)).toContain(order.id);

    const rotated = await app("Refresh", { refreshToken: session.refreshToken });
    expect(rotated.status).toBe(200);
    const reuse = await app("Refresh", { refreshToken: session.refreshToken });
    expect(reuse.status).toBe(401);
    expect(reuse.json.code).toBe("unauthenticated");
    const newest = await app("Refresh", {
      refreshToken: (rotated.json.session as { refreshToken: string }).refreshToken,
    });
    expect(newest.status).toBe(401);
  });

  it("follows one request by its x-request-id and W3C trace id from the edge to catalog", async () => {
    const requestId = `e2e-${crypto.randomUUID()}`;
    const traceId = crypto.randomUUID().replaceAll("-", "");
    const res = await fetch(`${stack.url}/dispatch.app.v1.AppService/ListRestaurants`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-request-id": requestId,
        traceparent: `00-${traceId}-00f067aa0ba902b7-00`,
      },
      body: JSON.stringify({ pageSize: 1 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(requestId);
    const line = await waitFor(async () =>
      stack.catalog
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l))
        .find((l) => l.requestId === requestId),
    );
    expect(line).toMatchObject({
      service: "catalog",
      msg: "rpc",
      rpc: { method: "ListRestaurants" },
      code: "OK",
    });
    // Tracing is off in this stack, yet the caller's W3C trace id reaches catalog's log line.
    expect(line.trace_id).toBe(traceId);
    expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
    // The gateway's own line and series for the call.
    const metrics = await (await fetch(`http://127.0.0.1:${stack.gateway.adminPort}/metrics`)).text();
    expect(metrics).toMatch(
      /grpc_server_handled_total\{[^}]*grpc_service="dispatch\.app\.v1\.AppService",grpc_method="ListRestaurants",grpc_code="OK"[^}]*\} [1-9]/,
    );
  });

  it("speaks Connect binary, gRPC-Web and gRPC on the same port", async () => {
    for (const transport of [
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1", useBinaryFormat: true }),
      createConnectTransport({ baseUrl: stack.url, httpVersion: "2" }),
      createGrpcWebTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
      createGrpcTransport({ baseUrl: stack.url }),
    ]) {
      const res = await createClient(AppService, transport).listRestaurants({ pageSize: 2 });
      expect(res.restaurants).toHaveLength(2);
    }
  });

  it("refuses missing, forged, expired and alg:none tokens", async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const claims = {
      sub: "someone",
      iss: "dispatch-identity",
      aud: "dispatch",
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    const up = await app("SignUp", {
      email: `t-${randomUUID()}@example.com`,
      password: "a long enough password",
    });
    const real = (up.json.session as { accessToken: string }).accessToken;
    const [h, p, s] = real.split(".");
    const tampered = `${h}.${b64({ ...JSON.parse(Buffer.from(p!, "base64url").toString()), sub: "someone-else" })}.${s}`;
    const expiredPayload = { ...JSON.parse(Buffer.from(p!, "base64url").toString()), exp: 1 };
    for (const token of [
      undefined,
      "garbage",
      `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`,
      `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2lnbmF0dXJl`,
      tampered,
      `${h}.${b64(expiredPayload)}.${s}`,
    ]) {
      const r = await app("ListActiveOrders", {}, token);
      expect(r.status).toBe(401);
      expect(r.json.code).toBe("unauthenticated");
    }
    expect((await app("ListActiveOrders", {}, real)).status).toBe(200);
  });
});
