import { randomUUID } from "node:crypto";
import http from "node:http";
import { signWebhook } from "@dispatch/webhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/main.ts";
import { startStack, WEBHOOK_SECRET } from "./stack.ts";

let stack: Awaited<ReturnType<typeof startStack>>;
const extra: Gateway[] = [];

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await Promise.all(extra.map((g) => g.shutdown()));
  await stack?.stop();
});

/** A Connect JSON call over HTTP/1.1 from a chosen loopback address (127.0.0.x stand for different clients). */
function call(port: number, method: string, body: unknown, opts: { token?: string; from?: string } = {}) {
  const payload = typeof body === "string" ? body : JSON.stringify(body);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; json: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: `/dispatch.app.v1.AppService/${method}`,
          localAddress: opts.from ?? "127.0.0.1",
          headers: {
            "content-type": "application/json",
            ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            resolve({
              status: res.statusCode!,
              headers: res.headers,
              json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
            });
          });
        },
      );
      req.on("error", reject);
      req.end(payload);
    },
  );
}

async function extraGateway(env: Record<string, string>): Promise<Gateway> {
  const g = await startGateway({
    PORT: "0",
    INTERNAL_PORT: "0",
    ADMIN_PORT: "0",
    LOG_LEVEL: "silent",
    WEBHOOK_SECRET,
    ...stack.downstream,
    ...env,
  });
  extra.push(g);
  return g;
}

async function signUp(port: number): Promise<string> {
  const r = await call(
    port,
    "SignUp",
    { email: `edge-${randomUUID()}@example.com`, password: "a long enough password" },
    { from: "127.0.0.9" },
  );
  return (r.json.session as { accessToken: string }).accessToken;
}

function webhook(body: string, signature: string) {
  return fetch(`${stack.url}/webhooks/payments`, {
    method: "POST",
    headers: { "content-type": "application/json", "dispatch-signature": signature },
    body,
  });
}

describe("gateway edge", () => {
  it("rate-limits per client address with 429 and Retry-After, before anything downstream", async () => {
    const g = await extraGateway({ RATE_LIMIT_IP_PER_MINUTE: "5" });
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 10; i++) {
      const r = await call(g.port, "ListRestaurants", { pageSize: 1 }, { from: "127.0.0.2" });
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    // 5 a minute plus a burst of 1.
    expect(statuses.filter((s) => s === 200)).toHaveLength(6);
    expect(limited?.json.code).toBe("resource_exhausted");
    expect(Number(limited?.headers["retry-after"])).toBeGreaterThan(0);
    // Another client address is not affected.
    expect((await call(g.port, "ListRestaurants", { pageSize: 1 }, { from: "127.0.0.3" })).status).toBe(200);
  });

  it("rate-limits per user across addresses", async () => {
    const g = await extraGateway({ RATE_LIMIT_USER_PER_MINUTE: "3" });
    const token = await signUp(g.port);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await call(g.port, "ListActiveOrders", {}, { token, from: `127.0.1.${i + 1}` })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });

  it.runIf(process.env.TEST_REDIS_URL)("shares the limits between replicas through Redis", async () => {
    const env = {
      REDIS_URL: process.env.TEST_REDIS_URL!,
      RATE_LIMIT_PREFIX: `test-${randomUUID()}`,
      RATE_LIMIT_IP_PER_MINUTE: "5",
    };
    const [a, b] = [await extraGateway(env), await extraGateway(env)];
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(
        (await call(i % 2 ? b.port : a.port, "ListRestaurants", { pageSize: 1 }, { from: "127.0.0.4" }))
          .status,
      );
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(6);
  });

  it("refuses a request body over the limit", async () => {
    const g = await extraGateway({ MAX_BODY_BYTES: "2048" });
    const r = await call(g.port, "ListRestaurants", JSON.stringify({ cuisine: "x".repeat(10_000) }), {
      from: "127.0.0.5",
    });
    expect(r.status).toBe(429);
    expect(r.json.code).toBe("resource_exhausted");
  });

  it("returns the home screen without a part whose service is down, naming it missing", async () => {
    const token = await signUp(stack.gateway.port);
    const healthy = await call(stack.gateway.port, "GetHome", {}, { token, from: "127.0.0.6" });
    expect(healthy.status).toBe(200);
    expect(healthy.json.missing ?? []).toEqual([]);
    expect((healthy.json.restaurants as unknown[]).length).toBeGreaterThan(0);

    const g = await extraGateway({ CATALOG_URL: "127.0.0.1:1", HOME_DEADLINE_MS: "500" });
    const degraded = await call(g.port, "GetHome", {}, { token, from: "127.0.0.6" });
    expect(degraded.status).toBe(200);
    expect(degraded.json.missing).toEqual(["HOME_SECTION_RESTAURANTS"]);
    expect(degraded.json.profile).toBeTruthy();
  });

  it("answers CORS preflights for browsers and exposes the gRPC and retry headers", async () => {
    const res = await fetch(`${stack.url}/dispatch.app.v1.AppService/ListRestaurants`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:3000",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
    const call = await fetch(`${stack.url}/dispatch.app.v1.AppService/ListRestaurants`, {
      method: "POST",
      headers: { origin: "http://localhost:3000", "content-type": "application/json" },
      body: "{}",
    });
    expect(call.headers.get("access-control-expose-headers")).toContain("grpc-status");
  });

  it("checks webhook signatures over the raw body and refuses replays", async () => {
    const body = JSON.stringify({
      id: `evt_${randomUUID()}`,
      type: "payment_intent.succeeded",
      data: { object: { id: "fake_pi_unknown" } },
    });
    expect((await webhook(body, signWebhook("wrong-secret", body))).status).toBe(400);
    expect((await webhook(`${body} `, signWebhook(WEBHOOK_SECRET, body))).status).toBe(400);
    const stale = signWebhook(WEBHOOK_SECRET, body, Math.floor(Date.now() / 1000) - 3600);
    expect((await webhook(body, stale)).status).toBe(400);
    const fresh = await webhook(body, signWebhook(WEBHOOK_SECRET, body));
    expect(fresh.status).toBe(200);
    const again = await webhook(body, signWebhook(WEBHOOK_SECRET, body));
    expect(((await again.json()) as { message: string }).message).toBe("duplicate");
  });
});
