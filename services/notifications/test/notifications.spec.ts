import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { EventSubscriberService } from "@dispatch/gen/dispatch/events/v1/events_pb.ts";
import { IdentityService, Platform } from "@dispatch/gen/dispatch/identity/v1/identity_pb.ts";
import {
  DeliveryOutcome,
  NotificationStatus,
  NotificationsService,
} from "@dispatch/gen/dispatch/notifications/v1/notifications_pb.ts";
import { OrderStatus } from "@dispatch/gen/dispatch/orders/v1/orders_pb.ts";
import { type Server, serve } from "@dispatch/runtime";
import { createTestDatabase, statusOf, type TestDatabase, testClient } from "@dispatch/testing";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNotifications } from "../src/main.ts";
import { startFakePush } from "./fake-push-servers.ts";

/** identity's device registry, as far as notifications uses it. */
const registry = new Map<string, { deviceId: string; platform: Platform; pushToken: string }[]>();
let identity: Server;
let fake: Awaited<ReturnType<typeof startFakePush>>;
let db: TestDatabase;
let server: Server;
let notifications: ReturnType<typeof testClient<typeof NotificationsService>>;

beforeAll(async () => {
  fake = await startFakePush();
  identity = await serve({
    name: "fake-identity",
    port: 0,
    host: "127.0.0.1",
    adminPort: false,
    logger: pino({ level: "silent" }),
    services: [
      [
        IdentityService,
        {
          listDevices: (req) => ({
            devices: (registry.get(req.userId) ?? []).map((d) => ({ ...d, userId: req.userId })),
          }),
          unregisterDevice: (req) => {
            registry.set(
              req.userId,
              (registry.get(req.userId) ?? []).filter((d) => d.deviceId !== req.deviceId),
            );
            return {};
          },
        },
      ],
    ],
  });
  db = await createTestDatabase();
  server = await startNotifications({
    PORT: "0",
    ADMIN_PORT: "0",
    DATA_DIR: "memory://",
    LOG_LEVEL: "warn",
    IDENTITY_URL: `127.0.0.1:${identity.port}`,
    PUSH_PROVIDER: "live",
    FCM_BASE_URL: fake.fcm.baseUrl,
    FCM_PROJECT_ID: fake.fcm.projectId,
    FCM_SERVICE_ACCOUNT_JSON: JSON.stringify(fake.fcm.account),
    APNS_BASE_URL: fake.apns.baseUrl,
    APNS_TEAM_ID: fake.apns.teamId,
    APNS_KEY_ID: fake.apns.keyId,
    APNS_PRIVATE_KEY: fake.apns.privateKeyPem,
    APNS_TOPIC: fake.apns.topic,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
  notifications = testClient(NotificationsService, server.port);
});

afterAll(async () => {
  await server?.shutdown();
  await identity?.shutdown();
  fake?.close();
  await db?.drop();
});

async function settled(id: string, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    const { notification } = await notifications.getNotification({ notificationId: id });
    if (notification && notification.status !== NotificationStatus.QUEUED) return notification;
    if (Date.now() > until) throw new Error(`notification ${id} still queued`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function user(devices: { deviceId: string; platform: Platform; pushToken: string }[]): string {
  const id = `user-${randomUUID()}`;
  registry.set(id, devices);
  return id;
}

describe(`notifications (${process.env.TEST_DATABASE_URL ? "postgres" : "pglite"})`, () => {
  it("queues a push and a worker delivers it to every device through FCM and APNs, with a delivery log", async () => {
    const metric = async (name: string, labels: string) => {
      const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      return line ? Number(line.split(" ").pop()) : 0;
    };
    const sentBefore = await metric("dispatch_push_sends_total", 'platform="ios",result="delivered"');
    const userId = user([
      { deviceId: "iphone", platform: Platform.IOS, pushToken: `ios-${randomUUID()}` },
      { deviceId: "pixel", platform: Platform.ANDROID, pushToken: `fcm-${randomUUID()}` },
    ]);
    const id = randomUUID();
    const queued = await notifications.sendNotification({
      notificationId: id,
      userId,
      title: "Hello",
      body: "World",
      data: { k: "v" },
    });
    expect(queued.notification?.status).toBe(NotificationStatus.QUEUED);
    const done = await settled(id);
    expect(done.status).toBe(NotificationStatus.SENT);
    expect(done.deliveries.map((d) => [d.deviceId, d.outcome]).sort()).toEqual([
      ["iphone", DeliveryOutcome.DELIVERED],
      ["pixel", DeliveryOutcome.DELIVERED],
    ]);
    // /metrics counts the send per platform and result, and shows the queue's depth.
    expect(
      (await metric("dispatch_push_sends_total", 'platform="ios",result="delivered"')) - sentBefore,
    ).toBe(1);
    expect(
      await metric("dispatch_push_sends_total", 'platform="android",result="delivered"'),
    ).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    expect(text).toMatch(/^dispatch_push_queue_depth(\{[^}]*\})? \d+$/m);
    // The same id again is the same notification; other content under it is refused.
    expect(
      (
        await notifications.sendNotification({
          notificationId: id,
          userId,
          title: "Hello",
          body: "World",
          data: { k: "v" },
        })
      ).notification?.id,
    ).toBe(id);
    expect(
      (
        await statusOf(
          notifications.sendNotification({ notificationId: id, userId, title: "Other", body: "", data: {} }),
        )
      ).reason,
    ).toBe("NOTIFICATION_ID_REUSED");
  });

  it("retries transient failures, never re-sends to devices already reached, and unregisters dead tokens", async () => {
    const userId = user([
      { deviceId: "ok", platform: Platform.ANDROID, pushToken: `fcm-ok-${randomUUID()}` },
      { deviceId: "flaky", platform: Platform.IOS, pushToken: `busy-${randomUUID()}` },
      { deviceId: "gone", platform: Platform.ANDROID, pushToken: `dead-${randomUUID()}` },
    ]);
    const okToken = registry.get(userId)![0]!.pushToken;
    const id = randomUUID();
    await notifications.sendNotification({
      notificationId: id,
      userId,
      title: "Retry me",
      body: "",
      data: {},
    });
    const done = await settled(id);
    // Every device still registered got it (the dead token's device was removed).
    expect(done.status).toBe(NotificationStatus.SENT);
    expect(done.attempts).toBe(2);
    expect(fake.seen.fcm.filter((m) => m.token === okToken)).toHaveLength(1);
    expect(done.deliveries.filter((d) => d.deviceId === "flaky").map((d) => d.outcome)).toEqual([
      DeliveryOutcome.FAILED,
      DeliveryOutcome.DELIVERED,
    ]);
    expect(done.deliveries.find((d) => d.deviceId === "gone")?.outcome).toBe(DeliveryOutcome.TOKEN_INVALID);
    expect(
      registry
        .get(userId)!
        .map((d) => d.deviceId)
        .sort(),
    ).toEqual(["flaky", "ok"]);
  });

  it("turns an order event into one push however often it is delivered", async () => {
    const userId = user([{ deviceId: "phone", platform: Platform.IOS, pushToken: `ios-${randomUUID()}` }]);
    const event = {
      id: randomUUID(),
      source: "orders",
      subject: "o-1",
      payload: {
        case: "orderStatusChanged" as const,
        value: {
          orderId: "o-1",
          userId,
          previousStatus: OrderStatus.PLACED,
          status: OrderStatus.OUT_FOR_DELIVERY,
          reason: "",
        },
      },
    };
    const subscriber = testClient(EventSubscriberService, server.port);
    const answers = await Promise.all(Array.from({ length: 10 }, () => subscriber.handleEvent({ event })));
    expect(answers.filter((a) => !a.duplicate)).toHaveLength(1);
    const done = await settled(event.id);
    expect(done.title).toBe("On its way");
    expect(done.data).toEqual({ order_id: "o-1" });
    expect(done.deliveries).toHaveLength(1);
    const list = await notifications.listNotifications({ userId });
    expect(list.notifications.map((n) => n.id)).toEqual([event.id]);
  });

  it.runIf(process.env.TEST_DATABASE_URL)(
    "shares one queue between replicas: each push goes out once",
    async () => {
      const second = await startNotifications({
        PORT: "0",
        ADMIN_PORT: "0",
        LOG_LEVEL: "warn",
        DATABASE_URL: db.url,
        IDENTITY_URL: `127.0.0.1:${identity.port}`,
        PUSH_PROVIDER: "live",
        FCM_BASE_URL: fake.fcm.baseUrl,
        FCM_PROJECT_ID: fake.fcm.projectId,
        FCM_SERVICE_ACCOUNT_JSON: JSON.stringify(fake.fcm.account),
        APNS_BASE_URL: fake.apns.baseUrl,
        APNS_TEAM_ID: fake.apns.teamId,
        APNS_KEY_ID: fake.apns.keyId,
        APNS_PRIVATE_KEY: fake.apns.privateKeyPem,
        APNS_TOPIC: fake.apns.topic,
      });
      try {
        const token = `fcm-shared-${randomUUID()}`;
        const userId = user([{ deviceId: "pixel", platform: Platform.ANDROID, pushToken: token }]);
        const ids = Array.from({ length: 30 }, () => randomUUID());
        const viaSecond = testClient(NotificationsService, second.port);
        await Promise.all(
          ids.map((id, i) =>
            (i % 2 ? notifications : viaSecond).sendNotification({
              notificationId: id,
              userId,
              title: `n${i}`,
              body: "",
              data: {},
            }),
          ),
        );
        for (const id of ids) expect((await settled(id)).status).toBe(NotificationStatus.SENT);
        const sent = fake.seen.fcm.filter((m) => m.token === token).map((m) => m.title);
        expect(sent).toHaveLength(30);
        expect(new Set(sent).size).toBe(30);
      } finally {
        await second.shutdown();
      }
    },
  );

  it("marks a user without devices NO_DEVICES, and names bad fields", async () => {
    const id = randomUUID();
    await notifications.sendNotification({
      notificationId: id,
      userId: user([]),
      title: "Nobody",
      body: "",
      data: {},
    });
    expect((await settled(id)).status).toBe(NotificationStatus.NO_DEVICES);
    const bad = await statusOf(
      notifications.sendNotification({ notificationId: "x", userId: "", title: "", body: "", data: {} }),
    );
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.fieldViolations.map((v) => v.field).sort()).toEqual(["notification_id", "title", "user_id"]);
  });
});
