import { randomUUID } from "node:crypto";
import http from "node:http";
import { Code } from "@connectrpc/connect";
import { type Event, EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { PaymentStatus, PaymentsService } from "@dispatch/gen/dispatch/payments/v1/payments_pb.ts";
import { type Server, serve } from "@dispatch/runtime";
import { createTestDatabase, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import { SIGNATURE_HEADER, verifyWebhook } from "@dispatch/webhooks";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPayments } from "../src/main.ts";

const SECRET = "test-webhook-secret";
let db: TestDatabase;
let server: Server;
let subscriberServer: Server;
let payments: ReturnType<typeof testClient<typeof PaymentsService>>;
const events: Event[] = [];
const webhooks: { verified: boolean; body: string }[] = [];
let webhookServer: http.Server;
/** Forward verified webhooks to payments, as the gateway does. */
let forward = true;

beforeAll(async () => {
  db = await createTestDatabase();
  subscriberServer = await serve({
    name: "subscriber",
    port: 0,
    host: "127.0.0.1",
    adminPort: false,
    logger: pino({ level: "silent" }),
    services: [
      [
        EventSubscriberService,
        {
          handleEvent: (req) => {
            events.push(req.event!);
            return { duplicate: false };
          },
        },
      ],
    ],
  });
  webhookServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      const check = verifyWebhook(SECRET, req.headers[SIGNATURE_HEADER] as string | undefined, body);
      webhooks.push({ verified: check.ok, body });
      if (check.ok && forward) {
        const parsed = JSON.parse(body) as { id: string; type: string };
        await payments.handleProviderEvent({
          provider: "fake",
          eventId: parsed.id,
          eventType: parsed.type,
          payload: Buffer.from(body),
        });
      }
      res.writeHead(check.ok ? 200 : 400).end();
    });
  });
  await new Promise<void>((r) => webhookServer.listen(0, "127.0.0.1", () => r()));
  server = await startPayments({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_URL: `http://127.0.0.1:${(webhookServer.address() as { port: number }).port}/webhooks/payments`,
    FAKE_PROVIDER_DELAY_MS: "10",
    EVENT_SUBSCRIBERS: `subscriber=127.0.0.1:${subscriberServer.port}`,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
  payments = testClient(PaymentsService, server.port);
});

afterAll(async () => {
  await server?.shutdown();
  await subscriberServer?.shutdown();
  webhookServer?.close();
  await db?.drop();
});

const eur = (amountMinor: number) => ({ currencyCode: "EUR", amountMinor: BigInt(amountMinor) });
function request(amountMinor = 2599) {
  return {
    idempotencyKey: `key-${randomUUID()}`,
    orderId: randomUUID(),
    userId: `user-${randomUUID()}`,
    amount: eur(amountMinor),
  };
}

async function waitFor<T>(get: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe(`payments (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("returns the stored first response for a repeated idempotency key, even under concurrent duplicates", async () => {
    const req = request();
    const first = await payments.createPayment(req);
    expect(first.payment?.status).toBe(PaymentStatus.PENDING);
    expect(first.payment?.clientSecret).toMatch(/^fake_pi_/);
    const again = await payments.createPayment(req);
    expect(again.payment).toEqual(first.payment);

    const racing = request();
    const answers = await Promise.all(Array.from({ length: 10 }, () => payments.createPayment(racing)));
    expect(new Set(answers.map((a) => a.payment?.id)).size).toBe(1);
  });

  it("refuses an idempotency key reused for a different request", async () => {
    const req = request();
    await payments.createPayment(req);
    const s = await statusOf(payments.createPayment({ ...req, amount: eur(1) }));
    expect(s.code).toBe(Code.FailedPrecondition);
    expect(s.reason).toBe("IDEMPOTENCY_KEY_REUSED");
  });

  it("names every invalid field", async () => {
    const s = await statusOf(
      payments.createPayment({
        idempotencyKey: "x",
        orderId: "o",
        userId: "",
        amount: { currencyCode: "eur", amountMinor: 0n },
      }),
    );
    expect(s.code).toBe(Code.InvalidArgument);
    expect(s.fieldViolations.map((v) => v.field).sort()).toEqual([
      "amount.amount_minor",
      "amount.currency_code",
      "idempotency_key",
      "order_id",
      "user_id",
    ]);
  });

  it("completes through the fake provider's signed webhook and publishes PaymentSucceeded", async () => {
    const { payment } = await payments.createPayment(request());
    const done = await waitFor(async () => {
      const p = (await payments.getPayment({ paymentId: payment!.id })).payment;
      return p?.status === PaymentStatus.SUCCEEDED ? p : undefined;
    });
    expect(done.failureReason).toBe("");
    expect(webhooks.every((w) => w.verified)).toBe(true);
    const event = await waitFor(() =>
      events.find((e) => e.payload.case === "paymentSucceeded" && e.payload.value.paymentId === payment!.id),
    );
    expect(event.source).toBe("payments");
    expect(event.payload.value).toMatchObject({ orderId: payment!.orderId, amount: { amountMinor: 2599n } });
  });

  it("applies a declined payment as FAILED and publishes PaymentFailed", async () => {
    const { payment } = await payments.createPayment(request(1013));
    const failed = await waitFor(async () => {
      const p = (await payments.getPayment({ paymentId: payment!.id })).payment;
      return p?.status === PaymentStatus.FAILED ? p : undefined;
    });
    expect(failed.failureReason).toBe("Your card was declined.");
    await waitFor(() =>
      events.find((e) => e.payload.case === "paymentFailed" && e.payload.value.paymentId === payment!.id),
    );
  });

  it("processes a webhook event exactly once: 10 concurrent deliveries, one transition, one event", async () => {
    forward = false;
    try {
      const { payment } = await payments.createPayment(request());
      const webhook = await waitFor(() => webhooks.find((w) => w.body.includes(payment!.providerPaymentId)));
      const parsed = JSON.parse(webhook.body) as { id: string; type: string };
      const deliveries = await Promise.all(
        Array.from({ length: 10 }, () =>
          payments.handleProviderEvent({
            provider: "fake",
            eventId: parsed.id,
            eventType: parsed.type,
            payload: Buffer.from(webhook.body),
          }),
        ),
      );
      expect(deliveries.filter((d) => !d.duplicate)).toHaveLength(1);
      expect(deliveries.every((d) => d.payment?.status === PaymentStatus.SUCCEEDED)).toBe(true);
      await waitFor(() =>
        events.find(
          (e) => e.payload.case === "paymentSucceeded" && e.payload.value.paymentId === payment!.id,
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(
        events.filter(
          (e) => e.payload.case === "paymentSucceeded" && e.payload.value.paymentId === payment!.id,
        ),
      ).toHaveLength(1);
    } finally {
      forward = true;
    }
  });

  it("rejects provider events it cannot read, naming the payload", async () => {
    const s = await statusOf(
      payments.handleProviderEvent({
        provider: "fake",
        eventId: "evt_1",
        eventType: "payment_intent.succeeded",
        payload: Buffer.from("{"),
      }),
    );
    expect(s.code).toBe(Code.InvalidArgument);
    expect(s.reason).toBe("UNKNOWN_PROVIDER_EVENT");
    const wrongProvider = await statusOf(
      payments.handleProviderEvent({
        provider: "stripe",
        eventId: "evt_1",
        eventType: "x",
        payload: Buffer.from("{}"),
      }),
    );
    expect(wrongProvider.fieldViolations.map((v) => v.field)).toEqual(["provider"]);
  });
});
